"""The glue that runs README.md's Python blocks as a user would, and stops them when done.

Each ```python block runs as a script (`python block.py`), in a temporary working directory:
  - `<!-- readme: file=NAME.py -->` before a block names its file: every such block is written
    into the directory before each block runs, so later blocks can `import` it;
  - `<!-- readme: glue=NAME -->` runs it, after the script, through `GLUES[NAME]` (e.g. `asgi`
    drives the FastAPI app it defines).
A service a block runs (`service.run_sync()`) is stopped once it is ready, its oneshot tasks
have ended and no job of its schedulers is still active (pending, running, suspended, ...); it
fails if a job failed, if a HealthServer's `/ready` is not 200 then, or if that takes longer
than `LIMIT`. `anyio.run` and `run_sync` run on the backend under test; a HealthServer binds a
free loopback port.
"""

from __future__ import annotations

import functools
import re
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest

from wireframe import HealthServer, JobState, Scheduler, Service, TaskKind, TaskState, Worker

LIMIT = 10.0
"""Seconds a block may take before it is stopped and fails."""
_MARK = re.compile(r"<!--\s*readme:\s*(.*?)\s*-->")
_KEYS = {"file", "glue"}


@attrs.frozen
class Block:
    """One ```python block of the README."""

    id: str
    line: int
    code: str
    file: str | None = None
    glue: str | None = None


def python_blocks(text: str) -> list[Block]:
    """Every ```python block, with its marks and an id made of its heading and its index."""
    blocks: list[Block] = []
    heading, index, marks, fence, other = "top", 0, {}, None, False
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if fence is not None or other:
            if line.startswith("```"):
                if fence is not None:
                    code = "\n".join(lines[fence : number - 1]) + "\n"
                    index += 1
                    blocks.append(Block(f"{heading}-{index}", fence, code, **marks))
                fence, other, marks = None, False, {}
            continue
        if line.startswith("#"):
            heading = re.sub(r"[^a-z0-9]+", "-", line.lstrip("#").lower()).strip("-")
            index = 0
        elif (found := _MARK.fullmatch(line.strip())) is not None:
            marks = dict(part.partition("=")[::2] for part in found.group(1).split())
            if not set(marks) <= _KEYS:
                raise ValueError(f"README.md:{number}: unknown readme mark in {line!r}")
        elif line.startswith("```python"):
            fence = number
        elif line.startswith("```"):
            other = True
        elif line.strip() and marks:
            raise ValueError(f"README.md:{number}: a readme mark must come right before ```python")
    return blocks


def run_block(
    block: Block, blocks: list[Block], backend: str, tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run one block in `tmp` on `backend`; raise if it fails or does not finish."""
    monkeypatch.chdir(tmp)
    monkeypatch.syspath_prepend(str(tmp))
    for other in blocks:
        if other.file is not None:
            (tmp / other.file).write_text(other.code)
            monkeypatch.delitem(sys.modules, other.file.removesuffix(".py"), raising=False)
    failures: list[str] = []
    _patch(monkeypatch, backend, failures)
    path = tmp / (block.file or "block.py")
    path.write_text(block.code)
    try:
        try:
            namespace = runpy.run_path(str(path), run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise AssertionError(f"the block exited with {exc.code!r}") from exc
            namespace = {}
        assert not failures, failures
        if block.glue is not None:
            GLUES[block.glue](namespace, backend)
    finally:  # modules imported from tmp must not leak into the next block
        for other in blocks:
            if other.file is not None:
                sys.modules.pop(other.file.removesuffix(".py"), None)


def _patch(monkeypatch: pytest.MonkeyPatch, backend: str, failures: list[str]) -> None:
    run, run_sync, health_init, anyio_run = (
        Service.run,
        Service.run_sync,
        HealthServer.__init__,
        anyio.run,
    )

    async def watched_run(service: Service) -> None:
        errors: list[Exception] = []
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                try:
                    await run(service)
                except Exception as exc:  # raised below, as the service raised it
                    errors.append(exc)
                finally:
                    tg.cancel_scope.cancel()

            tg.start_soon(serve)
            await _stop_when_done(service, failures)
        if errors:
            raise errors[0]

    def on_backend(service: Service, *args: Any, **kwargs: Any) -> int:
        return run_sync(service, backend, **kwargs)  # type: ignore[arg-type]

    @functools.wraps(health_init)
    def loopback(self: HealthServer, *args: Any, **kwargs: Any) -> None:
        health_init(self, *args, **{**kwargs, "host": "127.0.0.1", "port": 0})

    def limited_run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async def limited() -> Any:
            with anyio.fail_after(2 * LIMIT):
                return await fn(*args)

        return anyio_run(limited, backend=backend)

    monkeypatch.setattr(Service, "run", watched_run)
    monkeypatch.setattr(Service, "run_sync", on_backend)
    monkeypatch.setattr(HealthServer, "__init__", loopback)
    monkeypatch.setattr(anyio, "run", limited_run)


async def _stop_when_done(service: Service, failures: list[str]) -> None:
    """Stop `service` once it is ready, its oneshots ended and its jobs are all ended."""
    fronts = [t for t in service._tasks.values() if isinstance(t, Scheduler | Worker)]
    with anyio.move_on_after(LIMIT) as scope:
        while not await _done(service, fronts):
            await anyio.sleep(0.01)
    if service.status().stop_reason is not None:
        return  # the block stopped it (or it failed): its exit code tells
    if scope.cancelled_caught:
        failures.append(f"not done within {LIMIT} s: {service.status()}")
    for server in service._tasks.values():
        if isinstance(server, HealthServer):
            async with httpx.AsyncClient() as client:
                ready = await client.get(f"{server.url}/ready")
            if ready.status_code != 200:
                failures.append(f"{server.url}/ready answered {ready.status_code}: {ready.text}")
    for front in fronts:
        if not front.closed:
            for job in await front.store.list_jobs(states=[JobState.FAILED]):
                failures.append(f"job {job.id} ({job.type}) failed: {job.error}")
    service.stop("the README block is done")


async def _done(service: Service, fronts: list[Scheduler | Worker]) -> bool:
    status = service.status()
    if status.stop_reason is not None:
        return True  # the block stopped it itself, or it failed
    if not status.ready:
        return False
    oneshots = (TaskKind.ONESHOT, TaskKind.UNCONSTRAINED_ONESHOT)
    if any(t.kind in oneshots and t.state is TaskState.RUNNING for t in status.tasks):
        return False
    for front in fronts:
        await front.open()
        if await front.store.list_jobs(states=[s for s in JobState if not s.terminal], limit=1):
            return False
    return True


def _asgi(namespace: dict[str, Any], backend: str) -> None:
    """Drive the FastAPI `app` a block defines: its lifespan, then two identical requests."""
    app = namespace["app"]

    async def drive() -> tuple[httpx.Response, httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                body = {"path": "/a.jpg", "width": 300}
                return await client.post("/resize", json=body), await client.post(
                    "/resize", json=body
                )

    first, again = anyio.run(drive, backend=backend)
    assert first.status_code == 202, first.text
    assert again.json() == first.json(), "the same resize is submitted once (its key)"


GLUES: dict[str, Callable[[dict[str, Any], str], None]] = {"asgi": _asgi}
"""Extra steps, by name, run after a block marked `<!-- readme: glue=NAME -->`."""
