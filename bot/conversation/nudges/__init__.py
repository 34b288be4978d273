"""Characters that speak first: opening a topic after a quiet period, scheduled greetings.

- :mod:`.rules`: when a nudge is due (quiet period, quiet hours, maximum per day), as pure
  functions of the stored state.
- :mod:`.cron`: the 5-field schedule of greetings.
- :mod:`.scheduler`: the one task per process that sends what is due, exactly once across
  processes.

How it fits the rest is in ``docs/design.md`` ("Characters that speak first").
"""

from bot.conversation.nudges.cron import CronSchedule
from bot.conversation.nudges.rules import (
    Due,
    NudgeDefaults,
    NudgeKind,
    NudgeRules,
    QuietHours,
    next_nudge,
    parse_timezone,
)
from bot.conversation.nudges.scheduler import NudgeScheduler, ProactiveSink, Speak

__all__ = [
    "CronSchedule",
    "Due",
    "NudgeDefaults",
    "NudgeKind",
    "NudgeRules",
    "NudgeScheduler",
    "ProactiveSink",
    "QuietHours",
    "Speak",
    "next_nudge",
    "parse_timezone",
]
