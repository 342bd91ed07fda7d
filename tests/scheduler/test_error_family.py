"""One error family: whatever a Scheduler or Worker method raises is a `SchedulerError`, of a
class `wireframe` exports, whose message names the job or schedule and its state.

Each public method's failure cases are walked on the memory store and on SQLite; a method
added later must be listed here (with its failures, or as having none of its own).
"""

from __future__ import annotations

import inspect
import pickle
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import wireframe
from wireframe import (
    ConfigError,
    Domain,
    Every,
    InvalidStoreURL,
    JobContext,
    JobFailed,
    JobKeyConflict,
    JobNotFound,
    JobState,
    JobStateError,
    PayloadError,
    Permanent,
    ResultTimeout,
    ScheduleNotFound,
    Scheduler,
    SchedulerError,
    ScheduleStateError,
    StopReceiver,
    StoreFailure,
    StoreSchemaError,
    Task,
    Worker,
)
from wireframe.store import (
    DuplicateKeyError,
    InvalidTransitionError,
    SchemaVersionError,
    StoreError,
    StoreURLError,
    UnknownJobError,
    UnknownScheduleError,
)
from wireframe.testing import running

pytestmark = pytest.mark.anyio

MISSING = 987_654


def make_domain() -> Domain:
    flow = Domain("flow")

    @flow.job
    async def ok(job: dict[str, Any], ctx: JobContext) -> int:
        return 1

    @flow.job
    async def boom(job: dict[str, Any], ctx: JobContext) -> None:
        raise Permanent("boom")

    @flow.job(key=lambda job: str(job["k"]))
    async def keyed(job: dict[str, Any], ctx: JobContext) -> None:
        raise Permanent("keyed boom")

    return flow


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'jobs.db'}"


class Walk:
    """Calls that must fail, and which methods they covered."""

    def __init__(self) -> None:
        self.covered: set[str] = set()

    async def fails(
        self,
        method: str,
        expected: type[SchedulerError],
        call: Callable[[], Awaitable[object] | object],
        *mentions: str,
    ) -> Any:
        with pytest.raises(SchedulerError) as info:
            outcome = call()
            if inspect.isawaitable(outcome):
                await outcome
        error = info.value
        assert type(error) is expected, f"{method}: {type(error).__name__}: {error}"
        check_exported(error)
        for text in mentions:
            assert text in str(error), f"{method}: {text!r} not in {str(error)!r}"
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)
        self.covered.add(method)
        return error


def check_exported(error: BaseException) -> None:
    name = type(error).__name__
    assert name in wireframe.__all__, f"{name} is not exported from wireframe"
    assert getattr(wireframe, name) is type(error)


def public_methods(cls: type) -> set[str]:
    """The methods a class adds to Task's (which belong to the service layer)."""
    return {
        name
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_")
        and callable(value)
        and not isinstance(value, type)
        and not hasattr(Task, name)
    }


# Methods with no failure of their own: they read local state, or only reach the store (whose
# failures every method shares; `test_a_store_failure_is_a_store_failure` covers those).
NO_OWN_FAILURE = {
    "check_requests",
    "close",
    "notify",
    "open",
    "provide",
    "run",
    "schedules",
    "snapshot",
}


async def ended(s: Scheduler, job_id: int) -> None:
    with pytest.raises(JobFailed):
        await s.result(job_id, timeout=10)


