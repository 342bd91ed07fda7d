"""Retry policies: construction, validation and delays."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.retry import Retry, coerce_retry


def test_none_runs_once() -> None:
    policy = Retry.none()
    assert policy.attempts == 1
    assert policy.kind == "none"
    assert not policy.should_retry(1)
    assert policy.delay(1) == 0.0


def test_fixed_waits_the_same_delay() -> None:
    policy = Retry.fixed(attempts=4, delay=2.5)
    assert (policy.attempts, policy.kind, policy.base, policy.cap) == (4, "fixed", 2.5, 2.5)
    assert [policy.delay(n, rand=0.9) for n in (1, 2, 3)] == [2.5, 2.5, 2.5]
    assert [policy.should_retry(n) for n in (1, 2, 3, 4, 5)] == [True, True, True, False, False]


def test_defaults() -> None:
    assert Retry.fixed() == Retry(attempts=3, kind="fixed", base=1.0, cap=1.0, jitter=0.0)
    assert Retry.exponential() == Retry(
        attempts=3, kind="exponential", base=1.0, cap=60.0, jitter=0.1
    )


def test_exponential_doubles_up_to_the_cap_without_jitter() -> None:
    policy = Retry.exponential(attempts=10, base=1.0, cap=10.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_exponential_jitter_bounds() -> None:
    policy = Retry.exponential(attempts=5, base=4.0, cap=100.0, jitter=0.25)
    assert policy.delay(1, rand=0.0) == 3.0  # 4 * (1 - 0.25)
    assert policy.delay(1, rand=0.5) == 4.0
    assert policy.delay(1, rand=1.0) == 5.0  # 4 * (1 + 0.25)
    assert policy.delay(2, rand=1.0) == 10.0


def test_jitter_never_exceeds_the_cap() -> None:
    policy = Retry.exponential(attempts=5, base=10.0, cap=10.0, jitter=1.0)
    assert policy.delay(3, rand=1.0) == 10.0
    assert policy.delay(3, rand=0.0) == 0.0


def test_huge_attempt_numbers_do_not_overflow() -> None:
    policy = Retry.exponential(attempts=10**6, base=0.5, cap=30.0, jitter=0.0)
    assert policy.delay(5000) == 30.0
    assert policy.delay(1024) == 30.0
    assert policy.delay(1023) == 30.0
    assert policy.delay(10**30) == 30.0
    assert Retry.exponential(attempts=2, base=0, cap=5).delay(10**6) == 0.0


def test_random_jitter_used_when_rand_not_given() -> None:
    policy = Retry.exponential(attempts=3, base=10.0, cap=60.0, jitter=0.5)
    delays = {policy.delay(1) for _ in range(50)}
    assert len(delays) > 1
    assert all(5.0 <= d <= 15.0 for d in delays)


@given(
    attempts=st.integers(1, 50),
    base=st.floats(0, 1e6),
    extra=st.floats(0, 1e6),
    jitter=st.floats(0, 1),
    attempt=st.integers(1, 5000),
    rand=st.floats(0, 1),
)
def test_exponential_delay_is_bounded(
    attempts: int, base: float, extra: float, jitter: float, attempt: int, rand: float
) -> None:
    policy = Retry.exponential(attempts=attempts, base=base, cap=base + extra, jitter=jitter)
    delay = policy.delay(attempt, rand=rand)
    assert math.isfinite(delay)
    assert 0.0 <= delay <= policy.cap
    raw = float(min(Fraction(policy.cap), Fraction(base) * 2 ** (attempt - 1)))
    assert raw * (1 - jitter) - 1e-6 * max(1.0, raw) <= delay


@given(attempts=st.integers(1, 50), attempt=st.integers(1, 100))
def test_should_retry_counts_attempts(attempts: int, attempt: int) -> None:
    assert Retry.exponential(attempts=attempts).should_retry(attempt) is (attempt < attempts)


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: Retry.fixed(attempts=0), r"attempts=0 must be an int >= 1"),
        (lambda: Retry.fixed(attempts=2.0), r"attempts=2.0 must be an int >= 1"),  # type: ignore[arg-type]
        (lambda: Retry.fixed(attempts=True), r"attempts=True must be an int >= 1"),
        (lambda: Retry.fixed(delay=-1), r"Retry.fixed: delay=-1 must be a finite number >= 0"),
        (lambda: Retry.fixed(delay=math.nan), r"delay=nan must be a finite number"),
        (lambda: Retry.fixed(delay="1"), r"delay='1' must be a number, not str"),  # type: ignore[arg-type]
        (lambda: Retry.exponential(base=-0.5), r"base=-0.5 must be a finite number >= 0"),
        (lambda: Retry.exponential(cap=math.inf), r"cap=inf must be a finite number"),
        (lambda: Retry.exponential(base=10, cap=5), r"cap=5 must be >= base=10"),
        (lambda: Retry.exponential(jitter=1.5), r"jitter=1.5 must be a finite number between 0"),
        (lambda: Retry.exponential(jitter=-0.1), r"jitter=-0.1 must be"),
        (lambda: Retry(attempts=3, kind="none"), r"attempts=3 must be 1"),
        (lambda: Retry(attempts=3, kind="linear"), r"kind='linear' must be one of"),  # type: ignore[arg-type]
    ],
)
def test_invalid_policies_name_the_field_and_value(build: object, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        build()  # type: ignore[operator]


@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_delay_rejects_bad_attempt_numbers(value: object) -> None:
    with pytest.raises(ConfigError, match="attempt="):
        Retry.fixed().delay(value)  # type: ignore[arg-type]


def test_delay_rejects_rand_out_of_range() -> None:
    with pytest.raises(ConfigError, match="rand=2"):
        Retry.exponential().delay(1, rand=2)


def test_values_are_normalised_to_float_and_frozen() -> None:
    policy = Retry.exponential(attempts=2, base=1, cap=8, jitter=0)
    assert type(policy.base) is float and type(policy.cap) is float
    assert type(policy.jitter) is float
    with pytest.raises(AttributeError):
        policy.attempts = 5  # type: ignore[misc]
    assert hash(policy) == hash(Retry.exponential(attempts=2, base=1.0, cap=8.0, jitter=0.0))


def test_coerce_retry() -> None:
    assert coerce_retry(None, where="job") == Retry.none()
    assert coerce_retry(5, where="job") == Retry.exponential(attempts=5)
    policy = Retry.fixed(attempts=2, delay=0)
    assert coerce_retry(policy, where="job") is policy


@pytest.mark.parametrize("value", [0, -3, True, "3", 2.0])
def test_coerce_retry_rejects_bad_values_naming_the_place(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^media::resize: retry="):
        coerce_retry(value, where="media::resize")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "policy",
    [Retry.none(), Retry.fixed(attempts=2, delay=3), Retry.exponential(7, 0.5, 30.0, 0.2)],
)
def test_json_round_trip(policy: Retry) -> None:
    assert Retry.from_json(policy.to_json()) == policy


@pytest.mark.parametrize(
    "data",
    [{}, {"kind": "none"}, {"attempts": 1, "kind": "x", "base": 0, "cap": 0, "jitter": 0}, []],
)
def test_from_json_rejects_garbage(data: object) -> None:
    with pytest.raises(ConfigError, match=r"Retry\.from_json"):
        Retry.from_json(data)  # type: ignore[arg-type]


def test_describe() -> None:
    assert Retry.none().describe() == "no retries"
    assert Retry.fixed(attempts=3, delay=2).describe() == "3 attempts, 2s apart"
    assert (
        Retry.exponential(attempts=5, base=1, cap=60, jitter=0.1).describe()
        == "5 attempts, exponential backoff 1s..60s ±10%"
    )
