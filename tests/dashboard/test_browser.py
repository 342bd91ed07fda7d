"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

Each test loads pages as a person would, filters, opens jobs, presses buttons and waits for
live updates (on the page's own events: no sleeps). Screenshots of the main pages are saved
in ``test-output/dashboard/`` (git-ignored). Outside CI the tests skip, saying why, when
Playwright or Chromium is missing; in CI (``CI=true``, where ``.ci/run`` installs Chromium)
they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
from dashboard_support import XSS, add, add_failed

from wireframe.dashboard import DashboardServer
from wireframe.service import Service
from wireframe.store import ClaimRequest, NewJob, NewSchedule, SqliteStore, Store, WorkerInfo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "dashboard"
TOKEN = "browser-test-token"


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if not os.path.exists(CHROMIUM):
        return "Debian's chromium is not installed (apt-get install chromium; .ci/run does in CI)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's), for the whole module."""
    why = _missing()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def dashboard(
    db: Path, token: str | None
) -> Iterator[tuple[str, anyio.from_thread.BlockingPortal]]:
    """A DashboardServer on `db` in a thread of its own: its base URL, and a portal to run
    store calls on that thread's event loop."""
    server = DashboardServer(f"sqlite:///{db}", port=0, token=token, interval=0.1)
    service = Service(name="dashboard", handle_signals=False)
    service.add_task(server)
    with anyio.from_thread.start_blocking_portal() as portal:
        done = portal.start_task_soon(service.run)
        port = portal.call(server.started)
        try:
            yield f"http://127.0.0.1:{port}", portal
        finally:
            service.stop("test over")
            done.result(timeout=30)


@contextmanager
def page_of(browser: Any) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A fresh page, the dialogs it opened and the errors its console logged."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page, dialogs, errors
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def _fill(db: Path) -> dict[str, int]:
    """A store with jobs of every kind the pages show."""
    async with SqliteStore(db) as store:
        ids = {"plain": await add(store, payload=json.dumps({"path": "/a.jpg", "width": 300}))}
        ids["xss"] = await add(store, type="media::thumb", payload=json.dumps({"name": XSS}))
        ids["failed"] = await add_failed(store, error=f"ValueError: {XSS}")
        ids["parent"] = await _durable_parent(store)
        spec = json.dumps({"kind": "every", "seconds": 300, "overlap": "skip"})
        nightly = NewSchedule(spec=spec, next_run_at=time.time() + 300)
        ids["recurring"] = await add(store, type="reports::nightly", recurring=nightly)
        await store.put_worker(
            WorkerInfo("worker-1", "host-a", 4242, ("flow", "media"), ("gpu",), held=1),
            starting=True,
        )
        for n in range(30):
            await add(store, type="mail::send", payload=json.dumps({"to": f"user{n}@example.org"}))
        return ids


async def _durable_parent(store: Store) -> int:
    """A running job with a durable step and a child: a timeline and a tree to show."""
    parent = await add(store, type="flow::pipeline", payload='{"batch": 7}')
    [job] = await store.claim(
        ClaimRequest(worker_id="worker-1", limit=1, lease_ttl=300.0, domains=("flow",))
    )
    assert job.id == parent
    await store.put_checkpoint(job.lease, 0, "fetch", "step", '{"rows": 3}', 300.0)
    child = NewJob(type="flow::part", domain="flow", payload='{"part": 1}', parent_id=parent)
    await store.spawn_child(job.lease, 1, "part-1", child, 300.0)
    return parent


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    path = tmp_path / "jobs.db"
    # Playwright's sync API runs an event loop on this thread: the store gets a thread of its own
    with anyio.from_thread.start_blocking_portal() as portal:
        ids = portal.call(_fill, path)
    return path, ids


def test_pages_filters_actions_and_live_updates(
    browser: Any, db: tuple[Path, dict[str, int]]
) -> None:
    from playwright.sync_api import expect

    path, ids = db
    with dashboard(path, TOKEN) as (base, portal), page_of(browser) as (page, dialogs, errors):
        page.goto(base + "/")
        expect(page.locator("#domain-totals")).to_contain_text("mail")
        expect(page.locator("#live-status")).to_have_text("●")  # the event stream is open
        shot(page, "overview")
        page.goto(base + "/workers")
        expect(page.locator("#workers")).to_contain_text("host-a")
        shot(page, "workers")
        page.goto(base + "/schedules")
        expect(page.locator("#schedules")).to_contain_text("every 5 minutes")
        shot(page, "schedules")

        # the jobs list, filtered by state through the form
        page.goto(base + "/jobs")
        # 35 submitted (the recurring one included) and the durable job's child
        expect(page.locator("#jobs tbody tr")).to_have_count(36)
        shot(page, "jobs")
        page.select_option("#filter-state", "failed")
        page.click("#filters button[type=submit]")
        expect(page.locator("#jobs tbody tr")).to_have_count(1)
        expect(page.locator(f'tr[data-job="{ids["failed"]}"]')).to_contain_text("fail::boom")

        # a text search, then open the job: its payload holds a script, shown and never run
        page.goto(base + "/jobs")
        page.fill("#filter-text", "alert(1)")
        page.press("#filter-text", "Enter")
        expect(page.locator("#jobs tbody tr")).to_have_count(2)
        page.click(f'a[href="/jobs/{ids["xss"]}"]')
        expect(page.locator("#payload")).to_contain_text(XSS)
        assert page.locator("#payload script").count() == 0
        shot(page, "job-xss")

        # the durable job: its timeline and its child
        page.goto(f"{base}/jobs/{ids['parent']}")
        expect(page.locator("#timeline")).to_contain_text("fetch")
        expect(page.locator("#children")).to_contain_text("flow::part")
        shot(page, "job-durable")

        # cancel and retry with the token: the state changes on the page
        page.goto(f"{base}/jobs/{ids['plain']}")
        page.click("#action-cancel")  # before unlocking: refused, nothing changes
        expect(page.locator("#flash")).to_contain_text("token")
        expect(page.locator("#job-state")).to_have_text("pending")
        page.fill("#token-input", TOKEN)
        page.click("#unlock button")
        page.click("#action-cancel")
        expect(page.locator("#job-state")).to_have_text("cancelled")
        expect(page.locator("#flash")).to_contain_text("cancelled")
        page.click("#action-retry")
        expect(page.locator("#job-state")).to_have_text("pending")
        shot(page, "job-retried")

        # a live update: a job submitted now appears on the open list without a reload
        page.goto(base + "/jobs")
        page.evaluate("window.__notReloaded = true")
        expect(page.locator("#live-status")).to_have_text("●")
        new_id = portal.call(_submit, path)
        # (bounded generously: the sampler paces itself to 1 % of the store's time)
        expect(page.locator(f'tr[data-job="{new_id}"]')).to_be_visible(timeout=60_000)
        assert page.evaluate("window.__notReloaded") is True
        shot(page, "jobs-live")

    assert dialogs == [], f"a dialog opened: {dialogs}"
    assert errors == [], f"the browser logged errors: {errors}"


def test_read_only_without_a_token(browser: Any, db: tuple[Path, dict[str, int]]) -> None:
    from playwright.sync_api import expect

    path, ids = db
    with dashboard(path, None) as (base, _), page_of(browser) as (page, dialogs, errors):
        page.goto(f"{base}/jobs/{ids['plain']}")
        expect(page.locator("#read-only")).to_be_visible()
        assert page.locator(".actions button").count() == 0
        answer = page.request.post(
            f"{base}/jobs/{ids['plain']}/cancel", headers={"x-wireframe-token": TOKEN}
        )
        assert answer.status == 403
        page.reload()
        expect(page.locator("#job-state")).to_have_text("pending")
        shot(page, "job-read-only")
    assert dialogs == [] and errors == []


async def _submit(db: Path) -> int:
    async with SqliteStore(db) as store:
        return await add(store, type="mail::send", payload='{"to": "late@example.org"}')
