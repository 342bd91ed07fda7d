"""Lifecycle events and the EventBus: ordering, lag accounting, unsubscribe, close."""

from __future__ import annotations

import inspect
import time

import anyio
import attrs
import pytest

from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.events import (
    EventBus,
    EventsLagged,
    JobBlocked,
    JobCancelled,
    JobCompleted,
    JobEvent,
    JobExpired,
    JobFailedEvent,
    JobPreempted,
    JobProgress,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobSuspended,
    JobUnblocked,
    JobWaiting,
)


def submitted(n: int) -> JobSubmitted:
    return JobSubmitted(job_id=n, job_type="media::resize", at=float(n))


# --------------------------------------------------------------------------- event values


def test_events_are_frozen_values_with_a_timestamp() -> None:
    before = time.time()
    event = JobStarted(job_id=3, job_type="media::resize", attempt=2, worker_id="host-1")
    assert before <= event.at <= time.time()
    assert event.kind == "started"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.attempt = 3  # type: ignore[misc]
    assert JobStarted(3, "t", 2, "w", at=1.0) == JobStarted(3, "t", 2, "w", at=1.0)


def test_every_event_type() -> None:
    events = [
        JobSubmitted(job_id=1, job_type="d::j"),
        JobStarted(job_id=1, job_type="d::j", attempt=1, worker_id="w"),
        JobProgress(job_id=1, job_type="d::j", fraction=0.5, message="half"),
        JobCompleted(job_id=1, job_type="d::j", duration=0.25),
        JobFailedEvent(job_id=1, job_type="d::j", error="boom", attempt=1, will_retry=True),
        JobRetrying(job_id=1, job_type="d::j", attempt=1, delay=2.0),
        JobCancelled(job_id=1, job_type="d::j"),
        JobExpired(job_id=1, job_type="d::j"),
        JobPreempted(job_id=1, job_type="d::j"),
        JobBlocked(job_id=1, job_type="d::j", depends_on=[4, 5]),
        JobUnblocked(job_id=1, job_type="d::j"),
        JobWaiting(job_id=1, job_type="d::j", children=3),
        JobSuspended(job_id=1, job_type="d::j", until=None, reason="event:paid"),
    ]
    assert all(isinstance(event, JobEvent) for event in events)
    kinds = [event.kind for event in events]
    assert len(set(kinds)) == len(kinds)
    blocked = events[9]
    assert isinstance(blocked, JobBlocked) and blocked.depends_on == (4, 5)
    assert JobProgress(job_id=1, job_type="d::j", fraction=1.0).message is None
    lagged = EventsLagged(missed=7)
    assert not isinstance(lagged, JobEvent)
    assert not hasattr(lagged, "job_id")
    assert lagged.kind == "lagged"


# --------------------------------------------------------------------------- the bus


def test_publish_is_synchronous() -> None:
    assert not inspect.iscoroutinefunction(EventBus.publish)
    bus = EventBus()
    bus.publish(submitted(1))  # no subscribers, no event loop: fine


@pytest.mark.anyio
async def test_events_arrive_in_order() -> None:
    bus = EventBus()
    async with bus.subscribe() as events:
        for n in range(100):
            bus.publish(submitted(n))
        received = [await events.receive() for _ in range(100)]
    assert received == [submitted(n) for n in range(100)]


@pytest.mark.anyio
async def test_receiver_waiting_is_woken_by_publish() -> None:
    bus = EventBus()
    received: list[object] = []
    async with bus.subscribe() as events, anyio.create_task_group() as tg:

        async def consume() -> None:
            async for event in events:
                received.append(event)
                if len(received) == 3:
                    return

        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        for n in range(3):
            bus.publish(submitted(n))
            await anyio.wait_all_tasks_blocked()
    assert received == [submitted(0), submitted(1), submitted(2)]


@pytest.mark.anyio
async def test_slow_subscriber_gets_exact_lag_count_then_the_latest_events() -> None:
    bus = EventBus()
    async with bus.subscribe(buffer=10) as events:
        for n in range(10_000):
            bus.publish(submitted(n))
        assert events.pending == 10
        assert await events.receive() == EventsLagged(missed=9_990)
        rest = [await events.receive() for _ in range(10)]
        assert rest == [submitted(n) for n in range(9_990, 10_000)]
        assert events.receive_nowait() is None


@pytest.mark.anyio
async def test_lag_is_reported_again_after_further_drops() -> None:
    bus = EventBus()
    async with bus.subscribe(buffer=2) as events:
        for n in range(5):
            bus.publish(submitted(n))
        assert await events.receive() == EventsLagged(missed=3)
        assert await events.receive() == submitted(3)
        for n in range(5, 8):  # buffer holds [4]; 5 fits, 6 and 7 push out 4 and 5
            bus.publish(submitted(n))
        assert [await events.receive() for _ in range(3)] == [
            EventsLagged(missed=2),
            submitted(6),
            submitted(7),
        ]


