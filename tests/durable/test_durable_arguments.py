"""The numbers a handler gives durable calls are checked at the call: a ConfigError naming the
job, the call and the value, before anything is recorded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from durable_support import scheduler_on

from wireframe import ConfigError, Domain, JobContext

pytestmark = pytest.mark.anyio

BAD = [0, -1.0, float("nan"), float("inf"), "5", True]

Call = Callable[[JobContext, Any], Awaitable[Any]]
CALLS: list[tuple[str, Call, list[object]]] = [
    ("defer_until timeout", lambda ctx, v: ctx.defer_until(lambda: True, 0.01, timeout=v), BAD),
    ("defer_until poll_interval", lambda ctx, v: ctx.defer_until(lambda: True, v), BAD),
    ("sleep 'nap' seconds", lambda ctx, v: ctx.sleep("nap", v), BAD[1:]),
    ("sleep_until 'nap'", lambda ctx, v: ctx.sleep_until("nap", v), BAD[2:]),
    ("wait_event 'go' timeout", lambda ctx, v: ctx.wait_event("go", timeout=v), BAD[1:]),
]


@pytest.mark.parametrize(("call", "invoke", "values"), CALLS, ids=[c[0] for c in CALLS])
async def test_a_bad_number_is_refused_naming_the_job_the_call_and_the_value(
    call: str, invoke: Call, values: list[object], tmp_path: Path
) -> None:
    flow = Domain("flow")

    @flow.job
    async def bad(job: dict, ctx: JobContext) -> list[str]:  # type: ignore[type-arg]
        errors = []
        for value in values:
            try:
                await invoke(ctx, value)
            except ConfigError as exc:
                errors.append(str(exc))
        return errors

    async with scheduler_on("memory", tmp_path, flow) as s:
        out = await s.submit({}, type="flow::bad")
        errors = await s.result(out.id, timeout=10)
        assert await s.store.checkpoints(out.id) == [], "nothing recorded"
    assert len(errors) == len(values), errors
    for error, value in zip(errors, values, strict=True):
        assert error.startswith(f"job {out.id} (flow::bad): {call} must be"), error
        assert error.endswith(repr(value)), error
