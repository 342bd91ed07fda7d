"""The worker's hand-off queue: every item reaches exactly one consumer, none is lost."""

from __future__ import annotations

import anyio
import pytest

from wireframe.scheduler.handoff import Handoff

pytestmark = pytest.mark.anyio


async def test_each_item_reaches_exactly_one_of_many_waiting_consumers() -> None:
    queue: Handoff[int] = Handoff()
    got: list[int] = []
    done = anyio.Event()

    async def consume() -> None:
        while True:
            try:
                got.append(await queue.get())
            except anyio.EndOfStream:
                return
            if len(got) == 100:
                done.set()

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        for i in range(100):
            queue.put(i)
            if i % 10 == 0:
                await anyio.lowlevel.checkpoint()
        await done.wait()
        queue.close()
    assert sorted(got) == list(range(100))


async def test_close_hands_out_what_is_left_then_ends() -> None:
    queue: Handoff[str] = Handoff()
    queue.put("a")
    queue.put("b")
    queue.close()
    assert len(queue) == 2
    assert await queue.get() == "a"
    assert queue.get_nowait() == "b"
    with pytest.raises(anyio.EndOfStream):
        await queue.get()
    with pytest.raises(anyio.ClosedResourceError):
        queue.put("c")


async def test_get_nowait_on_an_empty_open_queue_would_block() -> None:
    queue: Handoff[int] = Handoff()
    with pytest.raises(anyio.WouldBlock):
        queue.get_nowait()


async def test_a_consumer_cancelled_after_its_wake_up_passes_the_item_on() -> None:
    queue: Handoff[int] = Handoff()
    received: list[int] = []

    async with anyio.create_task_group() as tg:
        first_scope = anyio.CancelScope()

        async def first() -> None:
            with first_scope:
                received.append(await queue.get())

        async def second() -> None:
            with pytest.raises(anyio.EndOfStream):
                while True:
                    received.append(await queue.get())

        tg.start_soon(first)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        queue.put(7)  # wakes `first`, which may be cancelled before it can take the item
        first_scope.cancel()
        await anyio.wait_all_tasks_blocked()
        queue.close()
    assert received == [7]  # whichever took it, the item was neither lost nor duplicated


async def test_a_consumer_cancelled_while_idle_leaves_no_stale_waiter() -> None:
    queue: Handoff[int] = Handoff()
    with anyio.move_on_after(0.01):
        await queue.get()
    got: list[int] = []

    async with anyio.create_task_group() as tg:

        async def consume() -> None:
            got.append(await queue.get())

        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        queue.put(1)
    assert got == [1]


async def test_a_burst_reaches_every_idle_consumer_even_if_each_then_blocks() -> None:
    """Wake-ups pass from consumer to consumer: one that takes an item and then blocks must not
    strand the items behind it while other consumers sit idle."""
    queue: Handoff[int] = Handoff()
    taken: list[int] = []
    all_taken = anyio.Event()
    gate = anyio.Event()

    async def consume() -> None:
        taken.append(await queue.get())
        if len(taken) == 8:
            all_taken.set()
        await gate.wait()  # a long job: this consumer takes nothing more

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            for i in range(8):
                queue.put(i)
            await all_taken.wait()
            gate.set()
    assert sorted(taken) == list(range(8))


async def test_a_consumer_cancelled_after_its_wake_up_passes_on_a_burst() -> None:
    queue: Handoff[int] = Handoff()
    taken: list[int] = []
    both = anyio.Event()

    async with anyio.create_task_group() as tg:
        first_scope = anyio.CancelScope()

        async def first() -> None:
            with first_scope:
                taken.append(await queue.get())

        async def other() -> None:
            taken.append(await queue.get())
            if len(taken) == 2:
                both.set()

        tg.start_soon(first)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(other)
        tg.start_soon(other)
        await anyio.wait_all_tasks_blocked()
        first_scope.cancel()  # `first` is on its way out...
        queue.put(1)  # ...when the wake-up reaches it: it must pass that on
        queue.put(2)
        with anyio.fail_after(5):
            await both.wait()
        tg.cancel_scope.cancel()  # one consumer is still waiting, for nothing
    assert sorted(taken) == [1, 2]
