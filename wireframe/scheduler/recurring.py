"""Recurring schedules: ``Every(seconds)`` and 5-field ``Cron`` expressions.

Both are immutable values that compute fire times as UNIX timestamps and round-trip
through JSON (``to_json`` / ``recurrence_from_json``), which is how the scheduler stores them.

Runs of one schedule do not pile up: by default (``overlap="skip"``) a firing that comes while
the schedule's previous run has not ended (pending, running, retrying, sleeping, waiting on
children, paused...) creates no job. The store decides when the schedule fires, atomically
across every process firing it, counts the skip (``ScheduleRecord.skipped``) and moves the
schedule to its following time, so no burst of catch-up runs follows a slow one.
``overlap="queue"`` keeps one occurrence waiting behind a run that has started (it is blocked
on that run and starts when it ends, however it ends) and skips the firings that come while
one waits; ``overlap="allow"`` submits every firing, so runs may overlap.

Cron semantics follow Vixie cron / cronie:

* fields are ``minute hour day-of-month month day-of-week``; each accepts ``*``, numbers,
  lists ``a,b``, ranges ``a-b``, steps ``*/n``, ``a-b/n`` and ``a/n`` (``a`` to the maximum),
  month names ``JAN``-``DEC`` and weekday names ``SUN``-``SAT`` (any case); 0 and 7 are Sunday;
* when both day fields are restricted (neither starts with ``*``), a day matches if *either*
  matches; otherwise both must match;
* the macros ``@hourly @daily @midnight @weekly @monthly @yearly @annually``;
* times are wall-clock times in ``timezone``. Around DST changes, a *wildcard* schedule (its
  minute or hour field starts with ``*``) fires at every real minute whose wall time matches:
  twice in a repeated hour, not at all in a skipped one. A *fixed-time* schedule (e.g.
  ``30 2 * * *``) fires once in a repeated hour (the first time), and a time that falls in a
  skipped hour fires at the end of the gap (the moment of the change).
"""

from __future__ import annotations

import abc
import bisect
import calendar
import datetime as dt
import math
import zoneinfo
from typing import ClassVar, Final, Literal

import attrs

from wireframe.scheduler.errors import ConfigError
from wireframe.store.records import OVERLAPS, Overlap

__all__ = ["Cron", "Every", "Overlap", "OverlapName", "Recurrence", "recurrence_from_json"]

OverlapName = Literal["skip", "queue", "allow"]
"""An overlap policy by name (see `Overlap`)."""


class Recurrence(abc.ABC):
    """A recurring schedule: when the first occurrence fires and when each next one does."""

    __slots__ = ()

    max_occurrences: int | None
    """Stop after this many occurrences (``None``: no limit)."""

    overlap: Overlap
    """What a firing does while the previous run has not ended: ``skip`` it (the default),
    ``queue`` it (one waits behind the active run, the rest are skipped) or ``allow`` it."""

    @abc.abstractmethod
    def first_run(self, now: float) -> float:
        """UNIX time of the first occurrence for a schedule created at ``now``."""

    @abc.abstractmethod
    def next_run(self, after: float) -> float | None:
        """UNIX time of the next occurrence strictly after ``after`` (``None``: never)."""

    @abc.abstractmethod
    def to_json(self) -> dict[str, object]:
        """The schedule as a JSON-able dict (see ``recurrence_from_json``)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Human-readable summary of the schedule."""


def _check_max_occurrences(where: str, value: object) -> None:
    """Reject a ``max_occurrences`` that is neither ``None`` nor an int >= 1."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: max_occurrences={value!r} must be None or an int >= 1")


def _as_overlap(value: Overlap | OverlapName) -> Overlap:
    """A valid overlap name as an ``Overlap``; anything else as is, for ``_check_overlap``."""
    if isinstance(value, str) and not isinstance(value, Overlap) and value in OVERLAPS:
        return Overlap(value)
    return value  # type: ignore[return-value]


def _check_overlap(where: str, value: object) -> None:
    """Reject an ``overlap`` that is not an ``Overlap`` (``_as_overlap`` converted the names)."""
    if not isinstance(value, Overlap):
        raise ConfigError(
            f"{where}: overlap={value!r} must be one of {', '.join(map(repr, OVERLAPS))} "
            f"(or an Overlap)"
        )


def _overlap_text(overlap: Overlap) -> str:
    """The ``describe`` suffix of a policy other than the default."""
    if overlap is Overlap.QUEUE:
        return ", one run queued behind a running one"
    if overlap is Overlap.ALLOW:
        return ", runs may overlap"
    return ""


def _check_seconds(where: str, name: str, value: object, *, positive: bool) -> float:
    """Return ``value`` as a float if it is finite and > 0 (``positive``) or >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"{where}: {name}={value!r} must be a number of seconds, not {type(value).__name__}"
        )
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{where}: {name}={value!r} must be a finite number {bound}")
    return float(value)


