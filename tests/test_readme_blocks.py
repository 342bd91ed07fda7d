"""Every Python block of README.md runs, as a user would run it (see readme_glue for how)."""

from __future__ import annotations

from pathlib import Path

import pytest

from readme_glue import Block, python_blocks, run_block

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = python_blocks((ROOT / "README.md").read_text())


def test_the_readme_has_python_blocks_and_each_id_is_unique() -> None:
    assert len(BLOCKS) >= 6
    assert len({block.id for block in BLOCKS}) == len(BLOCKS)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_block_runs(
    block: Block, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_block(block, BLOCKS, backend, tmp_path, monkeypatch)


# The glue must not hide a broken block: a few broken ones, each of which has to fail.

BROKEN = {
    "undefined-name": "print(not_defined)\n",
    "failing-job": """
from wireframe import Domain, Scheduler, Service, StopReceiver, TaskKind

d = Domain("d")


@d.job
async def boom(job: dict, ctx) -> None:
    raise ValueError("boom")


scheduler = Scheduler("memory://", domains=[d])
service = Service(name="s")
service.add_task(scheduler)


@service.task(kind=TaskKind.ONESHOT)
async def submit(stop: StopReceiver) -> None:
    await scheduler.submit({}, type="d::boom")


raise SystemExit(service.run_sync())
""",
    "never-done": """
from wireframe import Domain, Scheduler, Service, StopReceiver, TaskKind

d = Domain("d")


@d.job
async def wait(job: dict, ctx) -> None:
    await ctx.wait_event("never")


scheduler = Scheduler("memory://", domains=[d])
service = Service(name="s")
service.add_task(scheduler)


@service.task(kind=TaskKind.ONESHOT)
async def submit(stop: StopReceiver) -> None:
    await scheduler.submit({}, type="d::wait")


raise SystemExit(service.run_sync())
""",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_block_fails(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = Block(name, 1, BROKEN[name])
    if name == "never-done":
        monkeypatch.setattr("readme_glue.LIMIT", 0.5)
    with pytest.raises((AssertionError, NameError)):
        run_block(block, [block], "asyncio", tmp_path, monkeypatch)
