"""Dependencies: ``depends_on=[ids]`` and the three ``on_dependency_failure`` policies.

    python examples/dependencies.py

A job with ``depends_on`` stays ``blocked`` until every job it depends on has completed. If one
of them fails instead, the dependent's ``on_dependency_failure`` decides:

- ``"cancel"`` (the default): the dependent is cancelled, and so, in cascade, are its own
  dependents;
- ``"fail"``: the dependent ends ``dependency_failed``; the failure goes no further (a job that
  depends on *it* stays blocked until someone cancels it);
- ``"ignore"``: the dependent runs anyway.

An unknown id in ``depends_on`` is rejected at submit time.
"""

from __future__ import annotations

import logging

import attrs

from wireframe import (
    Domain,
    JobContext,
    JobNotFound,
    JobState,
    Scheduler,
    Service,
    StopReceiver,
    TaskKind,
)

etl = Domain("etl")
ran: list[str] = []


@attrs.frozen
class Step:
    name: str
    fail: bool = False


@etl.job
async def step(job: Step, ctx: JobContext) -> str:
    ran.append(job.name)
    if job.fail:
        raise RuntimeError(f"{job.name} failed")
    return job.name


def build_service() -> Service:
    """The example as a Service (`wireframe run examples/dependencies.py` runs it too)."""
    scheduler = Scheduler("memory://", domains=[etl])
    service = Service("dependencies", graceful_timeout=5.0)
    service.add_task(scheduler)

    @service.task(kind=TaskKind.ONESHOT)
    async def demo(stop: StopReceiver) -> None:
        # A small pipeline: two extracts, then transform, then load.
        users = await scheduler.submit(Step("extract-users"), delay=0.1)
        orders = await scheduler.submit(Step("extract-orders"))
        transform = await scheduler.submit(Step("transform"), depends_on=[users.id, orders.id])
        load = await scheduler.submit(Step("load"), depends_on=[transform])  # ids or outcomes
        print("transform is", (await scheduler.get(transform.id)).state)  # type: ignore[union-attr]
        await scheduler.result(load.id, timeout=10)
        print("ran in order:", " -> ".join(ran))

        # A dependency that fails, and one dependent per policy.
        bad = await scheduler.submit(Step("extract-bad", fail=True), delay=0.1)
        cancel = await scheduler.submit(Step("on-cancel"), depends_on=[bad.id])
        cancel_next = await scheduler.submit(Step("after-on-cancel"), depends_on=[cancel.id])
        fail = await scheduler.submit(
            Step("on-fail"), depends_on=[bad.id], on_dependency_failure="fail"
        )
        fail_next = await scheduler.submit(Step("after-on-fail"), depends_on=[fail.id])
        ignore = await scheduler.submit(
            Step("on-ignore"), depends_on=[bad.id], on_dependency_failure="ignore"
        )
        await scheduler.result(ignore.id, timeout=10)
        expected = [
            ("extract-bad", bad, JobState.FAILED),
            ("on-cancel", cancel, JobState.CANCELLED),
            ("after-on-cancel", cancel_next, JobState.CANCELLED),  # the cancel cascaded
            ("on-fail", fail, JobState.DEPENDENCY_FAILED),
            ("after-on-fail", fail_next, JobState.BLOCKED),  # "fail" does not cascade
            ("on-ignore", ignore, JobState.COMPLETED),
        ]
        for name, out, state in expected:
            job = await scheduler.get(out.id)
            assert job is not None
            print(f"  {name:<16} {job.state}")
            assert job.state is state, (name, job.state)
        await scheduler.cancel(fail_next.id)

        try:
            await scheduler.submit(Step("orphan"), depends_on=[12345])
        except JobNotFound as exc:
            print("unknown dependency rejected:", exc)
        service.stop("demo finished")

    return service


def main() -> int:
    return build_service().run_sync(log_level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())