def _seconds_text(seconds: float) -> str:
    """``90`` -> ``'90 seconds'``, ``300`` -> ``'5 minutes'``, ``7200`` -> ``'2 hours'``."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return "1 second" if seconds == 1 else f"{seconds:g} seconds"


@attrs.frozen
class Every(Recurrence):
    """Fire every ``seconds`` seconds, the first time after ``initial_delay`` (default 0)."""

    seconds: float
    max_occurrences: int | None = None
    initial_delay: float | None = None
    overlap: Overlap = attrs.field(default=Overlap.SKIP, converter=_as_overlap)

    def __attrs_post_init__(self) -> None:
        where = f"Every(seconds={self.seconds!r})"
        object.__setattr__(
            self, "seconds", _check_seconds(where, "seconds", self.seconds, positive=True)
        )
        _check_max_occurrences(where, self.max_occurrences)
        _check_overlap(where, self.overlap)
        if self.initial_delay is not None:
            delay = _check_seconds(where, "initial_delay", self.initial_delay, positive=False)
            object.__setattr__(self, "initial_delay", delay)

    def first_run(self, now: float) -> float:
        """``now`` plus the initial delay."""
        return now + (self.initial_delay if self.initial_delay is not None else 0.0)

    def next_run(self, after: float) -> float | None:
        """``after`` plus the interval."""
        return after + self.seconds

    def to_json(self) -> dict[str, object]:
        """``{"kind": "every", "seconds", "max_occurrences", "initial_delay", "overlap"}``."""
        return {
            "kind": "every",
            "seconds": self.seconds,
            "max_occurrences": self.max_occurrences,
            "initial_delay": self.initial_delay,
            "overlap": str(self.overlap),
        }

    def describe(self) -> str:
        """E.g. ``every 5 minutes, first after 10 seconds, at most 3 times``."""
        text = f"every {_seconds_text(self.seconds)}"
        if self.initial_delay:
            text += f", first after {_seconds_text(self.initial_delay)}"
        return text + _occurrences_text(self.max_occurrences) + _overlap_text(self.overlap)


def _occurrences_text(max_occurrences: int | None) -> str:
    """The ``, at most N times`` suffix of ``describe``."""
    if max_occurrences is None:
        return ""
    return ", once" if max_occurrences == 1 else f", at most {max_occurrences} times"


# --------------------------------------------------------------------------- cron parsing

_MONTH_ABBR: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                      "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")  # fmt: skip
_DAY_ABBR: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTH_NAMES: Final = {name: number for number, name in enumerate(_MONTH_ABBR, start=1)}
_DAY_NAMES: Final = {name: number for number, name in enumerate(_DAY_ABBR)}

_MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@attrs.frozen
class _FieldSpec:
    """How one cron field is named, bounded and spelled."""

    label: str
    low: int
    high: int
    names: dict[str, int] | None = None


_FIELDS: Final = (
    _FieldSpec("minute", 0, 59),
    _FieldSpec("hour", 0, 23),
    _FieldSpec("day-of-month", 1, 31),
    _FieldSpec("month", 1, 12, _MONTH_NAMES),
    _FieldSpec("day-of-week", 0, 7, _DAY_NAMES),
)


class _FieldError(Exception):
    """Internal: a cron field is invalid (the message says why)."""


def _parse_value(text: str, spec: _FieldSpec) -> int:
    """One number or name of a field, checked against the field's bounds."""
    if spec.names is not None and text.upper() in spec.names:
        return spec.names[text.upper()]
    if not text.isascii() or not text.isdigit():
        if spec.names is not None:
            raise _FieldError(f"{text!r} is not a number or a name")
        raise _FieldError(f"{text!r} is not a number")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise _FieldError(f"{value} is out of range {spec.low}-{spec.high}")
    return value