async def test_every_scheduler_method_raises_only_exported_scheduler_errors(
    store_url: str,
) -> None:
    walk = Walk()
    await walk.fails("Scheduler", InvalidStoreURL, lambda: Scheduler("bogus://x", domains=[]))
    await walk.fails("Scheduler", ConfigError, lambda: Scheduler(store_url, domains=[]))
    client = Scheduler(store_url, domains=[make_domain()], worker=False)
    await walk.fails("require_worker", ConfigError, client.require_worker, "worker=False")
    async with running(Scheduler(store_url, domains=[make_domain()], poll_interval=0.02)) as s:
        await walk.fails("job_type", ConfigError, lambda: s.job_type(3.5), "float")
        await walk.fails(
            "build_job", ConfigError, lambda: s.build_job({}, "flow::ok", {"priority": "urgent"})
        )
        await walk.fails("subscribe", ConfigError, lambda: s.subscribe(buffer=-1), "-1")
        await walk.fails("jobs", ConfigError, lambda: s.jobs(state="sleepy"), "sleepy")

        # submit and submit_many
        await walk.fails("submit", ConfigError, lambda: s.submit(3.5), "float")
        await walk.fails(
            "submit", ConfigError, lambda: s.submit({}, type="flow::nope"), "flow::nope"
        )
        await walk.fails(
            "submit", ConfigError, lambda: s.submit({}, type="flow::ok", delay=-1), "delay"
        )
        await walk.fails(
            "submit", PayloadError, lambda: s.submit({"x": object()}, type="flow::ok"), "x"
        )
        await walk.fails(
            "submit",
            JobNotFound,
            lambda: s.submit({}, type="flow::ok", depends_on=[MISSING]),
            str(MISSING),
        )
        await walk.fails(
            "submit",
            JobNotFound,
            lambda: s.submit({}, type="flow::ok", parent=MISSING),
            str(MISSING),
        )
        done = await s.submit({}, type="flow::ok")
        assert await s.result(done, timeout=10) == 1
        refused = await walk.fails(
            "submit",
            JobStateError,
            lambda: s.submit({}, type="flow::ok", parent=done.id),
            f"job {done.id}",
            "completed",
        )
        assert refused.job_id == done.id and refused.state is JobState.COMPLETED
        await walk.fails(
            "submit_many",
            JobNotFound,
            lambda: s.submit_many([{}, {}], type="flow::ok", depends_on=[MISSING]),
            str(MISSING),
        )
        await walk.fails(
            "submit_many", PayloadError, lambda: s.submit_many([{"x": object()}], type="flow::ok")
        )

        # result
        await walk.fails("result", JobNotFound, lambda: s.result(MISSING), str(MISSING))
        await walk.fails("result", ConfigError, lambda: s.result("7"), "'7'")  # type: ignore[arg-type]
        failed = await s.submit({}, type="flow::boom")
        error = await walk.fails(
            "result", JobFailed, lambda: s.result(failed, timeout=10), "failed", "boom"
        )
        assert error.job_id == failed.id
        later = await s.submit({}, type="flow::ok", delay=3600)
        late = await walk.fails(
            "result",
            ResultTimeout,
            lambda: s.result(later, timeout=0.05),
            f"job {later.id}",
            "scheduled",
        )
        assert isinstance(late, TimeoutError) and late.state is JobState.SCHEDULED

        # control
        for method in ("get", "cancel", "pause", "resume", "retry"):
            await walk.fails(
                method, ConfigError, lambda m=method: getattr(s, m)("7"), method, "'7'"
            )
        for method in ("cancel", "pause", "resume", "retry"):
            await walk.fails(
                method, JobNotFound, lambda m=method: getattr(s, m)(MISSING), str(MISSING)
            )
        for method in ("pause", "resume"):
            refused = await walk.fails(
                method,
                JobStateError,
                lambda m=method: getattr(s, m)(done.id),
                f"job {done.id}",
                "completed",
            )
            assert refused.state is JobState.COMPLETED and refused.job_id == done.id
            assert isinstance(refused, InvalidTransitionError)  # the store's name still works
        for job_id, state in ((done.id, JobState.COMPLETED), (later.id, JobState.SCHEDULED)):
            refused = await walk.fails(
                "retry", JobStateError, lambda j=job_id: s.retry(j), f"job {job_id}", state
            )
            assert refused.state is state
        first = await s.submit({"k": "same"}, type="flow::keyed")
        await ended(s, first.id)
        holder = await s.submit({"k": "same"}, type="flow::keyed", delay=3600)
        conflict = await walk.fails(
            "retry", JobKeyConflict, lambda: s.retry(first.id), f"job {first.id}", str(holder.id)
        )
        assert isinstance(conflict, JobStateError) and isinstance(conflict, DuplicateKeyError)
        assert conflict.state is JobState.FAILED
        dependent = await s.submit(
            {}, type="flow::ok", depends_on=[failed], on_dependency_failure="fail"
        )
        await ended(s, dependent.id)
        await walk.fails(
            "retry",
            JobStateError,
            lambda: s.retry(dependent.id),
            f"job {dependent.id}",
            f"job {failed.id} (failed)",
        )

        # events
        await walk.fails("emit_event", ConfigError, lambda: s.emit_event(""), "''")
        await walk.fails("emit_event", PayloadError, lambda: s.emit_event("go", object()), "'go'")

        # pausing a domain or job type
        for method, bad in (
            ("pause_domain", "flow::ok"),
            ("resume_domain", ""),
            ("pause_type", "flow"),
            ("resume_type", 3),
        ):
            await walk.fails(
                method, ConfigError, lambda m=method, b=bad: getattr(s, m)(b), method, repr(bad)
            )

        # schedules
        for method in ("pause_schedule", "resume_schedule", "cancel_schedule"):
            gone = await walk.fails(
                method,
                ScheduleNotFound,
                lambda m=method: getattr(s, m)(MISSING),
                method,
                f"schedule with id {MISSING}",
            )
            assert gone.schedule_id == MISSING
            assert isinstance(gone, JobNotFound) and isinstance(gone, UnknownScheduleError)
        out = await s.submit({}, type="flow::ok", recurring=Every(3600, initial_delay=3600))
        assert out.schedule_id is not None
        sid = out.schedule_id
        assert (await s.cancel_schedule(sid)).state == "cancelled"
        for method in ("pause_schedule", "resume_schedule"):
            refused = await walk.fails(
                method,
                ScheduleStateError,
                lambda m=method: getattr(s, m)(sid),
                method,
                f"schedule {sid}",
                "cancelled",
            )
            assert refused.schedule_id == sid and refused.state == "cancelled"

    # the store failing under a method: get, jobs... (the rest below)
    broken = Scheduler(store_url, domains=[make_domain()], worker=False)
    await broken.open()
    await broken.store.close()  # behind the scheduler's back
    for method, call in (
        ("get", lambda: broken.get(1)),
        ("jobs", lambda: broken.jobs()),
        ("snapshot", broken.snapshot),
        ("schedules", broken.schedules),
        ("paused", broken.paused),
        ("result", lambda: broken.result(1)),
        ("cancel", lambda: broken.cancel(1)),
        ("submit", lambda: broken.submit({}, type="flow::ok")),
    ):
        await walk.fails(method, StoreFailure, call)

    worker = Worker(store_url, [make_domain()])
    await walk.fails("Worker", InvalidStoreURL, lambda: Worker("bogus://x", [make_domain()]))
    await walk.fails("interrupt", ConfigError, lambda: worker.interrupt(1, "tired"), "tired")

    every = public_methods(Scheduler) | public_methods(Worker) | {"Scheduler", "Worker"}
    assert every - NO_OWN_FAILURE <= walk.covered, "add the failures of the new method"
    assert walk.covered - every == set()