@pytest.mark.anyio
async def test_slow_subscriber_does_not_affect_a_fast_one() -> None:
    bus = EventBus()
    slow = bus.subscribe(buffer=4)
    fast_seen: list[int] = []
    async with slow, bus.subscribe(buffer=4) as fast, anyio.create_task_group() as tg:

        async def consume() -> None:
            async for event in fast:
                assert isinstance(event, JobSubmitted)
                fast_seen.append(event.job_id)

        tg.start_soon(consume)
        for n in range(1_000):
            bus.publish(submitted(n))
            await anyio.wait_all_tasks_blocked()  # the fast one keeps up
        assert slow.pending == 4
        fast.close()
    assert fast_seen == list(range(1_000))
    assert await slow.receive() == EventsLagged(missed=996)


def test_publish_work_is_bounded_with_a_stalled_subscriber() -> None:
    # publish never waits for a subscriber and a stalled one's buffer stays bounded:
    # each publish is one append (plus a counter) per subscriber, whatever its state.
    bus = EventBus()
    stalled = [bus.subscribe(buffer=8) for _ in range(10)]
    for n in range(50_000):
        bus.publish(submitted(n))
    assert all(s.pending == 8 for s in stalled)
    assert all(s.receive_nowait() == EventsLagged(missed=49_992) for s in stalled)


@pytest.mark.anyio
async def test_many_subscribers_each_see_everything() -> None:
    bus = EventBus()
    subscriptions = [bus.subscribe() for _ in range(50)]
    assert bus.subscriber_count == 50
    for n in range(20):
        bus.publish(submitted(n))
    for subscription in subscriptions:
        assert [await subscription.receive() for _ in range(20)] == [
            submitted(n) for n in range(20)
        ]
        subscription.close()
    assert bus.subscriber_count == 0


@pytest.mark.anyio
async def test_subscriber_only_sees_events_published_after_subscribing() -> None:
    bus = EventBus()
    bus.publish(submitted(1))
    async with bus.subscribe() as events:
        bus.publish(submitted(2))
        assert await events.receive() == submitted(2)


@pytest.mark.anyio
async def test_unsubscribe_on_exit_and_close() -> None:
    bus = EventBus()
    async with bus.subscribe() as events:
        assert bus.subscriber_count == 1
    assert bus.subscriber_count == 0
    assert events.closed
    bus.publish(submitted(1))
    assert events.pending == 0
    with pytest.raises(anyio.EndOfStream):
        await events.receive()

    subscription = bus.subscribe()
    bus.publish(submitted(2))
    subscription.close()
    subscription.close()  # idempotent
    bus.publish(submitted(3))
    assert [event async for event in subscription] == [submitted(2)]


@pytest.mark.anyio
async def test_unsubscribe_on_error_exit() -> None:
    bus = EventBus()
    with pytest.raises(RuntimeError):
        async with bus.subscribe():
            raise RuntimeError("boom")
    assert bus.subscriber_count == 0


@pytest.mark.anyio
async def test_close_ends_every_iteration_after_buffered_events() -> None:
    bus = EventBus()
    results: dict[int, list[object]] = {}
    async with anyio.create_task_group() as tg:
        for index in range(3):

            async def consume(index: int = index) -> None:
                async with bus.subscribe() as events:
                    results[index] = [event async for event in events]

            tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        assert bus.subscriber_count == 3
        bus.publish(submitted(1))
        bus.close()
    assert results == {0: [submitted(1)], 1: [submitted(1)], 2: [submitted(1)]}
    assert bus.closed and bus.subscriber_count == 0
    bus.publish(submitted(2))  # dropped
    late = bus.subscribe()
    assert late.closed
    assert [event async for event in late] == []


@pytest.mark.anyio
async def test_cancelled_receive_leaves_the_subscription_usable() -> None:
    bus = EventBus()
    async with bus.subscribe() as events:
        with anyio.move_on_after(0.01):
            await events.receive()
        bus.publish(submitted(1))
        assert await events.receive() == submitted(1)


@pytest.mark.anyio
async def test_two_receivers_on_one_subscription_share_events() -> None:
    bus = EventBus()
    got: list[object] = []
    async with bus.subscribe() as events, anyio.create_task_group() as tg:

        async def take() -> None:
            got.append(await events.receive())

        tg.start_soon(take)
        tg.start_soon(take)
        await anyio.wait_all_tasks_blocked()
        bus.publish(submitted(1))
        await anyio.wait_all_tasks_blocked()
        bus.publish(submitted(2))
    assert sorted(got, key=repr) == [submitted(1), submitted(2)]


@pytest.mark.parametrize("buffer", [0, -1, True, 1.5, "8"])
def test_bad_buffer_sizes_are_rejected(buffer: object) -> None:
    with pytest.raises(ConfigError, match=r"buffer="):
        EventBus(buffer=buffer)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"subscribe: buffer="):
        EventBus().subscribe(buffer=buffer)  # type: ignore[arg-type]


def test_default_buffer() -> None:
    assert EventBus().subscribe().buffer == 1024
    assert EventBus(buffer=16).subscribe().buffer == 16
    assert EventBus(buffer=16).subscribe(4).buffer == 4


def test_a_subscription_buffer_of_zero_is_refused_not_replaced() -> None:
    from wireframe import Scheduler

    s = Scheduler("memory://", domains=[], worker=False)
    with pytest.raises(ConfigError, match=r"subscribe: buffer=0 must be an int >= 1"):
        s.subscribe(buffer=0)
