"""When a nudge is due, as pure functions of the stored state (no clock, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.conversation.nudges import (
    CronSchedule,
    NudgeDefaults,
    NudgeKind,
    NudgeRules,
    QuietHours,
    next_nudge,
)
from bot.conversation.nudges.rules import GREETING_GRACE
from bot.storage import Conversation, NudgePlan, NudgeSettings, NudgeState

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DEFAULTS = NudgeDefaults(quiet_minutes=60, quiet_hours="off", timezone="UTC", max_per_day=3)
CONVERSATION = Conversation(1, "test", "room", "", "aria", datetime(2026, 1, 1, tzinfo=UTC))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def plan(*, last_activity: datetime | None = None, owed: bool = False, **fields: Any) -> NudgePlan:
    """A conversation with nudges on: ``fields`` are settings and state, by name."""
    state = {name: fields.pop(name) for name in list(fields) if name in NudgeState.__slots__}
    return NudgePlan(
        CONVERSATION,
        NudgeSettings(enabled=True, **fields),
        NudgeState(**state),
        last_activity,
        owed,
    )


def due_of(p: NudgePlan, now: datetime) -> tuple[NudgeKind, datetime] | None:
    due = next_nudge(p, NudgeRules.of(p.settings, DEFAULTS), now)
    return None if due is None else (due.kind, due.at)


def test_a_topic_is_due_a_quiet_period_after_the_newest_message() -> None:
    p = plan(last_activity=utc(2026, 3, 2, 12, 0), enabled_at=utc(2026, 3, 1))
    assert due_of(p, utc(2026, 3, 2, 12, 1)) == (NudgeKind.TOPIC, utc(2026, 3, 2, 13, 0))
    # Counted from turning nudges on when that is newer, and from the last nudge (one that
    # was not delivered leaves no message).
    p = plan(last_activity=utc(2026, 3, 2, 12), enabled_at=utc(2026, 3, 2, 12, 30))
    assert due_of(p, utc(2026, 3, 2, 12, 31)) == (NudgeKind.TOPIC, utc(2026, 3, 2, 13, 30))
    p = plan(last_activity=utc(2026, 3, 2, 12), last_nudge_at=utc(2026, 3, 2, 12, 45))
    assert due_of(p, utc(2026, 3, 2, 12, 50)) == (NudgeKind.TOPIC, utc(2026, 3, 2, 13, 45))


def test_no_topic_while_a_human_waits_for_an_answer_or_with_quiet_zero() -> None:
    assert due_of(plan(last_activity=utc(2026, 3, 2), owed=True), utc(2026, 3, 3)) is None
    assert due_of(plan(last_activity=utc(2026, 3, 2), quiet_minutes=0), utc(2026, 3, 3)) is None


def test_a_time_that_passed_while_the_bot_was_down_is_judged_as_of_now() -> None:
    p = plan(last_activity=utc(2026, 3, 2, 8), quiet_hours="22:00-08:00")
    # Due at 09:00, but the bot came back at 23:30, inside the quiet hours: their end.
    assert due_of(p, utc(2026, 3, 2, 23, 30)) == (NudgeKind.TOPIC, utc(2026, 3, 3, 8, 0))


@pytest.mark.parametrize(
    ("quiet_hours", "last", "expected"),
    [
        # Across midnight: a topic due at 23:00 waits for 07:00 the next morning…
        ("22:00-07:00", utc(2026, 3, 2, 22, 0), utc(2026, 3, 3, 7, 0)),
        # …and one due at 02:00 for 07:00 the same morning.
        ("22:00-07:00", utc(2026, 3, 3, 1, 0), utc(2026, 3, 3, 7, 0)),
        # Just outside: due at 21:59.
        ("22:00-07:00", utc(2026, 3, 2, 20, 59), utc(2026, 3, 2, 21, 59)),
        # Within one day.
        ("13:00-14:30", utc(2026, 3, 2, 12, 30), utc(2026, 3, 2, 14, 30)),
    ],
)
def test_quiet_hours_push_a_topic_to_their_end(
    quiet_hours: str, last: datetime, expected: datetime
) -> None:
    p = plan(last_activity=last, quiet_hours=quiet_hours)
    assert due_of(p, last) == (NudgeKind.TOPIC, expected)


def test_quiet_hours_are_local_time_in_the_chats_time_zone() -> None:
    # 22:00-08:00 in New York (UTC-5 in January): quiet from 03:00 to 13:00 UTC.
    p = plan(
        last_activity=utc(2026, 1, 10, 2, 30), quiet_hours="22:00-08:00", timezone=NEW_YORK.key
    )
    assert due_of(p, utc(2026, 1, 10, 2, 30)) == (NudgeKind.TOPIC, utc(2026, 1, 10, 13, 0))
    # In July New York is UTC-4: the same local hours end at 12:00 UTC.
    p = plan(
        last_activity=utc(2026, 7, 10, 2, 30), quiet_hours="22:00-08:00", timezone=NEW_YORK.key
    )
    assert due_of(p, utc(2026, 7, 10, 2, 30)) == (NudgeKind.TOPIC, utc(2026, 7, 10, 12, 0))


def test_a_full_day_pushes_a_topic_to_the_next_local_day() -> None:
    # Three sent on 2 March in Berlin; the next topic waits for Berlin's midnight (23:00 UTC),
    # and then for the end of the quiet hours.
    full: dict[str, Any] = {"day": "2026-03-02", "sent_today": 3, "timezone": BERLIN.key}
    p = plan(last_activity=utc(2026, 3, 2, 15), quiet_hours="off", **full)
    assert due_of(p, utc(2026, 3, 2, 15)) == (NudgeKind.TOPIC, utc(2026, 3, 2, 23, 0))
    p = plan(last_activity=utc(2026, 3, 2, 15), quiet_hours="00:00-09:00", **full)
    assert due_of(p, utc(2026, 3, 2, 15)) == (NudgeKind.TOPIC, utc(2026, 3, 3, 8, 0))
    # A count of another day does not hold today back.
    p = plan(last_activity=utc(2026, 3, 3, 15), day="2026-03-02", sent_today=3)
    assert due_of(p, utc(2026, 3, 3, 15)) == (NudgeKind.TOPIC, utc(2026, 3, 3, 16, 0))


def test_a_greeting_is_due_at_its_scheduled_local_time() -> None:
    p = plan(
        schedule="30 9 * * mon-fri",
        timezone=BERLIN.key,
        quiet_minutes=0,
        enabled_at=utc(2026, 3, 6, 12),
    )  # a Friday
    # Next: Monday 9 March, 09:30 in Berlin (08:30 UTC).
    assert due_of(p, utc(2026, 3, 6, 12)) == (NudgeKind.GREETING, utc(2026, 3, 9, 8, 30))
    # Once handled, the next one.
    p = plan(
        schedule="30 9 * * mon-fri",
        timezone=BERLIN.key,
        quiet_minutes=0,
        enabled_at=utc(2026, 3, 6, 12),
        last_greeting_at=utc(2026, 3, 9, 8, 30),
    )
    assert due_of(p, utc(2026, 3, 9, 8, 31)) == (NudgeKind.GREETING, utc(2026, 3, 10, 8, 30))


def test_a_greeting_missed_long_ago_is_skipped_one_missed_lately_is_sent() -> None:
    schedule: dict[str, Any] = {
        "schedule": "0 9 * * *",
        "quiet_minutes": 0,
        "enabled_at": utc(2026, 3, 1),
    }
    p = plan(**schedule, last_greeting_at=utc(2026, 3, 1, 9))
    lately = utc(2026, 3, 2, 9) + GREETING_GRACE - timedelta(minutes=1)
    assert due_of(p, lately) == (NudgeKind.GREETING, utc(2026, 3, 2, 9))
    long_ago = utc(2026, 3, 2, 9) + GREETING_GRACE + timedelta(minutes=1)
    assert due_of(p, long_ago) == (NudgeKind.GREETING, utc(2026, 3, 3, 9))


def test_the_earlier_of_topic_and_greeting_comes_first() -> None:
    p = plan(last_activity=utc(2026, 3, 2, 8, 30), schedule="0 9 * * *", enabled_at=utc(2026, 3, 1))
    assert due_of(p, utc(2026, 3, 2, 8, 31)) == (NudgeKind.GREETING, utc(2026, 3, 2, 9))
    p = plan(last_activity=utc(2026, 3, 2, 7, 30), schedule="0 9 * * *", enabled_at=utc(2026, 3, 1))
    assert due_of(p, utc(2026, 3, 2, 7, 31)) == (NudgeKind.TOPIC, utc(2026, 3, 2, 8, 30))


def test_cron_fields_ranges_steps_lists_and_names() -> None:
    cron = CronSchedule.parse("*/15 9-17/4 * jan,jul sat")
    assert cron.minutes == (0, 15, 30, 45)
    assert cron.hours == (9, 13, 17)
    assert cron.months == {1, 7}
    assert cron.weekdays == {6}
    assert CronSchedule.parse("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert CronSchedule.parse("@daily").text == "0 0 * * *"


def test_cron_day_fields_match_either_when_both_are_restricted() -> None:
    # The 15th (a Sunday), or any Friday.
    cron = CronSchedule.parse("0 12 15 * fri")
    start = utc(2026, 3, 1)
    fired = []
    at: datetime | None = start
    for _ in range(4):
        assert at is not None
        at = cron.next_after(at, ZoneInfo("UTC"))
        assert at is not None
        fired.append(at.date().isoformat())
    assert fired == ["2026-03-06", "2026-03-13", "2026-03-15", "2026-03-20"]


def test_cron_in_a_time_zone_across_a_clock_change() -> None:
    cron = CronSchedule.parse("0 9 * * *")
    # Berlin moves to summer time on 29 March 2026: 09:00 is 08:00 UTC before, 07:00 after.
    assert cron.next_after(utc(2026, 3, 28, 9), BERLIN) == utc(2026, 3, 29, 7, 0)
    assert cron.next_after(utc(2026, 3, 27, 9), BERLIN) == utc(2026, 3, 28, 8, 0)
    assert CronSchedule.parse("0 0 31 2 *").next_after(utc(2026, 1, 1), BERLIN) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 9 * *", "5 fields"),
        ("61 9 * * *", "minute: 61 is not between 0 and 59"),
        ("0 24 * * *", "hour: 24 is not between 0 and 23"),
        ("0 9 0 * *", "day of month: 0 is not between 1 and 31"),
        ("0 9 * foo *", "month: 'foo' is not a number"),
        ("0 9 * * 5-1", "day of week: the range '5-1' runs backwards"),
    ],
)
def test_a_bad_schedule_names_its_field(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CronSchedule.parse(text)


def test_quiet_hours_parse() -> None:
    hours = QuietHours.parse("22:00-07:30")
    assert str(hours) == "22:00-07:30"
    assert QuietHours.parse("off") is None
    for bad, why in (
        ("22-7", "HH:MM-HH:MM"),
        ("25:00-07:00", "not a time"),
        ("10:00-10:00", "end"),
    ):
        with pytest.raises(ValueError, match=why):
            QuietHours.parse(bad)
