"""Scheduled greetings: the 5-field cron form (``minute hour day-of-month month day-of-week``).

A parser of its own rather than a dependency: Troupe needs the classic form only, evaluated in
a chat's time zone, with errors that name the field at fault for the admin who typed it.
Each field takes ``*``, a number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, and lists of
these; months and week days also by name (``jan``, ``mon``); day 0 and 7 are both Sunday. As in
Vixie cron, when both day fields are restricted a day matching either one counts.
``@hourly``, ``@daily``, ``@weekly`` and ``@monthly`` stand for their usual forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["CronSchedule"]

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES = {3: {n: i + 1 for i, n in enumerate(_MONTHS)}, 4: {n: i for i, n in enumerate(_DAYS)}}
_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}
#: How far ahead a next time is looked for (a 29 February on a Monday can be years away).
_HORIZON_DAYS = 366 * 8


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed 5-field cron expression."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    #: Whether each day field was restricted (not ``*``): then either may match.
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """Parse ``text``; :class:`ValueError` naming the field and what is wrong with it."""
        expression = _ALIASES.get(text.strip().lower(), text.strip())
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(
                f"a schedule has 5 fields (minute hour day-of-month month day-of-week), "
                f"got {len(fields)} in {text!r}"
            )
        values = [_field(i, word) for i, word in enumerate(fields)]
        return cls(
            text=" ".join(fields),
            minutes=tuple(sorted(values[0])),
            hours=tuple(sorted(values[1])),
            days=frozenset(values[2]),
            months=frozenset(values[3]),
            weekdays=frozenset(d % 7 for d in values[4]),
            days_restricted=not fields[2].startswith("*"),
            weekdays_restricted=not fields[4].startswith("*"),
        )

    def next_after(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """The first time strictly after ``moment`` the schedule fires in ``zone`` (UTC), or
        ``None`` if it never does (``30 2 31 2 *``)."""
        local = moment.astimezone(zone)
        day = local.date()
        for _ in range(_HORIZON_DAYS):
            if self._on(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        at = _instant(day, time(hour, minute), zone)
                        if at > moment:
                            return at
            day += timedelta(days=1)
        return None

    def _on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_date or by_weekday
        return by_date and by_weekday


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of local ``day`` ``at`` in ``zone`` (a time a clock change skips is
    read with the offset in force before the change)."""
    return datetime.combine(day, at, zone).astimezone(UTC)


def _field(index: int, word: str) -> set[int]:
    name, low, high = _FIELDS[index]
    values: set[int] = set()
    for part in word.lower().split(","):
        values |= _part(index, part, low, high, name)
    return values


def _part(index: int, part: str, low: int, high: int, name: str) -> set[int]:
    span, _, step_text = part.partition("/")
    step = 1
    if step_text:
        step = _number(index, step_text, 1, high, name)
    if span == "*":
        first, last = low, high
    elif "-" in span:
        start, _, end = span.partition("-")
        first, last = _number(index, start, low, high, name), _number(index, end, low, high, name)
        if first > last:
            raise ValueError(f"{name}: the range {span!r} runs backwards")
    else:
        first = _number(index, span, low, high, name)
        last = high if step_text else first
    return set(range(first, last + 1, step))


def _number(index: int, word: str, low: int, high: int, name: str) -> int:
    named = _NAMES.get(index, {}).get(word)
    if named is not None:
        return named
    try:
        value = int(word)
    except ValueError:
        raise ValueError(f"{name}: {word!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is not between {low} and {high}")
    return value
