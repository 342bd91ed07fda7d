"""`wireframe job ID` shows the metadata stored with a job (as text and in --json)."""

from __future__ import annotations

import anyio
from cli_support import Cli

from wireframe import Scheduler
from wireframe.store import NewJob, store_from_url


async def _submit(url: str) -> int:
    store = store_from_url(url)
    async with Scheduler(store, domains=[], worker=False) as scheduler:
        [result] = await scheduler.store.submit(
            [NewJob("demo::work", "demo", "{}", meta={"tenant": "acme", "traceparent": "00-ab"})]
        )
        return result.id


def test_job_detail_shows_its_meta(cli: Cli, store_url: str) -> None:
    job_id = anyio.run(_submit, store_url)
    text = cli("job", str(job_id))
    assert text.code == 0, text
    assert "meta" in text.out and "tenant=acme, traceparent=00-ab" in text.out
    data = cli("job", str(job_id), "--json").json()
    assert data["meta"] == {"tenant": "acme", "traceparent": "00-ab"}
