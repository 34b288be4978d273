"""A chat's trigger rules (when characters speak): said in plain words, changed by admins.

:func:`describe_triggers` says what the rules are (Discord's ``/channel triggers`` and
Telegram's ``/triggers``), :func:`change_triggers` applies ``NAME VALUE`` words to them, for
adapters whose admin commands take text (``/triggers follow_up 60`` on Telegram), and
:func:`chat_triggers` reads and stores them for the chat's admins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from bot.conversation.commands.caller import Caller
from bot.conversation.manager import ConversationManager
from bot.conversation.trigger import TriggerSettings
from bot.errors import BadCommandWords

#: A change to a chat's trigger rules.
TriggersChange = Callable[[TriggerSettings], TriggerSettings]

# The ranges every platform's UI offers (Discord's slash options take them too).
FOLLOW_UP_SECONDS = (0, 3600)
RANDOM_CHANCE = (0, 1)
HALF_LIFE_SECONDS = (1, 86400)
BOT_TURNS_IN_A_ROW = (1, 20)
SCENE_TURNS = (1, 10)
SCENE_PAUSE_SECONDS = (0, 60)

TRIGGERS_USAGE = (
    f"answer_all on|off · follow_up SECONDS ({FOLLOW_UP_SECONDS[0]}-{FOLLOW_UP_SECONDS[1]}) · "
    f"random CHANCE ({RANDOM_CHANCE[0]}-{RANDOM_CHANCE[1]}) [HALF_LIFE_SECONDS] · "
    f"bots on|off [MAX_IN_A_ROW ({BOT_TURNS_IN_A_ROW[0]}-{BOT_TURNS_IN_A_ROW[1]})] · "
    f"scene_turns N ({SCENE_TURNS[0]}-{SCENE_TURNS[1]}) · "
    f"scene_pause SECONDS ({SCENE_PAUSE_SECONDS[0]}-{SCENE_PAUSE_SECONDS[1]})"
)
_SWITCH = {"on": True, "off": False, "yes": True, "no": False, "true": True, "false": False}


def describe_triggers(settings: TriggerSettings) -> str:
    """The chat's trigger rules in plain words, one per line."""
    lines = [
        "Answers every message." if settings.answer_all else "Answers when addressed.",
        f"Follow-up window: {settings.follow_up_seconds:g} s.",
        (
            f"Random chance to join in: {settings.random_chance:.0%}, halving every "
            f"{settings.random_half_life_seconds:g} s."
            if settings.random_chance > 0
            else "Never joins in uninvited."
        ),
        (
            f"Answers other bots, at most {settings.max_consecutive_bot_turns} in a row."
            if settings.allow_bots
            else "Ignores other bots."
        ),
        (
            f"In a scene, one message leads to at most {settings.scene_turns} character turns."
            if settings.scene_turns > 1
            else "In a scene, characters do not answer each other."
        ),
    ]
    if settings.scene_turns > 1:
        lines.append(
            f"Characters wait {settings.scene_pause_seconds:g} s before answering each other."
        )
    return "\n".join(lines)


def change_triggers(settings: TriggerSettings, words: Sequence[str]) -> TriggerSettings:
    """``settings`` with one ``NAME VALUE…`` change applied.

    Raises :class:`~bot.errors.BadCommandWords` whose message says what is wrong.
    """
    if not words:
        raise BadCommandWords(f"Say what to change: {TRIGGERS_USAGE}")
    name, values = words[0].lower(), [word.lower() for word in words[1:]]
    if name == "answer_all" and len(values) == 1:
        return dataclasses.replace(settings, answer_all=_switch(values[0]))
    if name == "follow_up" and len(values) == 1:
        follow_up = _number(values[0], *FOLLOW_UP_SECONDS)
        return dataclasses.replace(settings, follow_up_seconds=follow_up)
    if name == "random" and len(values) in (1, 2):
        chance = _number(values[0], *RANDOM_CHANCE)
        half_life = settings.random_half_life_seconds
        if len(values) == 2:
            half_life = _number(values[1], *HALF_LIFE_SECONDS)
        return dataclasses.replace(
            settings, random_chance=chance, random_half_life_seconds=half_life
        )
    if name == "bots" and len(values) in (1, 2):
        limit = (
            int(_number(values[1], *BOT_TURNS_IN_A_ROW))
            if len(values) == 2
            else settings.max_consecutive_bot_turns
        )
        return dataclasses.replace(
            settings, allow_bots=_switch(values[0]), max_consecutive_bot_turns=limit
        )
    if name == "scene_turns" and len(values) == 1:
        return dataclasses.replace(settings, scene_turns=int(_number(values[0], *SCENE_TURNS)))
    if name == "scene_pause" and len(values) == 1:
        pause = _number(values[0], *SCENE_PAUSE_SECONDS)
        return dataclasses.replace(settings, scene_pause_seconds=pause)
    raise BadCommandWords(f"Unknown setting {' '.join(words)!r}. Settings: {TRIGGERS_USAGE}")


def _switch(word: str) -> bool:
    if word not in _SWITCH:
        raise BadCommandWords(f"{word!r} is not on or off")
    return _SWITCH[word]


def _number(word: str, low: float, high: float) -> float:
    try:
        value = float(word)
    except ValueError:
        raise BadCommandWords(f"{word!r} is not a number") from None
    if not low <= value <= high:
        raise BadCommandWords(f"{word} is not between {low:g} and {high:g}")
    return value


async def chat_triggers(
    manager: ConversationManager, caller: Caller, change: TriggersChange | None = None
) -> str:
    """The chat's trigger rules in words, after ``change`` if given (stored); for admins."""
    await caller.require_admin()
    settings = await manager.policies.chat_settings(caller.key)
    if change is not None:
        settings = change(settings)
        await manager.policies.set_chat_settings(caller.key, settings)
    return describe_triggers(settings)
