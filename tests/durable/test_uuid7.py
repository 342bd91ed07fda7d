"""`ctx.uuid7()` values strictly increase within a process (RFC 9562 section 6.2, method 2),
are valid version-7 UUIDs, and replay unchanged on a re-run."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest
from durable_support import KINDS, scheduler_on
from hypothesis import given
from hypothesis import strategies as st

from wireframe import Domain, JobContext
from wireframe.durable._uuid7 import RAND_BITS, MonotonicUuid7, next_uuid7

N = 5000


def assert_v7(value: uuid.UUID) -> None:
    assert value.version == 7 and value.variant == uuid.RFC_4122, value


def ms_of(value: uuid.UUID) -> int:
    return value.int >> 80


def test_thousands_of_consecutive_values_strictly_increase() -> None:
    values = [next_uuid7() for _ in range(N)]
    for value in values:
        assert_v7(value)
    assert all(a < b for a, b in itertools.pairwise(values))
    assert all(str(a) < str(b) for a, b in itertools.pairwise(values)), "as text too"


class Script:
    """A clock and random bits that replay the given readings in turn."""

    def __init__(self, clock: list[int], bits: list[int]) -> None:
        self.clock, self.bits = clock, bits
        self.i = self.j = 0

    def time(self) -> float:
        now = self.clock[self.i % len(self.clock)]
        self.i += 1
        return now / 1000 + 0.0004  # within millisecond `now`

    def randbits(self, k: int) -> int:
        value = self.bits[self.j % len(self.bits)]
        self.j += 1
        return value % (1 << k)


@given(
    clock=st.lists(st.integers(0, 2**40), min_size=1, max_size=50),
    bits=st.lists(
        st.one_of(st.integers(0, 2**RAND_BITS - 1), st.just(2**RAND_BITS - 1)),
        min_size=1,
        max_size=20,
    ),
)
def test_values_increase_whatever_the_clock_and_the_random_bits_do(
    clock: list[int], bits: list[int]
) -> None:
    """Repeated, stepping-back and leaping clocks, and random bits at the top of their range
    (the counter then overflows into the next millisecond)."""
    script = Script(clock, bits)
    source = MonotonicUuid7(clock=script.time, randbits=script.randbits)
    values = [source() for _ in range(len(clock) * 3)]
    latest = -1
    for i, value in enumerate(values):
        assert_v7(value)
        latest = max(latest, clock[i % len(clock)])
        assert ms_of(value) >= latest, "never behind the clock"
    assert all(a < b for a, b in itertools.pairwise(values))


def test_a_value_takes_the_clock_millisecond_when_the_clock_moves_on() -> None:
    script = Script([1000, 1000, 1001], [5])
    source = MonotonicUuid7(clock=script.time, randbits=script.randbits)
    first, second, third = source(), source(), source()
    assert [ms_of(v) for v in (first, second, third)] == [1000, 1000, 1001]
    assert first < second < third


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_a_job_s_uuid7_values_increase_and_replay_unchanged(
    kind: str, tmp_path: Path
) -> None:
    flow = Domain("flow")
    runs: list[list[uuid.UUID]] = []

    @flow.job
    async def ids(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        runs.append([await ctx.uuid7() for _ in range(200)])
        await ctx.sleep("between", 0.01)  # suspends: the job runs again from the top

    async with scheduler_on(kind, tmp_path, flow) as s:
        out = await s.submit({}, type="flow::ids")
        await s.result(out.id, timeout=30)
    first, replayed = runs
    assert replayed == first
    for value in first:
        assert_v7(value)
    assert all(a < b for a, b in itertools.pairwise(first))