def _parse_field(text: str, spec: _FieldSpec) -> tuple[int, ...]:
    """Parse one cron field into the sorted tuple of the values it allows."""
    if not text:
        raise _FieldError("empty field")
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise _FieldError("empty list item")
        body, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isascii() or not step_text.isdigit():
                raise _FieldError(f"step {step_text!r} is not a number")
            step = int(step_text)
            if step < 1:
                raise _FieldError("step must be >= 1")
        if body == "*":
            low, high = spec.low, spec.high
        elif "-" in body:
            first, _, last = body.partition("-")
            low, high = _parse_value(first, spec), _parse_value(last, spec)
            if low > high:
                raise _FieldError(f"range {body!r} is backwards")
        else:
            low = _parse_value(body, spec)
            high = spec.high if slash else low
        values.update(range(low, high + 1, step))
    if spec.label == "day-of-week" and 7 in values:
        values.discard(7)
        values.add(0)
    return tuple(sorted(values))


def _cron_error(expression: str, message: str) -> ConfigError:
    """A ``ConfigError`` that starts with ``Cron('<expression>'):``."""
    return ConfigError(f"Cron({expression!r}): {message}")


# --------------------------------------------------------------------------- cron searching

_ONE_MINUTE: Final = dt.timedelta(minutes=1)
_SEARCH_YEARS: Final = 401  # the Gregorian calendar (weekdays included) repeats every 400 years


def _after(values: tuple[int, ...], value: int) -> int | None:
    """The smallest element of ``values`` that is >= ``value``, or ``None``."""
    index = bisect.bisect_left(values, value)
    return values[index] if index < len(values) else None


