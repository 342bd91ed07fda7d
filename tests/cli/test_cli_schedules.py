"""`wireframe schedules`: what fires when, and the firings skipped while a run was active."""

from __future__ import annotations

import anyio
from cli_support import Cli


def _seed(store_url: str) -> tuple[int, int]:
    """A schedule whose first run has not ended, fired once more (skipped); and a queue one."""
    import cli_app

    from wireframe import Every, Scheduler

    async def seed() -> tuple[int, int]:
        async with Scheduler(store_url, domains=[cli_app.demo], worker=False) as client:
            skip = await client.submit({"n": 1}, type="demo::ok", recurring=Every(300))
            queue = await client.submit(
                {"n": 2}, type="demo::ok", recurring=Every(60, overlap="queue", max_occurrences=5)
            )
            assert skip.schedule_id is not None and queue.schedule_id is not None
            [first, _] = await client.schedules()
            assert first.next_run_at is not None
            fired = await client.store.fire_schedule(
                first.id, first.next_run_at, first.next_run_at + 300
            )
            assert fired is not None and fired.skipped
            return skip.schedule_id, queue.schedule_id

    return anyio.run(seed)


def test_schedules_show_the_overlap_policy_and_the_skipped_firings(wf: Cli, store_url: str) -> None:
    cli = wf
    assert "no schedules" in cli("schedules").out
    skip, queue = _seed(store_url)
    result = cli("schedules")
    assert result.code == 0, result
    lines = [line for line in result.out.splitlines() if "demo::ok" in line]
    assert len(lines) == 2
    assert "every 5 minutes" in lines[0] and "skip" in lines[0] and "1 (last" in lines[0]
    assert "every 1 minute" in lines[1] and "queue" in lines[1] and "1/5" in lines[1]
    rows = cli("schedules", "--json").json()
    assert [(r["id"], r["overlap"], r["skipped"]) for r in rows] == [
        (skip, "skip", 1),
        (queue, "queue", 0),
    ]
    assert rows[0]["last_skipped_at"] is not None and rows[1]["last_skipped_at"] is None
    assert rows[0]["spec"]["seconds"] == 300
    assert cli("schedules", "--state", "paused", "--json").json() == []
