"""Recurring schedules: Every, Cron parsing, next fire times (DST included), JSON."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wireframe import Overlap
from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.recurring import Cron, Every, Recurrence, recurrence_from_json

UTC = dt.UTC
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def ts(
    year: int,
    month: int = 1,
    day: int = 1,
    hour: int = 0,
    minute: int = 0,
    *,
    tz: dt.tzinfo = UTC,
    fold: int = 0,
) -> float:
    """UNIX time of a wall-clock time in ``tz``."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold).timestamp()


def utc(when: float | None) -> dt.datetime:
    assert when is not None
    return dt.datetime.fromtimestamp(when, UTC)


def fire_times(schedule: Recurrence, start: float, count: int) -> list[float]:
    times: list[float] = []
    when: float | None = start
    for _ in range(count):
        assert when is not None
        when = schedule.next_run(when)
        assert when is not None
        times.append(when)
    return times


# --------------------------------------------------------------------------- Every


def test_every_fires_at_intervals() -> None:
    every = Every(30)
    assert isinstance(every, Recurrence)
    assert every.first_run(1000.0) == 1000.0
    assert every.next_run(1000.0) == 1030.0
    assert fire_times(every, 0.0, 3) == [30.0, 60.0, 90.0]
    assert every.max_occurrences is None