async def test_cancel_schedule_of_an_ended_schedule_returns_it_as_it_is(store_url: str) -> None:
    s = Scheduler(store_url, domains=[make_domain()], worker=False)
    try:
        out = await s.submit({}, type="flow::ok", recurring=Every(3600, initial_delay=3600))
        assert out.schedule_id is not None
        first = await s.cancel_schedule(out.schedule_id)
        again = await s.cancel_schedule(out.schedule_id)
        assert first.state == again.state == "cancelled"
        assert again == first
        once = await s.submit({}, type="flow::ok", recurring=Every(3600, max_occurrences=1))
        assert once.schedule_id is not None
        [finished] = [r for r in await s.schedules() if r.id == once.schedule_id]
        assert finished.state == "finished"
        assert await s.cancel_schedule(once.schedule_id) == finished
    finally:
        await s.close()


async def test_control_methods_take_what_submit_returned(store_url: str) -> None:
    s = Scheduler(store_url, domains=[make_domain()], worker=False)
    try:
        out = await s.submit({}, type="flow::ok", delay=3600)
        assert (await s.get(out)) == (await s.get(out.id))
        assert await s.pause(out) == 1
        assert await s.resume(out) == 1
        assert await s.cancel(out) is JobState.CANCELLED
        await s.retry(out)
        record = await s.get(out)
        assert record is not None and record.state is JobState.PENDING
    finally:
        await s.close()


