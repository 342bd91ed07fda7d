"""The submit options `debounce=` and `throttle=`: checked here, applied by the store.

`debounce=d` (seconds, > 0; needs a key): while a job of the same type and key waits (pending
or scheduled, never started), the submission replaces its payload and makes it run d seconds
from now (`Submitted(id, replaced=True)`, the waiting job's id); otherwise it creates a job that
runs d seconds from now, even beside a job with that key that has already started (that one is
left alone). It sets the run time, so it takes no delay or run_at; it takes no depends_on,
parent or recurring either (a dependent or a child is not a job one replaces).

`throttle=t` (seconds, > 0; needs a key): refused (`Duplicate` of the job it created) within t
seconds of the last accepted submission of the same type and key; an accepted one starts a new
period. Key dedup applies as usual. It takes no recurring (a schedule's runs have no key).

Not both on one submission.
"""

from __future__ import annotations

from wireframe.scheduler._numbers import seconds
from wireframe.scheduler.errors import ConfigError


def check_flow(
    where: str,
    *,
    key: str | None,
    debounce: object,
    throttle: object,
    timed: bool,
    linked: bool,
    recurring: bool,
) -> tuple[float | None, float | None]:
    """(debounce, throttle) in seconds, or a ConfigError naming the value and `where`.

    `timed`: delay= or run_at= was given; `linked`: depends_on= or parent=; `recurring`:
    recurring= was given.
    """
    if debounce is None and throttle is None:
        return None, None
    if debounce is not None and throttle is not None:
        raise ConfigError(
            f"{where}: give debounce= or throttle=, not both "
            f"(debounce={debounce!r}, throttle={throttle!r})"
        )
    name, value = ("debounce", debounce) if debounce is not None else ("throttle", throttle)
    period = seconds(value, f"{where} {name}")
    if key is None:
        raise ConfigError(
            f"{where}: {name}={value!r} needs a dedup key (key=, or the job type's key "
            f"callable): it applies per key"
        )
    if recurring:
        raise ConfigError(f"{where}: {name}={value!r} takes no recurring= (its runs have no key)")
    if name == "debounce" and (timed or linked):
        what = "delay= or run_at=" if timed else "depends_on= or parent="
        raise ConfigError(
            f"{where}: debounce={value!r} takes no {what}: it sets the run time of one "
            f"waiting job it may replace"
        )
    return (period, None) if name == "debounce" else (None, period)
