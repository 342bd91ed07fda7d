"""Child jobs: ``ctx.spawn``, a ``finalize`` handler, ``fail_fast`` and ``ctx.spawn_sibling``.

    python examples/children.py

A ``crawl`` job spawns one ``page`` child per URL and returns; the parent then *waits* (state
``waiting``) until every child has ended, and its ``@crawl.finalize`` handler runs once to gather
their results into the parent's result. A page that finds a link adds a peer under the same
parent with ``ctx.spawn_sibling``, so the parent waits for it too.

With ``fail_fast`` (the default) a failing child cancels its siblings and fails the parent; with
``fail_fast=False`` the others carry on and finalize sees every outcome.
"""

from __future__ import annotations

import contextlib
import json
import logging

import anyio
import attrs

from wireframe import (
    Domain,
    JobContext,
    JobFailed,
    JobState,
    Scheduler,
    Service,
    StopReceiver,
    TaskKind,
)

crawler = Domain("crawler")


@attrs.frozen
class Site:
    name: str
    urls: tuple[str, ...]


@attrs.frozen
class Page:
    url: str


@crawler.job
async def crawl(job: Site, ctx: JobContext) -> int:
    for url in job.urls:
        await ctx.spawn(Page(url))
    return len(job.urls)  # the parent's result until finalize replaces it


@crawl.finalize
async def gather(job: Site, ctx: JobContext) -> dict[str, object]:
    outcomes = {json.loads(p.payload)["url"]: p.state for p in await ctx.children()}
    return {
        "site": job.name,
        "ok": sorted(url for url, state in outcomes.items() if state is JobState.COMPLETED),
        "not ok": {url: str(s) for url, s in outcomes.items() if s is not JobState.COMPLETED},
    }


@crawler.job
async def page(job: Page, ctx: JobContext) -> str:
    if "broken" in job.url:
        raise ConnectionError(f"{job.url}: 404")
    if "slow" in job.url:
        await anyio.sleep(1.0)
    if job.url.endswith("/index"):
        await ctx.spawn_sibling(Page(job.url.replace("/index", "/about")))
    await anyio.sleep(0.05)
    return job.url


def build_service() -> Service:
    """The example as a Service (`wireframe run examples/children.py` runs it too)."""
    scheduler = Scheduler("memory://", domains=[crawler], cancel_grace=0.1)
    service = Service("children", graceful_timeout=5.0)
    service.add_task(scheduler)

    @service.task(kind=TaskKind.ONESHOT)
    async def demo(stop: StopReceiver) -> None:
        site = Site("docs", ("docs/index", "docs/api", "docs/faq"))
        out = await scheduler.submit(site)
        await anyio.sleep(0.02)
        parent = await scheduler.get(out.id)
        assert parent is not None
        print(f"parent {out.id} is {parent.state} on {parent.active_children} children")
        result = await scheduler.result(out.id, timeout=10)
        print("finalize gathered:", result)
        assert result["ok"] == ["docs/about", "docs/api", "docs/faq", "docs/index"]

        # fail_fast (the default): one broken page cancels the slow one and fails the parent.
        out = await scheduler.submit(Site("shop", ("shop/broken", "shop/slow")))
        try:
            await scheduler.result(out.id, timeout=10)
        except JobFailed as exc:
            print("fail_fast:", exc)
        pages = [p for p in await scheduler.jobs(type=page.type) if p.parent_id == out.id]
        for child in pages:  # the slow page ignores ctx.cancelled: it is cancelled after a grace
            with contextlib.suppress(JobFailed):
                await scheduler.result(child.id, timeout=10)
        pages = [await scheduler.get(p.id) for p in pages]
        print("  children:", {json.loads(p.payload)["url"]: str(p.state) for p in pages if p})

        # fail_fast=False: the slow page still completes and finalize reports the broken one.
        out = await scheduler.submit(Site("blog", ("blog/broken", "blog/slow")), fail_fast=False)
        print("fail_fast=False:", await scheduler.result(out.id, timeout=10))
        service.stop("demo finished")

    return service


def main() -> int:
    return build_service().run_sync(log_level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())
