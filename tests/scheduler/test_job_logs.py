"""The log lines of a job: each carries that job's id; a final failure is an ERROR with its
traceback, a failure that will be retried a WARNING, a completion a DEBUG line with its
duration, and an outcome the store refused a WARNING naming the job."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import anyio
import attrs
import pytest

from wireframe.scheduler import Domain, JobContext, JobState, Retry, Scheduler
from wireframe.service.log import ContextFilter
from wireframe.store import MemoryStore, NewJob
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@attrs.frozen
class Step:
    name: str


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every scheduler record, with the context fields a service's log handler adds."""
    context = ContextFilter()
    caplog.handler.addFilter(context)
    caplog.set_level(logging.DEBUG, logger="wireframe.scheduler")
    yield caplog
    caplog.handler.removeFilter(context)


def about(caplog: pytest.LogCaptureFixture, job_id: int) -> list[logging.LogRecord]:
    """The records whose `job_id` field is `job_id`."""
    return [r for r in caplog.records if getattr(r, "job_id", None) == job_id]


async def settle(s: Scheduler, *job_ids: int) -> None:
    """Wait until every job has ended (their last lines are logged by then)."""
    with anyio.fail_after(10):
        for job_id in job_ids:
            while not (await s.get(job_id)).terminal:  # type: ignore[union-attr]
                await anyio.sleep(0.005)
        await anyio.sleep(0.02)  # the completer logs right after the write


async def test_a_final_failure_is_an_error_with_its_traceback(
    logs: pytest.LogCaptureFixture,
) -> None:
    flow = Domain("flow")

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        raise ValueError("boom")

    async with running(Scheduler("memory://", domains=[flow])) as s:
        job = await s.submit(Step("x"))
        await settle(s, job.id)
    [record] = [r for r in about(logs, job.id) if r.levelno >= logging.WARNING]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
    text = logs.handler.format(record)
    assert "ValueError: boom" in text and "Traceback" in text and "in step" in text


async def test_a_failure_that_will_be_retried_is_a_warning(
    logs: pytest.LogCaptureFixture,
) -> None:
    flow = Domain("flow")
    tries: list[int] = []

    @flow.job(retry=Retry.fixed(attempts=2, delay=0.0))
    async def step(job: Step, ctx: JobContext) -> None:
        tries.append(1)
        raise RuntimeError(f"try {len(tries)}")

    async with running(Scheduler("memory://", domains=[flow])) as s:
        job = await s.submit(Step("x"))
        await settle(s, job.id)
    lines = [r for r in about(logs, job.id) if r.levelno >= logging.WARNING]
    assert [(r.levelno, "try 1" in r.getMessage()) for r in lines] == [
        (logging.WARNING, True),
        (logging.ERROR, False),
    ]
    assert "will retry" in lines[0].getMessage() and lines[0].exc_info is None
    assert "try 2" in lines[1].getMessage()


async def test_a_completion_is_a_debug_line_with_its_duration(
    logs: pytest.LogCaptureFixture,
) -> None:
    flow = Domain("flow")

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        return None

    async with running(Scheduler("memory://", domains=[flow])) as s:
        job = await s.submit(Step("x"))
        await settle(s, job.id)
    [record] = [r for r in about(logs, job.id) if "completed" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith(f"job {job.id} (flow::step) completed in ")
    assert record.getMessage().endswith(" s")


async def test_failures_before_the_handler_runs_carry_their_own_job_id(
    logs: pytest.LogCaptureFixture,
) -> None:
    flow = Domain("flow")

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        logging.getLogger("app").info("handler of %s", job.name)

    store = MemoryStore()
    # One runner takes them in turn: a good job first, then two that fail before their handler.
    async with running(Scheduler(store, domains=[flow], max_concurrency=1)) as s:
        good = await s.submit(Step("good"))
        bad_payload, unknown = await store.submit(
            [
                NewJob(type="flow::step", domain="flow", payload='{"nom": 1}'),
                NewJob(type="flow::gone", domain="flow", payload="{}"),
            ]
        )
        await settle(s, good.id, bad_payload.id, unknown.id)
        assert (await s.get(bad_payload.id)).state is JobState.FAILED  # type: ignore[union-attr]
    for job_id, text in ((bad_payload.id, "nom"), (unknown.id, "no handler")):
        [record] = [r for r in about(logs, job_id) if r.levelno >= logging.WARNING]
        assert record.levelno == logging.ERROR and text in record.getMessage()
        assert f"job {job_id} " in record.getMessage()
    assert not [r for r in about(logs, good.id) if r.levelno >= logging.WARNING]


async def test_a_rejected_outcome_is_logged_with_its_job_id(
    logs: pytest.LogCaptureFixture,
) -> None:
    flow = Domain("flow")
    gate = anyio.Event()
    started = anyio.Event()
    clock = [time.time()]

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        started.set()
        await gate.wait()

    store = MemoryStore(clock=lambda: clock[0])
    async with running(Scheduler(store, domains=[flow], max_concurrency=1)) as s:
        job = await s.submit(Step("x"))
        with anyio.fail_after(10):
            await started.wait()
        clock[0] += 3600  # the lease runs out and another worker's housekeeping takes it back
        await store.housekeep()
        gate.set()  # the handler returns: its outcome comes under a lease no longer held
        with anyio.fail_after(10):
            while not [r for r in logs.records if "outcome rejected" in r.getMessage()]:
                await anyio.sleep(0.005)
    [record] = [r for r in logs.records if "outcome rejected" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert getattr(record, "job_id", None) == job.id
    assert f"job {job.id}" in record.getMessage()
