"""When a character may speak first: the rules, as pure functions of the stored state.

Nothing here waits or reads a clock: given a conversation's :class:`~bot.storage.NudgePlan`,
its :class:`NudgeRules` and the time now, :func:`next_nudge` says what is due next and when.
The scheduler sleeps until then; a restart computes the same answer from the same rows.

- **Topics.** After ``quiet`` without a delivered message (and without a nudge), a character
  opens a topic. Only while no human waits for an answer (no turn owed).
- **Greetings.** A cron schedule fires greetings; one missed by more than
  :data:`GREETING_GRACE` (the bot was down) is skipped rather than sent late.
- **Quiet hours** (local time, may cross midnight): a topic due inside them waits for their
  end; a greeting due inside them is skipped.
- **At most ``max_per_day``** nudges (topics and greetings together) per local day: a topic
  due beyond that waits for the next day; a greeting is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.conversation.nudges.cron import CronSchedule
from bot.storage import NudgePlan, NudgeSettings

__all__ = [
    "GREETING_GRACE",
    "Due",
    "NudgeDefaults",
    "NudgeKind",
    "NudgeRules",
    "QuietHours",
    "next_nudge",
    "parse_timezone",
]

#: A greeting whose time passed longer ago than this (the bot was down) is skipped.
GREETING_GRACE = timedelta(minutes=30)
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


class NudgeKind(StrEnum):
    """What a character says when it speaks first."""

    TOPIC = "topic"
    GREETING = "greeting"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily span of local time in which no character speaks first; may cross midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """``22:00-08:00`` → quiet hours; ``""``/``off`` → ``None``; else :class:`ValueError`."""
        if text.strip().lower() in ("", "off", "none"):
            return None
        match = _HOURS.match(text.strip())
        if match is None:
            raise ValueError(
                f"quiet hours are written HH:MM-HH:MM (like 22:00-08:00), not {text!r}"
            )
        h1, m1, h2, m2 = (int(group) for group in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(f"{text!r} is not a time of day")
        if (h1, m1) == (h2, m2):
            raise ValueError("quiet hours must end at another time than they start")
        return cls(time(h1, m1), time(h2, m2))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: time) -> bool:
        """Whether the local time ``moment`` is inside the quiet hours."""
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def leave(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """``moment`` if it is outside the quiet hours, else the end of the span it is in."""
        local = moment.astimezone(zone)
        if not self.contains(local.time()):
            return moment
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += timedelta(days=1)  # quiet until tomorrow morning
        return datetime.combine(day, self.end, zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class NudgeDefaults:
    """What a conversation's settings left unset follows (``TROUPE_NUDGE_*``)."""

    quiet_minutes: int = 180
    quiet_hours: str = "22:00-08:00"
    timezone: str = "UTC"
    max_per_day: int = 3


def parse_timezone(name: str) -> ZoneInfo:
    """The time zone called ``name`` (``Europe/Berlin``); :class:`ValueError` if unknown."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone (try a name like Europe/Berlin)") from None


@dataclass(frozen=True, slots=True)
class NudgeRules:
    """A conversation's settings with the defaults filled in, parsed."""

    #: ``None``: characters open no topics (greetings only).
    quiet: timedelta | None
    quiet_hours: QuietHours | None
    zone: ZoneInfo
    max_per_day: int
    schedule: CronSchedule | None

    @classmethod
    def of(cls, settings: NudgeSettings, defaults: NudgeDefaults) -> NudgeRules:
        """Resolve ``settings`` against ``defaults``; :class:`ValueError` if one is bad."""
        minutes = settings.quiet_minutes
        minutes = defaults.quiet_minutes if minutes is None else minutes
        hours = defaults.quiet_hours if settings.quiet_hours is None else settings.quiet_hours
        most = defaults.max_per_day if settings.max_per_day is None else settings.max_per_day
        return cls(
            quiet=timedelta(minutes=minutes) if minutes > 0 else None,
            quiet_hours=QuietHours.parse(hours),
            zone=parse_timezone(settings.timezone or defaults.timezone),
            max_per_day=most,
            schedule=CronSchedule.parse(settings.schedule) if settings.schedule else None,
        )

    def local_day(self, moment: datetime) -> str:
        """The local date of ``moment``, as stored (``YYYY-MM-DD``)."""
        return moment.astimezone(self.zone).date().isoformat()

    def next_midnight(self, moment: datetime) -> datetime:
        """The start of the local day after ``moment``'s."""
        tomorrow = moment.astimezone(self.zone).date() + timedelta(days=1)
        return datetime.combine(tomorrow, time(0), self.zone).astimezone(UTC)

    def sent_on(self, plan: NudgePlan, moment: datetime) -> int:
        """Nudges already sent on ``moment``'s local day."""
        state = plan.state
        return state.sent_today if state.day == self.local_day(moment) else 0

    def allows(self, plan: NudgePlan, moment: datetime) -> bool:
        """Whether a nudge may go out at ``moment``: outside quiet hours, under the maximum."""
        if self.quiet_hours and self.quiet_hours.contains(moment.astimezone(self.zone).time()):
            return False
        return self.sent_on(plan, moment) < self.max_per_day


@dataclass(frozen=True, slots=True)
class Due:
    """The next nudge of a conversation: what, and from when on."""

    kind: NudgeKind
    at: datetime


def next_nudge(plan: NudgePlan, rules: NudgeRules, now: datetime) -> Due | None:
    """What ``plan``'s conversation is due next, or ``None`` if nothing ever will be.

    A greeting's ``at`` is the time it is scheduled for (it is then sent or skipped); a
    topic's is the first time the rules allow it. The earlier of the two comes first.
    """
    candidates = [due for due in (_greeting(plan, rules, now), _topic(plan, rules, now)) if due]
    return min(candidates, key=lambda due: due.at, default=None)


def _greeting(plan: NudgePlan, rules: NudgeRules, now: datetime) -> Due | None:
    if rules.schedule is None:
        return None
    state = plan.state
    after = max(
        (t for t in (state.last_greeting_at, state.enabled_at, now - GREETING_GRACE) if t),
    )
    at = rules.schedule.next_after(after, rules.zone)
    return Due(NudgeKind.GREETING, at) if at is not None else None


def _topic(plan: NudgePlan, rules: NudgeRules, now: datetime) -> Due | None:
    if rules.quiet is None or plan.owed or rules.max_per_day < 1:
        return None
    state = plan.state
    # Counted from the newest of: a message, nudges being turned on, the last nudge (one that
    # was not delivered leaves no message, and must not be retried at once).
    since = [t for t in (plan.last_activity, state.enabled_at, state.last_nudge_at) if t]
    if not since:
        return None
    # Not before now: a time that passed while the bot was down is judged as of now.
    at = max(max(since) + rules.quiet, now)
    # Quiet hours push it to their end; a full day pushes it to the next one (whose
    # early hours may be quiet again). Twice is enough: a new day starts with no nudges.
    for _ in range(2):
        if rules.quiet_hours is not None:
            at = rules.quiet_hours.leave(at, rules.zone)
        if rules.sent_on(plan, at) < rules.max_per_day:
            break
        at = rules.next_midnight(at)
    return Due(NudgeKind.TOPIC, at)