@attrs.frozen
class Cron(Recurrence):
    """Fire at the minutes matching a 5-field cron expression, in ``timezone`` wall time."""

    expression: str
    max_occurrences: int | None = None
    timezone: str = "UTC"
    overlap: Overlap = attrs.field(default=Overlap.SKIP, converter=_as_overlap)

    _minutes: tuple[int, ...] = attrs.field(init=False, repr=False, eq=False)
    _hours: tuple[int, ...] = attrs.field(init=False, repr=False, eq=False)
    _days: tuple[int, ...] = attrs.field(init=False, repr=False, eq=False)
    _months: tuple[int, ...] = attrs.field(init=False, repr=False, eq=False)
    _weekdays: tuple[int, ...] = attrs.field(init=False, repr=False, eq=False)
    _day_or: bool = attrs.field(init=False, repr=False, eq=False)
    _wildcard: bool = attrs.field(init=False, repr=False, eq=False)
    _tz: zoneinfo.ZoneInfo = attrs.field(init=False, repr=False, eq=False)

    _FIELD_NAMES: ClassVar[tuple[str, ...]] = tuple(spec.label for spec in _FIELDS)

    def __attrs_post_init__(self) -> None:
        expression: object = self.expression
        if not isinstance(expression, str):
            raise ConfigError(
                f"Cron({expression!r}): the expression must be a string,"
                f" not {type(expression).__name__}"
            )
        _check_max_occurrences(f"Cron({expression!r})", self.max_occurrences)
        _check_overlap(f"Cron({expression!r})", self.overlap)
        self._set("_tz", self._load_zone())
        text = expression.strip()
        if text.startswith("@"):
            if text.lower() not in _MACROS:
                raise _cron_error(
                    expression, f"unknown macro {text!r} (one of {', '.join(_MACROS)})"
                )
            text = _MACROS[text.lower()]
        parts = text.split()
        if len(parts) != 5:
            raise _cron_error(
                expression,
                f"expected 5 fields ({' '.join(self._FIELD_NAMES)}), got {len(parts)}",
            )
        parsed: list[tuple[int, ...]] = []
        for part, spec in zip(parts, _FIELDS, strict=True):
            try:
                parsed.append(_parse_field(part, spec))
            except _FieldError as exc:
                raise _cron_error(expression, f"{spec.label} field {part!r}: {exc}") from None
        for name, values in zip(
            ("_minutes", "_hours", "_days", "_months", "_weekdays"), parsed, strict=True
        ):
            self._set(name, values)
        self._set("_day_or", not parts[2].startswith("*") and not parts[4].startswith("*"))
        self._set("_wildcard", parts[0].startswith("*") or parts[1].startswith("*"))
        if not self._satisfiable():
            raise _cron_error(
                expression,
                f"day-of-month field {parts[2]!r}, month field {parts[3]!r} and day-of-week"
                f" field {parts[4]!r} never match any date",
            )

    def _set(self, name: str, value: object) -> None:
        """Set a private derived field on this frozen instance (construction only)."""
        object.__setattr__(self, name, value)

    def _load_zone(self) -> zoneinfo.ZoneInfo:
        """The ``ZoneInfo`` for ``timezone``, or a ``ConfigError`` naming it."""
        name: object = self.timezone
        if not isinstance(name, str) or not name:
            raise _cron_error(str(self.expression), f"timezone={name!r} must be a zone name")
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise _cron_error(
                str(self.expression), f"timezone={name!r} is not a known IANA time zone"
            ) from None

    # ---- calendar matching (naive wall-clock dates)

    def _day_matches(self, year: int, month: int, day: int) -> bool:
        """Whether the date matches the day-of-month / day-of-week fields."""
        in_days = day in self._days
        in_weekdays = (dt.date(year, month, day).weekday() + 1) % 7 in self._weekdays
        return (in_days or in_weekdays) if self._day_or else (in_days and in_weekdays)

    def _satisfiable(self) -> bool:
        """Whether any date at all matches (e.g. ``0 0 30 2 *`` never does)."""
        if self._day_or or len(self._days) == 31:
            # Day-of-week alone can always be met: every month has every weekday.
            return True
        if len(self._weekdays) == 7:
            return any(
                day <= calendar.monthrange(2000, month)[1]  # 2000 is a leap year
                for month in self._months
                for day in self._days
            )
        return self._next_naive(dt.datetime(2000, 1, 1), 2000 + _SEARCH_YEARS) is not None

    def _next_naive(self, start: dt.datetime, last_year: int) -> dt.datetime | None:
        """The first matching wall-clock minute at or after ``start`` (naive, minute-aligned)."""
        year, month, day, hour, minute = (
            start.year,
            start.month,
            start.day,
            start.hour,
            start.minute,
        )
        months, hours, minutes = self._months, self._hours, self._minutes
        while year <= last_year:
            next_month = _after(months, month)
            if next_month is None:
                year, month, day, hour, minute = year + 1, months[0], 1, 0, 0
                continue
            if next_month != month:
                month, day, hour, minute = next_month, 1, 0, 0
            month_days = calendar.monthrange(year, month)[1]
            while day <= month_days and not self._day_matches(year, month, day):
                day, hour, minute = day + 1, 0, 0
            if day > month_days:
                month, day, hour, minute = month + 1, 1, 0, 0
                if month > 12:
                    year, month = year + 1, 1
                continue
            next_hour = _after(hours, hour)
            if next_hour is None:
                day, hour, minute = day + 1, 0, 0
                if day > month_days:
                    month, day = month + 1, 1
                    if month > 12:
                        year, month = year + 1, 1
                continue
            if next_hour != hour:
                hour, minute = next_hour, 0
            next_minute = _after(minutes, minute)
            if next_minute is None:
                hour, minute = hour + 1, 0
                if hour > 23:
                    day, hour = day + 1, 0
                    if day > month_days:
                        month, day = month + 1, 1
                        if month > 12:
                            year, month = year + 1, 1
                continue
            return dt.datetime(year, month, day, hour, next_minute)
        return None

    # ---- wall-clock minutes to real instants

    def _instants(self, naive: dt.datetime) -> list[float]:
        """The UNIX times at which the matching wall-clock minute ``naive`` fires."""
        first = naive.replace(tzinfo=self._tz, fold=0)
        second = naive.replace(tzinfo=self._tz, fold=1)
        offset_first, offset_second = first.utcoffset(), second.utcoffset()
        if offset_first == offset_second:
            return [first.timestamp()]
        assert offset_first is not None and offset_second is not None
        if offset_first > offset_second:  # repeated wall time (clocks went back)
            if self._wildcard:
                return [first.timestamp(), second.timestamp()]
            return [first.timestamp()]
        # Skipped wall time (clocks went forward): fixed-time schedules fire at the change.
        if self._wildcard:
            return []
        return [self._transition(second.timestamp(), first.timestamp(), offset_second)]

    def _transition(self, before: float, after: float, new_offset: dt.timedelta) -> float:
        """The first whole second in ``(before, after]`` whose UTC offset is ``new_offset``."""
        low, high = math.floor(before), math.ceil(after)
        while high - low > 1:
            middle = (low + high) // 2
            if dt.datetime.fromtimestamp(middle, self._tz).utcoffset() == new_offset:
                high = middle
            else:
                low = middle
        return float(high)

    # ---- Recurrence

    def first_run(self, now: float) -> float:
        """The first matching minute strictly after ``now``."""
        when = self.next_run(now)
        if when is None:
            raise _cron_error(self.expression, f"no occurrence after {now!r}")
        return when

    def next_run(self, after: float) -> float | None:
        """The first matching minute strictly after ``after`` (DST-correct in ``timezone``)."""
        if not math.isfinite(after):
            raise ConfigError(f"Cron.next_run: after={after!r} must be a finite timestamp")
        try:
            local = dt.datetime.fromtimestamp(math.floor(after), self._tz)
        except (OverflowError, OSError, ValueError):
            return None
        naive = local.replace(tzinfo=None, second=0, microsecond=0)
        window = dt.timedelta(0)
        if self._wildcard and local.fold == 0:
            other = local.replace(fold=1).utcoffset()
            offset = local.utcoffset()
            if other is not None and offset is not None and other < offset:
                # ``after`` lies in the first pass of a repeated hour: the second pass's
                # occurrences (at earlier wall times) may come before later wall times.
                window = offset - other
                naive -= window
        last_year = min(naive.year + _SEARCH_YEARS, dt.MAXYEAR - 1)
        best: float | None = None
        best_naive = naive
        while True:
            candidate = self._next_naive(naive, last_year)
            if candidate is None or (best is not None and candidate > best_naive + window):
                return best
            for instant in self._instants(candidate):
                if instant > after and (best is None or instant < best):
                    best, best_naive = instant, candidate
            if best is not None and not window:
                return best
            naive = candidate + _ONE_MINUTE

    def to_json(self) -> dict[str, object]:
        """``{"kind": "cron", "expression", "max_occurrences", "timezone", "overlap"}``."""
        return {
            "kind": "cron",
            "expression": self.expression,
            "max_occurrences": self.max_occurrences,
            "timezone": self.timezone,
            "overlap": str(self.overlap),
        }

    def describe(self) -> str:
        """E.g. ``cron '*/5 * * * *' (every 5 minutes) in Europe/Paris, at most 3 times``."""
        text = f"cron {self.expression!r}"
        summary = self._summary()
        if summary:
            text += f" ({summary})"
        if self.timezone != "UTC":
            text += f" in {self.timezone}"
        return text + _occurrences_text(self.max_occurrences) + _overlap_text(self.overlap)

    def _summary(self) -> str | None:
        """Plain words for common shapes of expression, or ``None``."""
        every_day = len(self._months) == 12 and len(self._days) == 31 and len(self._weekdays) == 7
        minutes, hours = self._minutes, self._hours
        if every_day and len(hours) == 24:
            if len(minutes) == 60:
                return "every minute"
            step = minutes[1] - minutes[0] if len(minutes) > 1 else 0
            if minutes[0] == 0 and step and minutes == tuple(range(0, 60, step)):
                return f"every {step} minutes"
            if len(minutes) == 1:
                return f"hourly at minute {minutes[0]}"
        if len(minutes) == 1 and len(hours) == 1 and len(self._months) == 12:
            at = f"at {hours[0]:02d}:{minutes[0]:02d}"
            if every_day:
                return f"daily {at}"
            if len(self._days) == 31:
                names = ", ".join(_DAY_ABBR[d].title() for d in self._weekdays)
                return f"{at} on {names}"
            if len(self._weekdays) == 7:
                return f"{at} on day {', '.join(map(str, self._days))} of the month"
        return None


def recurrence_from_json(data: dict[str, object]) -> Recurrence:
    """Rebuild an ``Every`` or ``Cron`` from its ``to_json`` dict (``ConfigError`` if bad)."""
    if not isinstance(data, dict):
        raise ConfigError(f"recurrence_from_json: expected a dict, got {type(data).__name__}")
    kind = data.get("kind")
    fields = {key: value for key, value in data.items() if key != "kind"}
    try:
        if kind == "every":
            return Every(**fields)  # type: ignore[arg-type]
        if kind == "cron":
            return Cron(**fields)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"recurrence_from_json: bad {kind} schedule {data!r}: {exc}") from None
    raise ConfigError(f"recurrence_from_json: unknown schedule kind {kind!r} in {data!r}")
