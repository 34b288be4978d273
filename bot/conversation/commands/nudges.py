"""Characters that speak first: whether, when and how often, in plain words.

In a channel (a group, a server channel) its admins turn nudges on and set them; everyone may
see them. In a private chat the user decides (``/nudges on``): nothing is sent to anyone who
did not ask, and never more often than the owner's ``TROUPE_NUDGE_MAX_PER_DAY`` allows.
:func:`nudges_command` takes the words of the text form (Telegram, the terminal); Discord's
slash options are mapped onto the same words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from bot.conversation.commands.caller import Caller
from bot.conversation.commands.words import count
from bot.conversation.manager import ConversationManager
from bot.conversation.nudges import NudgeDefaults, NudgeKind, NudgeRules, next_nudge
from bot.errors import BadCommandWords
from bot.storage import NudgePlan, NudgeSettings

__all__ = ["NUDGES_USAGE", "describe_nudges", "nudges_command"]

#: The longest quiet period one may set: a week.
QUIET_MINUTES = (0, 7 * 24 * 60)
#: The most nudges a day a channel's admins may allow.
MAX_PER_DAY = (1, 48)
NUDGES_USAGE = (
    "on|off · quiet MINUTES (0: greetings only) · hours HH:MM-HH:MM|off · "
    "timezone Area/City · max N · schedule MIN HOUR DAY MONTH WEEKDAY|off"
)
_SWITCH = {"on": True, "off": False}


def describe_nudges(plan: NudgePlan, defaults: NudgeDefaults, now: datetime) -> str:
    """Whether and when characters speak first in ``plan``'s chat, one rule per line."""
    settings, state = plan.settings, plan.state
    rules = NudgeRules.of(settings, defaults)
    if settings.enabled:
        lines = ["Characters may speak first here."]
    elif state.blocked_at is not None:
        lines = [
            f"Characters do not speak first here: the chat refused the bot on "
            f"{state.blocked_at:%Y-%m-%d %H:%M} UTC. Turn it on again when it takes messages."
        ]
    else:
        lines = ["Characters do not speak first here (off)."]
    zone = rules.zone.key
    lines.append(
        f"After {count(int(rules.quiet.total_seconds() // 60), 'minute')} without a message, "
        "a character opens a topic."
        if rules.quiet is not None
        else "Characters open no topics (greetings only)."
    )
    hours = rules.quiet_hours
    lines.append(f"Quiet hours: {hours} ({zone})." if hours else f"No quiet hours ({zone}).")
    lines.append(f"At most {rules.max_per_day} a day; {rules.sent_on(plan, now)} so far today.")
    lines.append(
        f"Scheduled greetings: {rules.schedule.text}."
        if rules.schedule
        else "No scheduled greetings."
    )
    if settings.enabled:
        due = next_nudge(plan, rules, now)
        if due is not None:
            what = "a greeting" if due.kind is NudgeKind.GREETING else "a topic, if still quiet"
            lines.append(f"Next: {what}, {due.at.astimezone(rules.zone):%a %d %b %H:%M} ({zone}).")
    return "\n".join(lines)


def change_nudges(
    settings: NudgeSettings, words: Sequence[str], *, defaults: NudgeDefaults, private: bool
) -> NudgeSettings:
    """``settings`` with one ``NAME VALUE…`` change (or ``on``/``off``) applied and checked.

    Raises :class:`~bot.errors.BadCommandWords` whose message says what is wrong.
    """
    name, values = words[0].lower(), list(words[1:])
    changed: NudgeSettings
    if name in _SWITCH and not values:
        changed = dataclasses.replace(settings, enabled=_SWITCH[name])
    elif name == "quiet" and len(values) == 1:
        changed = dataclasses.replace(settings, quiet_minutes=_whole(values[0], *QUIET_MINUTES))
    elif name == "hours" and values:
        hours = "".join(values).lower()  # "22:00 - 08:00" too
        changed = dataclasses.replace(settings, quiet_hours="" if hours == "off" else hours)
    elif name == "timezone" and len(values) == 1:
        changed = dataclasses.replace(settings, timezone=values[0])
    elif name == "max" and len(values) == 1:
        # A private chat's user may ask for fewer nudges than the owner allows, never more.
        most = defaults.max_per_day if private else MAX_PER_DAY[1]
        changed = dataclasses.replace(settings, max_per_day=_whole(values[0], 1, most))
    elif name == "schedule" and values:
        off = len(values) == 1 and values[0].lower() == "off"
        changed = dataclasses.replace(settings, schedule="" if off else " ".join(values))
    else:
        raise BadCommandWords(f"Unknown setting {' '.join(words)!r}. Settings: {NUDGES_USAGE}")
    try:
        NudgeRules.of(changed, defaults)
    except ValueError as error:
        raise BadCommandWords(f"{name}: {error}") from None
    return changed


def _whole(word: str, low: int, high: int) -> int:
    if not (word.isascii() and word.isdigit()) or not low <= int(word) <= high:
        raise BadCommandWords(f"{word!r} is not a whole number from {low} to {high}")
    return int(word)


async def nudges_command(
    manager: ConversationManager,
    caller: Caller,
    *changes: Sequence[str],
    private: bool,
) -> str:
    """``/nudges [on|off|NAME VALUE]``: show the chat's nudges, or make ``changes`` (each the
    words of one) to them: in a private chat its user, elsewhere its admins. All or none are
    made; the answer says what is now in force."""
    plan = await manager.nudge_plan(caller.key)
    defaults = manager.nudges.defaults
    changes = tuple(words for words in changes if words and words[0].lower() != "status")
    if changes:
        if not private:
            await caller.require_admin()
        settings = plan.settings
        for words in changes:
            settings = change_nudges(settings, words, defaults=defaults, private=private)
        if private:
            # The private chat's user: erased with them, and the one their nudges count for.
            settings = dataclasses.replace(settings, user_id=caller.user_id)
        await manager.set_nudges(caller.key, settings)
        plan = await manager.nudge_plan(caller.key)
    return describe_nudges(plan, defaults, manager.nudges.now())