def test_the_store_errors_scheduler_errors_stand_for_keep_their_old_names() -> None:
    assert issubclass(JobStateError, InvalidTransitionError)
    assert issubclass(JobKeyConflict, DuplicateKeyError)
    assert issubclass(ScheduleNotFound, JobNotFound)
    assert issubclass(ScheduleNotFound, UnknownScheduleError)
    assert issubclass(ScheduleNotFound, UnknownJobError)
    assert issubclass(ScheduleStateError, InvalidTransitionError)
    assert issubclass(StoreFailure, StoreError)
    assert issubclass(StoreSchemaError, SchemaVersionError)
    assert issubclass(InvalidStoreURL, StoreURLError) and issubclass(InvalidStoreURL, ValueError)
    assert issubclass(ResultTimeout, TimeoutError)
    assert issubclass(wireframe.DurableError, SchedulerError)
    assert issubclass(wireframe.NonDeterminismError, wireframe.DurableError)
    assert issubclass(wireframe.NotAChildError, wireframe.DurableError)
    assert wireframe.DurableError is wireframe.durable.DurableError


def exported_exceptions() -> Iterator[type[BaseException]]:
    for name in wireframe.__all__:
        value = getattr(wireframe, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            yield value


def test_every_exported_scheduler_exception_derives_from_scheduler_error() -> None:
    scheduler_side = set(wireframe.scheduler.__all__)
    for cls in exported_exceptions():
        if cls.__name__ in scheduler_side and cls is not Permanent:
            assert issubclass(cls, SchedulerError), cls


async def test_opening_a_store_a_newer_wireframe_wrote_is_a_store_schema_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version (version) VALUES (100000)")
    db.close()
    for make in (
        lambda: Scheduler(f"sqlite:///{path}", domains=[make_domain()], worker=False),
        lambda: Worker(f"sqlite:///{path}", [make_domain()]),
    ):
        task = make()
        with pytest.raises(StoreSchemaError) as info:
            await task.open()
        check_exported(info.value)
        assert "100000" in str(info.value)
    directory = tmp_path / "a-directory.db"
    directory.mkdir()
    with pytest.raises(StoreFailure) as failed:
        await Scheduler(f"sqlite:///{directory}", domains=[make_domain()], worker=False).open()
    assert "directory" in str(failed.value)


async def test_a_worker_task_that_cannot_open_its_store_fails_with_a_store_failure(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "dir.db"
    directory.mkdir()
    worker = Worker(f"sqlite:///{directory}", [make_domain()])
    with pytest.raises(StoreFailure):
        await worker.run(StopReceiver())


async def test_joining_a_job_that_is_no_child_raises_an_exported_scheduler_error() -> None:
    flow = Domain("flow")
    caught: list[BaseException] = []

    @flow.job(retry=3)
    async def joiner(job: dict[str, int], ctx: JobContext) -> None:
        try:
            await ctx.join(wireframe.ChildHandle(job["other"]))
        except SchedulerError as exc:
            caught.append(exc)
            raise

    @flow.job
    async def idle(job: dict[str, int], ctx: JobContext) -> None:
        raise AssertionError("never due in this test")

    async with running(Scheduler("memory://", domains=[flow], poll_interval=0.02)) as s:
        stranger = await s.submit({}, type="flow::idle", delay=3600)
        out = await s.submit({"other": stranger.id}, type="flow::joiner")
        with pytest.raises(JobFailed):
            await s.result(out, timeout=10)
    [error] = caught  # a re-run would join the same stranger: it is final, never retried
    assert type(error) is wireframe.NotAChildError
    assert isinstance(error, wireframe.DurableError) and isinstance(error, ValueError)
    check_exported(error)
    assert f"job {stranger.id} is not a child of job {out.id}" in str(error)
