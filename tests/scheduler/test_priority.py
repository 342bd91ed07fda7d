"""Priority levels and coercion of priority arguments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.priority import (
    AGING_STEP,
    PRIORITY_MAX,
    PRIORITY_MIN,
    Priority,
    coerce_priority,
)


def test_levels_are_ordered_ints() -> None:
    assert [int(p) for p in Priority] == [0, 10, 20, 30]
    assert Priority.LOW < Priority.NORMAL < Priority.HIGH < Priority.CRITICAL
    assert AGING_STEP == Priority.HIGH - Priority.NORMAL == 10
    assert (PRIORITY_MIN, PRIORITY_MAX) == (-1000, 1000)


@pytest.mark.parametrize("level", list(Priority))
def test_enum_members_pass_through_as_int(level: Priority) -> None:
    result = coerce_priority(level, where="submit")
    assert result == level
    assert type(result) is int


@pytest.mark.parametrize(
    ("name", "expected"),
    [("high", 20), ("HIGH", 20), ("High", 20), (" low ", 0), ("critical", 30), ("normal", 10)],
)
def test_level_names_are_case_insensitive(name: str, expected: int) -> None:
    assert coerce_priority(name, where="submit") == expected


@given(st.integers(PRIORITY_MIN, PRIORITY_MAX))
def test_integers_in_range_are_accepted(value: int) -> None:
    assert coerce_priority(value, where="submit") == value


@pytest.mark.parametrize("value", [PRIORITY_MIN - 1, PRIORITY_MAX + 1, 10**9, -(10**9)])
def test_out_of_range_integers_are_rejected(value: int) -> None:
    with pytest.raises(ConfigError, match=rf"media::resize priority: invalid priority {value}"):
        coerce_priority(value, where="media::resize priority")


@pytest.mark.parametrize("value", [True, False, 1.5, 10.0, None, b"high", [10], object()])
def test_wrong_types_are_rejected_naming_value_and_place(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        coerce_priority(value, where="Domain('media')")
    message = str(info.value)
    assert message.startswith("Domain('media'): invalid priority")
    assert repr(value) in message
    assert type(value).__name__ in message


def test_unknown_name_is_rejected_listing_the_levels() -> None:
    with pytest.raises(ConfigError, match=r"'urgent'.*low, normal, high, critical"):
        coerce_priority("urgent", where="submit")


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        coerce_priority("nope", where="submit")
