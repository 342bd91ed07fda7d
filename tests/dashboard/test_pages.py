"""The dashboard's pages, actions and guards, through its request handler."""

from __future__ import annotations

import json
import re

import anyio
import pytest
from dashboard_support import XSS, add, add_failed, app, call, stream, text

from wireframe.store import JobState, Store

pytestmark = pytest.mark.anyio

TOKEN = "t0ken-for-tests"


async def test_every_page_answers(store: Store) -> None:
    job_id = await add(store)
    dashboard = app(store)
    for path in ("/", "/jobs", f"/jobs/{job_id}", "/workers", "/schedules"):
        response = await call(dashboard, path)
        assert response.status == 200, (path, text(response))
        assert '<main id="live"' in text(response)
    assert (await call(dashboard, "/jobs/999999")).status == 404
    assert (await call(dashboard, "/nowhere")).status == 404
    assert (await call(dashboard, "/static/dashboard.js")).content_type.startswith(
        "text/javascript"
    )
    assert (await call(dashboard, "/static/../app.py")).status == 404


async def test_a_payload_holding_script_is_shown_as_text(store: Store) -> None:
    job_id = await add(store, payload=json.dumps({"name": XSS}), key=XSS, tags=(XSS,))
    failed = await add_failed(store, error=f"ValueError: {XSS}")
    dashboard = app(store)
    for path in (f"/jobs/{job_id}", f"/jobs/{failed}", "/jobs", f"/jobs?q={XSS}"):
        html = text(await call(dashboard, path))
        assert "<script>alert" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
    # the only script on a page is the dashboard's own file
    page = text(await call(dashboard, f"/jobs/{job_id}"))
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/dashboard.js" defer>']


async def test_read_only_without_a_token_hides_buttons_and_refuses_actions(store: Store) -> None:
    job_id = await add(store)
    dashboard = app(store, token=None)
    page = text(await call(dashboard, f"/jobs/{job_id}"))
    assert "action-cancel" not in page and "read-only" in page
    refused = await call(
        dashboard, f"/jobs/{job_id}/cancel", method="POST", headers={"x-wireframe-token": "x"}
    )
    assert refused.status == 403 and "read-only" in text(refused)
    assert (await store.get(job_id)).state is JobState.PENDING  # type: ignore[union-attr]


async def test_actions_need_the_right_token(store: Store) -> None:
    job_id = await add(store)
    dashboard = app(store, token=TOKEN)
    page = text(await call(dashboard, f"/jobs/{job_id}"))
    assert 'id="action-cancel"' in page and 'id="action-retry"' not in page
    for headers in ({}, {"x-wireframe-token": "wrong"}, {"x-wireframe-token": TOKEN[:-1]}):
        refused = await call(dashboard, f"/jobs/{job_id}/cancel", method="POST", headers=headers)
        assert refused.status == 403, headers
    assert (await store.get(job_id)).state is JobState.PENDING  # type: ignore[union-attr]
    # never through GET
    assert (
        await call(dashboard, f"/jobs/{job_id}/cancel", headers={"x-wireframe-token": TOKEN})
    ).status == 404
    done = await call(
        dashboard, f"/jobs/{job_id}/cancel", method="POST", headers={"x-wireframe-token": TOKEN}
    )
    assert done.status == 200 and json.loads(done.body)["state"] == "cancelled"
    again = await call(
        dashboard, f"/jobs/{job_id}/retry", method="POST", headers={"x-wireframe-token": TOKEN}
    )
    assert json.loads(again.body) == {
        "ok": True,
        "message": f"job {job_id}: queued to run again",
        "state": "pending",
    }
    # a form field works too (no script): answered with a redirect to the job
    form = await call(
        dashboard,
        f"/jobs/{job_id}/pause",
        method="POST",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=f"token={TOKEN}".encode(),
    )
    assert form.status == 303 and ("location", f"/jobs/{job_id}") in form.headers
    assert (await store.get(job_id)).state is JobState.PAUSED  # type: ignore[union-attr]
    refused = await call(
        dashboard, f"/jobs/{job_id}/retry", method="POST", headers={"x-wireframe-token": TOKEN}
    )
    assert refused.status == 409 and "cannot retry" in json.loads(refused.body)["message"]


