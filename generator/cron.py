"""Validation of the five-field cron expressions Kubernetes CronJobs and GitHub schedules accept."""
from __future__ import annotations

import re
from functools import lru_cache
from itertools import pairwise

_Field = tuple[str, int, int, dict[str, int]]

_FIELDS: tuple[_Field, ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            )
        },
    ),
    (
        "day of week",
        0,
        7,
        {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
    ),
)
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_PART_RE = re.compile(r"^(\*|[0-9a-z]+(-[0-9a-z]+)?)(/[0-9]+)?$")


def check_cron(expression: str) -> None:
    """Raise ValueError with a precise reason if `expression` is not a valid cron schedule."""
    text = expression.strip()
    if text.lower() in _MACROS:
        return
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron schedule {expression!r} must have 5 fields (minute hour day month weekday), "
            f"found {len(fields)}"
        )
    for value, (label, low, high, names) in zip(fields, _FIELDS):
        for part in value.lower().split(","):
            match = _PART_RE.match(part)
            if not match:
                raise ValueError(f"cron {label} field {value!r} is not valid")
            base, step = match.group(1), match.group(3)
            if step is not None and int(step[1:]) == 0:
                raise ValueError(f"cron {label} field {value!r} has a step of 0")
            if base == "*":
                continue
            bounds = base.split("-")
            numbers = [_number(b, names, label, value) for b in bounds]
            for number in numbers:
                if not low <= number <= high:
                    raise ValueError(
                        f"cron {label} field {value!r}: {number} is outside {low}-{high}"
                    )
            if len(numbers) == 2 and numbers[0] > numbers[1]:
                raise ValueError(f"cron {label} field {value!r}: range is reversed")


def _number(token: str, names: dict[str, int], label: str, value: str) -> int:
    if token.isdigit():
        return int(token)
    if token in names:
        return names[token]
    raise ValueError(f"cron {label} field {value!r}: {token!r} is not a number or a name")


def _expand(value: str, label: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    out: set[int] = set()
    for part in value.lower().split(","):
        match = _PART_RE.match(part)
        if not match:  # the spec validated the field already
            raise ValueError(f"cron field {part!r}")
        base, step = match.group(1), match.group(3)
        stride = int(step[1:]) if step else 1
        if base == "*":
            first, last = low, high
        else:
            bounds = [_number(b, names, label, value) for b in base.split("-")]
            first = bounds[0]
            last = bounds[-1] if len(bounds) == 2 else (high if step else bounds[0])
        out.update(range(first, last + 1, stride))
    return out


_MACRO_EXPANSIONS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


@lru_cache(maxsize=32)
def max_interval_seconds(expression: str) -> int:
    """The longest gap between two runs of a (valid) schedule, looked at over four weeks.

    Used for the 'drift job is stale' alert: it fires after two missed runs. Cached because
    every rendered file's context asks for it and walking four weeks costs a few ms each time.
    """
    import datetime as dt

    text = _MACRO_EXPANSIONS.get(expression.strip().lower(), expression)
    sets = [_expand(v, label, low, high, names)
            for v, (label, low, high, names) in zip(text.split(), _FIELDS)]
    minutes, hours, days, months, weekdays = sets
    if 7 in weekdays:
        weekdays.add(0)
    dom_any, dow_any = text.split()[2] == "*", text.split()[4] == "*"
    start = dt.datetime(2026, 1, 1)
    fires: list[int] = []
    for hour_index in range(24 * 28):
        moment = start + dt.timedelta(hours=hour_index)
        if moment.hour not in hours or moment.month not in months:
            continue
        dom_ok, dow_ok = moment.day in days, (moment.isoweekday() % 7) in weekdays
        day_ok = dom_ok and dow_ok if (dom_any or dow_any) else dom_ok or dow_ok
        if day_ok:
            fires.extend(hour_index * 60 + m for m in sorted(minutes))
    if len(fires) < 2:
        return 31 * 24 * 3600  # monthly or rarer: a month is the useful bound
    return max(b - a for a, b in pairwise(fires)) * 60
