"""Middleware: hooks around every submit, attempt and durable step, in list order on the way in
and in reverse on the way out; metadata they add travels with the job (its record, ctx.meta,
its spawned children); a failing hook is named, and never loses a job."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest

from wireframe import (
    AttemptOutcome,
    AttemptStatus,
    ConfigError,
    Domain,
    JobContext,
    JobState,
    Middleware,
    MiddlewareError,
    Retry,
    Scheduler,
    Submission,
    Worker,
)
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'jobs.db'}"


class Recorder(Middleware):
    """Records every hook call as (its label, the hook, what it saw)."""

    def __init__(self, label: str, log: list[tuple[str, ...]]) -> None:
        self.label = label
        self.log = log

    async def before_submit(self, submission: Submission) -> None:
        self.log.append((self.label, "before_submit", submission.type))
        submission.meta[f"seen-by-{self.label}"] = "yes"

    async def after_submit(self, submission: Submission) -> None:
        self.log.append((self.label, "after_submit", str(submission.id)))

    async def submit_failed(self, submission: Submission, error: BaseException) -> None:
        self.log.append((self.label, "submit_failed", type(error).__name__))

    async def before_attempt(self, ctx: JobContext) -> None:
        self.log.append((self.label, "before_attempt", str(ctx.job.attempt)))

    async def on_error(self, ctx: JobContext, error: BaseException) -> None:
        self.log.append((self.label, "on_error", str(error)))

    async def after_attempt(self, ctx: JobContext, outcome: AttemptOutcome) -> None:
        self.log.append((self.label, "after_attempt", str(outcome.status)))

    async def before_step(self, ctx: JobContext, name: str) -> None:
        self.log.append((self.label, "before_step", name))

    async def after_step(self, ctx: JobContext, name: str, error: BaseException | None) -> None:
        self.log.append((self.label, "after_step", name))


def hooks(log: list[tuple[str, ...]], *names: str) -> list[tuple[str, ...]]:
    return [entry for entry in log if entry[1] in names]


async def test_hooks_run_in_order_and_metadata_travels_with_the_job(url: str) -> None:
    d = Domain("d")
    log: list[tuple[str, ...]] = []
    seen: dict[str, str] = {}

    @d.job
    async def work(job: dict[str, int], ctx: JobContext) -> int:
        log.append(("handler", "run", ""))
        seen.update(ctx.meta)
        return 1

    mw = [Recorder("a", log), Recorder("b", log)]
    async with running(Scheduler(url, domains=[d], middleware=mw)) as s:
        sub = await s.submit({}, type="d::work", meta={"tenant": "acme"})
        assert await s.result(sub, timeout=10) == 1
        record = await s.get(sub)
        listed = await s.jobs(type="d::work")
    expected_meta = {"tenant": "acme", "seen-by-a": "yes", "seen-by-b": "yes"}
    assert seen == expected_meta
    assert record is not None and record.meta == expected_meta
    assert listed[0].meta == expected_meta
    assert log == [
        ("a", "before_submit", "d::work"),
        ("b", "before_submit", "d::work"),
        ("b", "after_submit", str(sub.id)),
        ("a", "after_submit", str(sub.id)),
        ("a", "before_attempt", "1"),
        ("b", "before_attempt", "1"),
        ("handler", "run", ""),
        ("b", "after_attempt", "completed"),
        ("a", "after_attempt", "completed"),
    ]


async def test_on_error_gets_the_exception_and_after_attempt_the_outcome(url: str) -> None:
    d = Domain("d")
    raised: list[BaseException] = []
    errors: list[BaseException] = []
    outcomes: list[AttemptOutcome] = []

    class Errors(Middleware):
        async def on_error(self, ctx: JobContext, error: BaseException) -> None:
            errors.append(error)

        async def after_attempt(self, ctx: JobContext, outcome: AttemptOutcome) -> None:
            outcomes.append(outcome)

    @d.job(retry=Retry.fixed(attempts=2, delay=0.0))
    async def boom(job: dict[str, int], ctx: JobContext) -> None:
        exc = ValueError(f"bad {ctx.job.attempt}")
        raised.append(exc)
        raise exc

    async with running(Scheduler(url, domains=[d], middleware=[Errors()])) as s:
        sub = await s.submit({}, type="d::boom")
        with pytest.raises(Exception, match="bad 2"):
            await s.result(sub, timeout=10)
    assert errors == raised and errors[0] is raised[0]
    assert [o.status for o in outcomes] == [AttemptStatus.RETRY, AttemptStatus.FAILED]
    assert outcomes[0].error is raised[0] and outcomes[0].retry_at is not None
    assert outcomes[1].message == "ValueError: bad 2" and not outcomes[1].ok


async def test_a_failing_before_submit_refuses_the_job_naming_the_middleware(url: str) -> None:
    d = Domain("d")
    log: list[tuple[str, ...]] = []

    @d.job
    async def work(job: dict[str, int], ctx: JobContext) -> None:
        pass

    class Refuse(Middleware):
        async def before_submit(self, submission: Submission) -> None:
            raise PermissionError("tenant over quota")

    mw = [Recorder("a", log), Refuse(), Recorder("c", log)]
    async with running(Scheduler(url, domains=[d], middleware=mw)) as s:
        with pytest.raises(MiddlewareError, match="middleware Refuse failed in before_submit") as e:
            await s.submit({}, type="d::work")
        assert isinstance(e.value.__cause__, PermissionError)
        assert "tenant over quota" in str(e.value)
        assert await s.jobs() == []
    # The way out runs for the middleware passed on the way in only.
    assert log == [
        ("a", "before_submit", "d::work"),
        ("a", "submit_failed", "MiddlewareError"),
    ]


async def test_bad_metadata_is_refused_at_submission(url: str) -> None:
    d = Domain("d")

    @d.job
    async def work(job: dict[str, int], ctx: JobContext) -> None:
        pass

    class Bad(Middleware):
        async def before_submit(self, submission: Submission) -> None:
            submission.meta["n"] = 3  # type: ignore[assignment]

    async with running(Scheduler(url, domains=[d])) as s:
        with pytest.raises(ConfigError, match=r"submit d::work meta: value of 'n' must be a str"):
            await s.submit({}, type="d::work", meta={"n": 3})  # type: ignore[dict-item]
        with pytest.raises(ConfigError, match="meta must be a mapping"):
            await s.submit({}, type="d::work", meta=["x"])  # type: ignore[arg-type]
    async with running(Scheduler(url, domains=[d], middleware=[Bad()])) as s:
        with pytest.raises(ConfigError, match="value of 'n' must be a str"):
            await s.submit({}, type="d::work")
        assert await s.jobs() == []
    with pytest.raises(ConfigError, match="is not a Middleware"):
        Scheduler(url, domains=[d], middleware=[object()])  # type: ignore[list-item]


async def test_a_failing_before_attempt_fails_the_attempt_and_keeps_the_job(url: str) -> None:
    d = Domain("d")
    ran: list[int] = []
    calls = 0

    class Flaky(Middleware):
        async def before_attempt(self, ctx: JobContext) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("tracer not ready")

    @d.job(retry=Retry.fixed(attempts=2, delay=0.0))
    async def work(job: dict[str, int], ctx: JobContext) -> str:
        ran.append(ctx.job.attempt)
        return "done"

    async with running(Scheduler(url, domains=[d], middleware=[Flaky()])) as s:
        sub = await s.submit({}, type="d::work")
        assert await s.result(sub, timeout=10) == "done"
        attempts = await s.store.attempts(sub.id)
    assert ran == [2]  # the handler did not run in the attempt the middleware failed
    assert attempts[0].outcome == "failed"
    assert "middleware Flaky failed in before_attempt: RuntimeError: tracer not ready" in (
        attempts[0].error or ""
    )


async def test_failing_way_out_hooks_are_logged_and_ignored(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    d = Domain("d")

    class Broken(Middleware):
        async def after_submit(self, submission: Submission) -> None:
            raise RuntimeError("after_submit broke")

        async def on_error(self, ctx: JobContext, error: BaseException) -> None:
            raise RuntimeError("on_error broke")

        async def after_attempt(self, ctx: JobContext, outcome: AttemptOutcome) -> None:
            raise RuntimeError("after_attempt broke")

    @d.job
    async def work(job: dict[str, int], ctx: JobContext) -> str:
        return "done"

    @d.job
    async def boom(job: dict[str, int], ctx: JobContext) -> None:
        raise ValueError("handler broke")

    with caplog.at_level(logging.ERROR, logger="wireframe.middleware"):
        async with running(Scheduler(url, domains=[d], middleware=[Broken()])) as s:
            ok = await s.submit({}, type="d::work")
            bad = await s.submit({}, type="d::boom")
            assert await s.result(ok, timeout=10) == "done"
            with pytest.raises(Exception, match="handler broke"):
                await s.result(bad, timeout=10)
    messages = [r.getMessage() for r in caplog.records if r.name == "wireframe.middleware"]
    for hook in ("after_submit", "on_error", "after_attempt"):
        assert f"middleware Broken failed in {hook} (ignored)" in messages


async def test_spawned_children_inherit_metadata_and_run_the_submit_hooks(url: str) -> None:
    d = Domain("d")
    submissions: list[Submission] = []
    child_meta: dict[str, str] = {}

    class Stamp(Middleware):
        async def before_submit(self, submission: Submission) -> None:
            submissions.append(submission)
            submission.meta["depth"] = str(int(submission.meta.get("depth", "-1")) + 1)

    @d.job
    async def child(job: dict[str, int], ctx: JobContext) -> None:
        child_meta.update(ctx.meta)

    @d.job
    async def parent(job: dict[str, int], ctx: JobContext) -> None:
        handle = await ctx.spawn({}, type="d::child", meta={"extra": "1"})
        await ctx.join(handle)

    async with running(Scheduler(url, domains=[d], middleware=[Stamp()])) as s:
        sub = await s.submit({}, type="d::parent", meta={"tenant": "acme"})
        await s.result(sub, timeout=10)
    assert child_meta == {"tenant": "acme", "depth": "1", "extra": "1"}
    # Once per spawn: the re-run after the join's suspension replays the spawn.
    assert [(x.type, x.spawned, x.parent_id) for x in submissions] == [
        ("d::parent", False, None),
        ("d::child", True, sub.id),
    ]
    assert submissions[1].id is not None and not submissions[1].duplicate


async def test_step_hooks_wrap_steps_that_run_not_replays(url: str) -> None:
    d = Domain("d")
    log: list[tuple[str, ...]] = []

    @d.job
    async def work(job: dict[str, int], ctx: JobContext) -> int:
        first = await ctx.step("fetch", lambda: 20)
        await ctx.sleep("nap", 0.01)  # suspends: the re-run replays the step
        return first + await ctx.step("add", lambda x: x + 1, 1)

    async with running(Scheduler(url, domains=[d], middleware=[Recorder("a", log)])) as s:
        sub = await s.submit({}, type="d::work")
        assert await s.result(sub, timeout=10) == 22
    assert hooks(log, "before_step", "after_step", "before_attempt", "after_attempt") == [
        ("a", "before_attempt", "1"),
        ("a", "before_step", "fetch"),
        ("a", "after_step", "fetch"),
        ("a", "after_attempt", "suspended"),
        ("a", "before_attempt", "1"),
        ("a", "before_step", "add"),
        ("a", "after_step", "add"),
        ("a", "after_attempt", "completed"),
    ]


async def test_timeouts_and_cancellations_reach_after_attempt(url: str) -> None:
    d = Domain("d")
    outcomes: dict[str, AttemptOutcome] = {}
    started = anyio.Event()

    class Outcomes(Middleware):
        async def after_attempt(self, ctx: JobContext, outcome: AttemptOutcome) -> None:
            outcomes[ctx.job.type] = outcome

    @d.job(timeout=0.05)
    async def slow(job: dict[str, int], ctx: JobContext) -> None:
        await anyio.sleep_forever()

    @d.job
    async def held(job: dict[str, int], ctx: JobContext) -> None:
        started.set()
        await anyio.sleep_forever()

    async with running(Scheduler(url, domains=[d], middleware=[Outcomes()])) as s:
        timed = await s.submit({}, type="d::slow")
        with pytest.raises(Exception, match="timed out"):
            await s.result(timed, timeout=10)
        cancelled = await s.submit({}, type="d::held")
        with anyio.fail_after(10):
            await started.wait()
        await s.cancel(cancelled)
        with pytest.raises(Exception, match="cancelled"):
            await s.result(cancelled, timeout=10)
        assert (await s.get(cancelled)).state is JobState.CANCELLED  # type: ignore[union-attr]
    assert outcomes["d::slow"].status is AttemptStatus.FAILED
    assert outcomes["d::slow"].message == "timed out after 0.05s"
    assert isinstance(outcomes["d::slow"].error, TimeoutError)
    assert outcomes["d::held"].error is None
    assert outcomes["d::held"].status is AttemptStatus.CANCELLED


async def test_a_worker_runs_its_own_middleware(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    d = Domain("d")
    log: list[tuple[str, ...]] = []

    @d.job
    async def work(job: dict[str, int], ctx: JobContext) -> dict[str, str]:
        return dict(ctx.meta)

    client = Scheduler(url, domains=[d], worker=False, middleware=[Recorder("client", log)])
    async with client:
        sub = await client.submit({}, type="d::work")
        async with running(Worker(url, [d], middleware=[Recorder("worker", log)])):
            assert await client.result(sub, timeout=10) == {"seen-by-client": "yes"}
    assert [entry[:2] for entry in log] == [
        ("client", "before_submit"),
        ("client", "after_submit"),
        ("worker", "before_attempt"),
        ("worker", "after_attempt"),
    ]