def test_every_initial_delay_and_limit() -> None:
    every = Every(5, max_occurrences=3, initial_delay=2)
    assert every.first_run(100.0) == 102.0
    assert every.max_occurrences == 3
    assert Every(5, initial_delay=0).first_run(7.5) == 7.5
    assert type(Every(5).seconds) is float


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"seconds": 0}, r"Every\(seconds=0\): seconds=0 must be a finite number > 0"),
        ({"seconds": -1}, r"seconds=-1 must be a finite number > 0"),
        ({"seconds": math.inf}, r"seconds=inf must be a finite number > 0"),
        ({"seconds": math.nan}, r"seconds=nan must be"),
        ({"seconds": "5"}, r"seconds='5' must be a number of seconds, not str"),
        ({"seconds": True}, r"seconds=True must be a number of seconds, not bool"),
        ({"seconds": 1, "max_occurrences": 0}, r"max_occurrences=0 must be None or an int >= 1"),
        ({"seconds": 1, "max_occurrences": 2.0}, r"max_occurrences=2.0 must be"),
        ({"seconds": 1, "initial_delay": -1}, r"initial_delay=-1 must be a finite number >= 0"),
        ({"seconds": 1, "initial_delay": math.inf}, r"initial_delay=inf must be"),
    ],
)
def test_every_rejects_bad_values(kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        Every(**kwargs)  # type: ignore[arg-type]


def test_every_describe() -> None:
    assert Every(300).describe() == "every 5 minutes"
    assert Every(1).describe() == "every 1 second"
    assert Every(1.5).describe() == "every 1.5 seconds"
    assert Every(7200, max_occurrences=3).describe() == "every 2 hours, at most 3 times"
    assert Every(86400, initial_delay=10, max_occurrences=1).describe() == (
        "every 1 day, first after 10 seconds, once"
    )


# --------------------------------------------------------------------------- Cron parsing


def fields(cron: Cron) -> tuple[tuple[int, ...], ...]:
    return (cron._minutes, cron._hours, cron._days, cron._months, cron._weekdays)


def test_cron_field_syntax() -> None:
    cron = Cron("0,15-17,*/20 1-10/3 5/10 jan,Mar-may */2")
    minutes, hours, days, months, weekdays = fields(cron)
    assert minutes == (0, 15, 16, 17, 20, 40)
    assert hours == (1, 4, 7, 10)
    assert days == (5, 15, 25)
    assert months == (1, 3, 4, 5)
    assert weekdays == (0, 2, 4, 6)


def test_cron_names_and_sunday() -> None:
    assert fields(Cron("* * * * MON-FRI"))[4] == (1, 2, 3, 4, 5)
    assert fields(Cron("* * * * sun,SAT"))[4] == (0, 6)
    assert fields(Cron("* * * * 7"))[4] == (0,)
    assert fields(Cron("* * * * 5-7"))[4] == (0, 5, 6)
    assert fields(Cron("* * * * 0-7"))[4] == tuple(range(7))
    assert fields(Cron("* * * DEC *"))[3] == (12,)


@given(
    low=st.integers(0, 59),
    span=st.integers(0, 59),
    step=st.integers(1, 70),
)
def test_cron_ranges_with_steps_match_python_range(low: int, span: int, step: int) -> None:
    high = min(59, low + span)
    assert fields(Cron(f"{low}-{high}/{step} * * * *"))[0] == tuple(range(low, high + 1, step))
    assert fields(Cron(f"*/{step} * * * *"))[0] == tuple(range(0, 60, step))


@pytest.mark.parametrize(
    ("macro", "equivalent"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_cron_macros(macro: str, equivalent: str) -> None:
    assert fields(Cron(macro)) == fields(Cron(equivalent))
    start = ts(2024, 5, 17, 13, 7)
    assert fire_times(Cron(macro), start, 5) == fire_times(Cron(equivalent), start, 5)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("*/0 * * * *", "Cron('*/0 * * * *'): minute field '*/0': step must be >= 1"),
        ("* * *", "Cron('* * *'): expected 5 fields (minute hour day-of-month month"),
        ("* * * * * *", "expected 5 fields"),
        ("", "expected 5 fields"),
        ("60 * * * *", "minute field '60': 60 is out of range 0-59"),
        ("* 24 * * *", "hour field '24': 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
        ("* * 32 * *", "day-of-month field '32'"),
        ("* * * 13 *", "month field '13': 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week field '8': 8 is out of range 0-7"),
        ("* * * FOO *", "month field 'FOO': 'FOO' is not a number or a name"),
        ("MON * * * *", "minute field 'MON': 'MON' is not a number"),
        ("* * * * MONDAY", "day-of-week field 'MONDAY'"),
        ("5-1 * * * *", "minute field '5-1': range '5-1' is backwards"),
        ("1,,2 * * * *", "minute field '1,,2': empty list item"),
        ("*/x * * * *", "minute field '*/x': step 'x' is not a number"),
        ("1-2-3 * * * *", "minute field '1-2-3'"),
        ("-1 * * * *", "minute field '-1'"),
        ("*/-1 * * * *", "step '-1' is not a number"),
        ("@reboot", "unknown macro '@reboot'"),
        ("0 0 30 2 *", "day-of-month field '30', month field '2' and day-of-week field '*'"),
        ("0 0 31 4,6,9,11 *", "never match any date"),
        ("0 0 30,31 2 */2", "never match any date"),
    ],
)
def test_cron_rejects_bad_expressions(expression: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Cron(expression)
    assert message in str(info.value)
    assert str(info.value).startswith(f"Cron({expression!r}): ")


def test_cron_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"timezone='Mars/Olympus' is not a known IANA"):
        Cron("* * * * *", timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match=r"timezone='../etc' is not a known"):
        Cron("* * * * *", timezone="../etc")
    with pytest.raises(ConfigError, match=r"timezone='' must be a zone name"):
        Cron("* * * * *", timezone="")
    with pytest.raises(ConfigError, match=r"max_occurrences=0"):
        Cron("* * * * *", max_occurrences=0)
    with pytest.raises(ConfigError, match=r"the expression must be a string, not int"):
        Cron(5)  # type: ignore[arg-type]


def test_rare_but_valid_expressions_are_accepted() -> None:
    leap = Cron("0 0 29 2 *")
    assert [utc(t).year for t in fire_times(leap, ts(2025, 1, 1), 3)] == [2028, 2032, 2036]
    # February 29th that is a Sunday (day-of-week starts with '*', so both fields must match).
    sunday = Cron("0 0 29 2 */7")
    assert utc(sunday.next_run(ts(2025, 1, 1))) == dt.datetime(2032, 2, 29, tzinfo=UTC)
    assert utc(sunday.next_run(ts(2032, 3, 1))) == dt.datetime(2060, 2, 29, tzinfo=UTC)
    # 2100 is not a leap year: the next Feb 29 after 2096 is in 2104.
    assert utc(leap.next_run(ts(2096, 3, 1))) == dt.datetime(2104, 2, 29, tzinfo=UTC)


# --------------------------------------------------------------------------- Cron in UTC


def test_next_run_is_strictly_after() -> None:
    cron = Cron("*/15 * * * *")
    assert cron.next_run(ts(2024, 1, 1, 10, 0)) == ts(2024, 1, 1, 10, 15)
    assert cron.next_run(ts(2024, 1, 1, 10, 0) - 0.000001) == ts(2024, 1, 1, 10, 0)
    assert cron.next_run(ts(2024, 1, 1, 10, 14) + 59.999) == ts(2024, 1, 1, 10, 15)
    assert cron.first_run(ts(2024, 1, 1, 23, 59)) == ts(2024, 1, 2, 0, 0)


def test_day_of_month_or_day_of_week() -> None:
    # Both restricted: the 13th OR any Friday.
    cron = Cron("0 12 13 * FRI")
    days = [utc(t).date() for t in fire_times(cron, ts(2024, 9, 1), 6)]
    assert days == [
        dt.date(2024, 9, 6),
        dt.date(2024, 9, 13),  # a Friday and the 13th: once
        dt.date(2024, 9, 20),
        dt.date(2024, 9, 27),
        dt.date(2024, 10, 4),
        dt.date(2024, 10, 11),
    ]
    # Day-of-month starts with '*': both must match.
    cron = Cron("0 12 */2 * FRI")
    days = [utc(t).date() for t in fire_times(cron, ts(2024, 9, 1), 3)]
    assert days == [dt.date(2024, 9, 13), dt.date(2024, 9, 27), dt.date(2024, 10, 11)]


def test_month_and_year_rollover() -> None:
    cron = Cron("30 23 31 * *")
    times = [utc(t) for t in fire_times(cron, ts(2024, 1, 31, 23, 30), 4)]
    assert [(t.month, t.day) for t in times] == [(3, 31), (5, 31), (7, 31), (8, 31)]
    cron = Cron("0 0 1 1 *")
    assert utc(cron.next_run(ts(2024, 1, 1))) == dt.datetime(2025, 1, 1, tzinfo=UTC)


def test_far_future_returns_none() -> None:
    cron = Cron("0 0 1 1 *")
    assert cron.next_run(ts(9999, 6, 1)) is None
    with pytest.raises(ConfigError, match="no occurrence"):
        cron.first_run(ts(9999, 6, 1))
    with pytest.raises(ConfigError, match="finite"):
        cron.next_run(math.nan)


def matches(sets: tuple[tuple[int, ...], ...], day_or: bool, when: dt.datetime) -> bool:
    """Reference matcher, written independently of the implementation."""
    minutes, hours, days, months, weekdays = sets
    cron_weekday = when.isoweekday() % 7
    day_ok = (
        (when.day in days or cron_weekday in weekdays)
        if day_or
        else (when.day in days and cron_weekday in weekdays)
    )
    return when.minute in minutes and when.hour in hours and when.month in months and day_ok


def reference_next(
    sets: tuple[tuple[int, ...], ...], day_or: bool, after: float, tz: dt.tzinfo, limit: float
) -> float | None:
    """Scan real time hour by hour, then minute by minute (all offsets are whole hours)."""
    t = math.floor(after / 60) * 60 + 60
    minutes, hours, days, months, weekdays = sets
    while t <= limit:
        local = dt.datetime.fromtimestamp(t, tz)
        hour_ok = local.hour in hours and matches(
            (tuple(range(60)), hours, days, months, weekdays), day_or, local
        )
        if not hour_ok:
            t = (t // 3600 + 1) * 3600
            continue
        if local.minute in minutes:
            return float(t)
        t += 60
    return None


def value_set(low: int, high: int) -> st.SearchStrategy[tuple[int, ...]]:
    return st.one_of(
        st.just(tuple(range(low, high + 1))),
        st.sets(st.integers(low, high), min_size=1, max_size=6).map(lambda s: tuple(sorted(s))),
    )


@st.composite
def cron_specs(draw: st.DrawFn) -> tuple[str, tuple[tuple[int, ...], ...], bool]:
    """A cron expression written as lists, with the value sets it stands for."""
    bounds = [(0, 59), (0, 23), (1, 28), (1, 12), (0, 6)]
    sets = tuple(draw(value_set(low, high)) for low, high in bounds)
    texts = [
        "*" if len(values) == high - low + 1 else ",".join(map(str, values))
        for values, (low, high) in zip(sets, bounds, strict=True)
    ]
    if texts[2] == "*":
        sets = (sets[0], sets[1], tuple(range(1, 32)), sets[3], sets[4])
    day_or = texts[2] != "*" and texts[4] != "*"
    return " ".join(texts), sets, day_or


@settings(max_examples=150, deadline=None)
@given(spec=cron_specs(), start=st.integers(1_600_000_000, 1_900_000_000))
def test_next_run_matches_a_brute_force_reference_in_utc(
    spec: tuple[str, tuple[tuple[int, ...], ...], bool], start: int
) -> None:
    expression, sets, day_or = spec
    cron = Cron(expression)
    after = start + 0.5
    expected = reference_next(sets, day_or, after, UTC, after + 3 * 366 * 86400)
    actual = cron.next_run(after)
    if expected is None:
        assert actual is not None and actual > after + 3 * 366 * 86400
    else:
        assert actual == expected


# --------------------------------------------------------------------------- Cron and DST


@settings(max_examples=100, deadline=None)
@given(
    spec=cron_specs(),
    transition=st.sampled_from(
        [
            (2024, 3, 10, "America/New_York"),
            (2024, 11, 3, "America/New_York"),
            (2024, 3, 31, "Europe/London"),
            (2024, 10, 27, "Europe/London"),
        ]
    ),
    offset_minutes=st.integers(-26 * 60, 26 * 60),
)
def test_wildcard_schedules_fire_at_every_matching_real_minute_around_dst(
    spec: tuple[str, tuple[tuple[int, ...], ...], bool],
    transition: tuple[int, int, int, str],
    offset_minutes: int,
) -> None:
    expression, sets, day_or = spec
    minute, _hour, *rest = expression.split(" ")
    expression = " ".join(["*" if minute == "*" else minute, "*", *rest])
    sets = (sets[0], tuple(range(24)), *sets[2:])
    year, month, day, zone = transition
    tz = zoneinfo.ZoneInfo(zone)
    cron = Cron(expression, timezone=zone)
    after = ts(year, month, day, 2, tz=UTC) + offset_minutes * 60
    expected = reference_next(sets, day_or, after, tz, after + 3 * 86400)
    actual = cron.next_run(after)
    if expected is None:
        assert actual is not None and actual > after + 3 * 86400
    else:
        assert actual == expected


def ny_local(when: float | None) -> tuple[str, str]:
    assert when is not None
    local = dt.datetime.fromtimestamp(when, NEW_YORK)
    return local.strftime("%m-%d %H:%M"), str(local.tzname())


def test_wildcard_minutes_skip_the_missing_hour_in_spring() -> None:
    cron = Cron("*/30 * * * *", timezone="America/New_York")
    times = fire_times(cron, ts(2024, 3, 10, 1, 0, tz=NEW_YORK), 3)
    assert [ny_local(t) for t in times] == [
        ("03-10 01:30", "EST"),
        ("03-10 03:00", "EDT"),
        ("03-10 03:30", "EDT"),
    ]
    assert times[1] - times[0] == 1800


def test_wildcard_minutes_repeat_the_doubled_hour_in_autumn() -> None:
    cron = Cron("*/30 * * * *", timezone="America/New_York")
    times = fire_times(cron, ts(2024, 11, 3, 0, 45, tz=NEW_YORK), 6)
    assert [ny_local(t) for t in times] == [
        ("11-03 01:00", "EDT"),
        ("11-03 01:30", "EDT"),
        ("11-03 01:00", "EST"),
        ("11-03 01:30", "EST"),
        ("11-03 02:00", "EST"),
        ("11-03 02:30", "EST"),
    ]
    assert all(b - a == 1800 for a, b in itertools.pairwise(times))


def test_hourly_fires_every_real_hour_across_both_changes() -> None:
    cron = Cron("@hourly", timezone="America/New_York")
    spring = fire_times(cron, ts(2024, 3, 10, 0, 0, tz=NEW_YORK), 3)
    assert [b - a for a, b in itertools.pairwise(spring)] == [3600, 3600]
    autumn = fire_times(cron, ts(2024, 11, 3, 0, 0, tz=NEW_YORK), 4)
    assert [b - a for a, b in itertools.pairwise(autumn)] == [3600, 3600, 3600]


def test_fixed_time_in_the_missing_hour_fires_at_the_change() -> None:
    cron = Cron("30 2 * * *", timezone="America/New_York")
    times = fire_times(cron, ts(2024, 3, 9, 12, 0, tz=NEW_YORK), 3)
    assert [ny_local(t) for t in times] == [
        ("03-10 03:00", "EDT"),  # 02:30 does not exist: runs when the clock jumps
        ("03-11 02:30", "EDT"),
        ("03-12 02:30", "EDT"),
    ]
    # Several fixed times inside the gap collapse into one run.
    cron = Cron("0,15,45 2 * * *", timezone="America/New_York")
    times = fire_times(cron, ts(2024, 3, 10, 1, 0, tz=NEW_YORK), 2)
    assert [ny_local(t) for t in times] == [("03-10 03:00", "EDT"), ("03-11 02:00", "EDT")]


def test_fixed_time_in_the_doubled_hour_fires_once() -> None:
    cron = Cron("30 1 * * *", timezone="America/New_York")
    times = fire_times(cron, ts(2024, 11, 2, 12, 0, tz=NEW_YORK), 3)
    assert [ny_local(t) for t in times] == [
        ("11-03 01:30", "EDT"),
        ("11-04 01:30", "EST"),
        ("11-05 01:30", "EST"),
    ]
    # Asked from inside the second pass, it does not fire again that day.
    second_pass = ts(2024, 11, 3, 1, 10, tz=NEW_YORK, fold=1)
    assert ny_local(cron.next_run(second_pass)) == ("11-04 01:30", "EST")


def test_daily_in_a_zone_keeps_wall_clock_time_across_dst() -> None:
    cron = Cron("0 9 * * *", timezone="Europe/Paris")
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    times = fire_times(cron, ts(2024, 3, 29, tz=paris), 4)
    local = [dt.datetime.fromtimestamp(t, paris) for t in times]
    assert [(x.day, x.hour, x.minute) for x in local] == [
        (29, 9, 0),
        (30, 9, 0),
        (31, 9, 0),
        (1, 9, 0),
    ]
    assert times[2] - times[1] == 23 * 3600


def test_half_hour_zone() -> None:
    cron = Cron("0 0 * * *", timezone="Asia/Kolkata")
    assert utc(cron.next_run(ts(2024, 1, 1))) == dt.datetime(2024, 1, 1, 18, 30, tzinfo=UTC)


# --------------------------------------------------------------------------- JSON, describe


@pytest.mark.parametrize(
    "schedule",
    [
        Every(60),
        Every(0.5, max_occurrences=10, initial_delay=3),
        Cron("*/5 * * * *"),
        Cron("@daily", max_occurrences=2, timezone="Europe/Paris"),
        Every(5, overlap="queue"),
        Cron("@hourly", overlap=Overlap.ALLOW),
    ],
)
def test_json_round_trip(schedule: Recurrence) -> None:
    import json

    data = json.loads(json.dumps(schedule.to_json()))
    assert recurrence_from_json(data) == schedule


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"kind": "weekly"}, r"unknown schedule kind 'weekly'"),
        ({}, r"unknown schedule kind None"),
        ({"kind": "every", "seconds": 1, "bogus": 2}, r"bad every schedule"),
        ({"kind": "cron"}, r"bad cron schedule"),
        ({"kind": "cron", "expression": "* *"}, r"expected 5 fields"),
        ({"kind": "every", "seconds": -1}, r"seconds=-1"),
    ],
)
def test_recurrence_from_json_rejects_bad_data(data: dict[str, object], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        recurrence_from_json(data)


def test_cron_equality_and_hash_ignore_derived_state() -> None:
    assert Cron("0 * * * *") == Cron("0 * * * *")
    assert hash(Cron("0 * * * *")) == hash(Cron("0 * * * *"))
    assert Cron("0 * * * *") != Cron("0 * * * *", timezone="Europe/Paris")
    assert repr(Cron("@daily")) == (
        "Cron(expression='@daily', max_occurrences=None, timezone='UTC', overlap=<Overlap.SKIP: "
        "'skip'>)"
    )


@pytest.mark.parametrize(
    ("schedule", "text"),
    [
        (Cron("* * * * *"), "cron '* * * * *' (every minute)"),
        (Cron("*/5 * * * *"), "cron '*/5 * * * *' (every 5 minutes)"),
        (Cron("15 * * * *"), "cron '15 * * * *' (hourly at minute 15)"),
        (Cron("@daily"), "cron '@daily' (daily at 00:00)"),
        (Cron("30 9 * * MON-FRI"), "cron '30 9 * * MON-FRI' (at 09:30 on Mon, Tue, Wed, Thu, Fri)"),
        (Cron("0 6 1,15 * *"), "cron '0 6 1,15 * *' (at 06:00 on day 1, 15 of the month)"),
        (
            Cron("0 0 1 1 *", timezone="Europe/Paris", max_occurrences=3),
            "cron '0 0 1 1 *' in Europe/Paris, at most 3 times",
        ),
    ],
)
def test_cron_describe(schedule: Cron, text: str) -> None:
    assert schedule.describe() == text


# --------------------------------------------------------------------------- overlap


@pytest.mark.parametrize("make", [lambda **kw: Every(60, **kw), lambda **kw: Cron("@daily", **kw)])
def test_overlap_defaults_to_skip_and_takes_names_or_members(make) -> None:
    assert make().overlap is Overlap.SKIP
    assert make(overlap="queue").overlap is Overlap.QUEUE
    assert make(overlap=Overlap.ALLOW).overlap is Overlap.ALLOW
    assert make(overlap="skip") == make()
    assert make(overlap="allow") != make()


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: Every(60, overlap="sometimes"), r"Every\(seconds=60\): overlap='sometimes' must"),
        (lambda: Cron("@daily", overlap="SKIP"), r"Cron\('@daily'\): overlap='SKIP' must be one"),
        (lambda: Every(1, overlap=None), r"overlap=None must be one of 'skip', 'queue', 'allow'"),
        (lambda: Every(1, overlap=1), r"overlap=1 must be"),
    ],
)
def test_an_unknown_overlap_is_refused_at_definition(make, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        make()


def test_a_spec_stored_before_overlap_policies_reads_as_skip() -> None:
    every = recurrence_from_json({"kind": "every", "seconds": 5, "max_occurrences": None})
    assert every == Every(5) and every.overlap is Overlap.SKIP
    cron = recurrence_from_json({"kind": "cron", "expression": "@daily", "timezone": "UTC"})
    assert cron.overlap is Overlap.SKIP
    with pytest.raises(ConfigError, match="overlap='often'"):
        recurrence_from_json({"kind": "every", "seconds": 5, "overlap": "often"})


def test_describe_names_a_policy_other_than_skip() -> None:
    assert Every(300).describe() == "every 5 minutes"
    assert Every(300, overlap="queue").describe() == (
        "every 5 minutes, one run queued behind a running one"
    )
    assert Cron("@daily", overlap="allow").describe() == (
        "cron '@daily' (daily at 00:00), runs may overlap"
    )
