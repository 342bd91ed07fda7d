"""Every Python block of README.md runs, as a user would run it (see readme_glue for how)."""

from __future__ import annotations

from pathlib import Path

import pytest

from readme_glue import GLUES, Block, python_blocks, run_block

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = python_blocks((ROOT / "README.md").read_text())


def test_the_readme_has_python_blocks_and_each_id_is_unique() -> None:
    assert len(BLOCKS) >= 6
    assert len({block.id for block in BLOCKS}) == len(BLOCKS)
    for block in BLOCKS:
        assert block.file is None or block.file.endswith(".py"), block
        assert block.glue is None or block.glue in GLUES, block


def test_a_mark_must_be_known_and_come_right_before_its_block() -> None:
    text = "## A\n\n<!-- readme: file=a.py -->\n```python\nx = 1\n```\n```bash\n# no\n```\n"
    (block,) = python_blocks(text)
    assert (block.id, block.file, block.code) == ("a-1", "a.py", "x = 1\n")
    with pytest.raises(ValueError, match="unknown readme mark"):
        python_blocks("<!-- readme: skip -->\n```python\n```\n")
    with pytest.raises(ValueError, match="right before"):
        python_blocks("<!-- readme: glue=asgi -->\ntext\n```python\n```\n")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_block_runs(
    block: Block, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        run_block(block, BLOCKS, backend, tmp_path, monkeypatch)
    except Exception as exc:
        exc.add_note(f"README.md:{block.line + 1} is line 1 of the failing block ({block.id})")
        raise


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
