"""Debounce, throttle, and pausing a domain.

    python examples/debounce_and_pause.py

- ``debounce=``: saves of one document in quick succession make one job; each submission
  replaces the waiting job's payload and pushes its run time back, so the last text is indexed
  once, ``debounce`` seconds after the last edit.
- ``throttle=``: at most one digest per user per period; a submission within it returns
  ``Duplicate`` of the digest already accepted.
- ``pause_domain``: nothing of the domain starts, in any process, until ``resume_domain``
  (jobs already running finish); its pending jobs wait.
"""

from __future__ import annotations

import logging

import attrs

from wireframe import (
    Domain,
    Duplicate,
    JobContext,
    JobState,
    Scheduler,
    Service,
    StopReceiver,
    Submitted,
    TaskKind,
)

search = Domain("search")
mail = Domain("mail")
indexed: list[str] = []


@attrs.frozen
class Index:
    doc: str
    text: str


@search.job(key=lambda i: i.doc)
async def index(job: Index, ctx: JobContext) -> str:
    indexed.append(job.text)
    return f"indexed {job.doc}: {job.text!r}"


@attrs.frozen
class Digest:
    user: str


@mail.job(key=lambda d: d.user)
async def digest(job: Digest, ctx: JobContext) -> str:
    return f"digest sent to {job.user}"


def build_service() -> Service:
    """The example as a Service (`wireframe run examples/debounce_and_pause.py` runs it too)."""
    scheduler = Scheduler("memory://", domains=[search, mail], poll_interval=0.05)
    service = Service("flow-control", graceful_timeout=5.0)
    service.add_task(scheduler)

    @service.task(kind=TaskKind.ONESHOT)
    async def demo(stop: StopReceiver) -> None:
        # Three quick edits of one document: one job, the last text.
        edits = [
            await scheduler.submit(Index("readme", text), debounce=1.0)
            for text in ("draft", "draft 2", "final")
        ]
        print("edits:", ", ".join(str(e) for e in edits))
        first = edits[0]
        assert isinstance(first, Submitted) and all(e.id == first.id for e in edits)
        print("result:", await scheduler.result(first.id, timeout=10))
        print(f"index ran {len(indexed)} time(s), with {indexed}")
        assert indexed == ["final"]

        # At most one digest per user per hour.
        sent = await scheduler.submit(Digest("ada"), throttle=3600)
        await scheduler.result(sent.id, timeout=10)
        again = await scheduler.submit(Digest("ada"), throttle=3600)
        print(f"digest: {sent}, then within the hour: {again}")
        assert isinstance(again, Duplicate) and again.id == sent.id

        # Pause the mail domain: its jobs wait until it is resumed.
        await scheduler.pause_domain("mail")
        held = await scheduler.submit(Digest("grace"))
        done = await scheduler.submit(Index("faq", "answers"))
        await scheduler.result(done.id, timeout=10)  # other domains run on
        job = await scheduler.get(held.id)
        assert job is not None and job.state is JobState.PENDING
        print(
            f"paused: {[f'{p.kind} {p.name}' for p in await scheduler.paused()]};"
            f" job {held.id} is {job.state}"
        )
        await scheduler.resume_domain("mail")
        print("resumed:", await scheduler.result(held.id, timeout=10))
        service.stop("demo finished")

    return service


def main() -> int:
    return build_service().run_sync(log_level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())