async def test_the_store_password_is_never_shown(store: Store) -> None:
    url = "postgresql://app:hunter2@db.internal:5432/jobs?sslmode=require&password=hunter2"
    dashboard = app(store, url=url)
    for path in ("/", "/jobs", "/workers"):
        html = text(await call(dashboard, path))
        assert "hunter2" not in html, path
        assert "postgresql://app:***@db.internal:5432/jobs" in html


async def test_filters_and_keyset_paging(store: Store) -> None:
    ids = [await add(store, tags=("blue",) if i % 2 else ()) for i in range(7)]
    failed = await add_failed(store)
    dashboard = app(store)

    def listed(html: str) -> list[int]:
        return [int(i) for i in re.findall(r'<tr data-job="(\d+)">', html)]

    assert listed(text(await call(dashboard, "/jobs?state=failed"))) == [failed]
    assert listed(text(await call(dashboard, "/jobs?domain=fail"))) == [failed]
    assert listed(text(await call(dashboard, "/jobs?type=media::resize&tag=blue"))) == ids[5::-2]
    assert listed(text(await call(dashboard, "/jobs?q=BROKEN"))) == [failed]
    first = text(await call(dashboard, "/jobs?domain=media&limit=3"))
    assert listed(first) == ids[:-4:-1]
    older = re.search(r'id="older" href="([^"]+)"', first)
    assert older is not None
    second = text(await call(dashboard, older.group(1).replace("&amp;", "&")))
    assert listed(second) == ids[3:0:-1]
    newer = re.search(r'id="newer" href="([^"]+)"', second)
    assert newer is not None
    assert listed(text(await call(dashboard, newer.group(1).replace("&amp;", "&")))) == ids[:-4:-1]
    for bad in ("/jobs?state=nope", "/jobs?before=x", "/jobs?limit=0", "/jobs?limit=100000"):
        assert (await call(dashboard, bad)).status == 400, bad


async def test_partial_renders_only_the_live_region(store: Store) -> None:
    await add(store)
    html = text(await call(app(store), "/jobs?partial=1"))
    assert "<table" in html and "<html" not in html and "<header" not in html


async def test_requests_for_another_host_are_refused(store: Store) -> None:
    dashboard = app(store)
    refused = await call(dashboard, "/", headers={"host": "evil.example:8321"})
    assert refused.status == 403
    for host in ("localhost:8321", "127.0.0.1", "[::1]:8321"):
        assert (await call(dashboard, "/", headers={"host": host})).status == 200, host


async def test_the_event_stream_ticks_when_the_store_changes(store: Store) -> None:
    dashboard = app(store)
    await dashboard.sampler.sample()
    chunks = (await stream(dashboard)).chunks()
    assert await chunks.__anext__() == b"retry: 2000\n\n"
    first = await chunks.__anext__()
    assert first.startswith(b"event: tick\ndata: ")
    version = json.loads(first.split(b"data: ")[1])["version"]
    await add(store)
    async with anyio.create_task_group() as tg:
        tg.start_soon(dashboard.sampler.run)
        nxt = await chunks.__anext__()
        tg.cancel_scope.cancel()
    assert json.loads(nxt.split(b"data: ")[1])["version"] == version + 1
    await chunks.aclose()


async def test_overview_plots_each_domain(store: Store) -> None:
    await add(store, type="media::resize")
    await add(store, type="mail::send")
    dashboard = app(store)
    await dashboard.sampler.sample()
    await add(store, type="mail::send")
    await dashboard.sampler.sample()
    html = text(await call(dashboard, "/"))
    assert html.count("<svg") == 4  # depth and throughput, for each of the two domains
    assert "<figcaption>mail</figcaption>" in html and 'class="line-queued"' in html


async def test_live_refreshes_pay_their_store_time_from_the_samplers_allowance(
    store: Store,
) -> None:
    await add(store)
    dashboard = app(store)
    await dashboard.sampler.sample(free=True)
    before = dashboard.sampler.allowance
    await call(dashboard, "/jobs?partial=1")  # a live refresh, made by the page's script
    after = dashboard.sampler.allowance
    assert after < before
    await call(dashboard, "/jobs")  # a page a person asked for: not counted
    assert dashboard.sampler.allowance >= after
