"""Whether a message gets an answer, and from which character.

Pure logic over the facts in :class:`~bot.conversation.incoming.Incoming`; time comes from an
injectable clock and chance from an injectable RNG so that tests are exact.
"""

from __future__ import annotations

import enum
import functools
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.characters.schema import Character
from bot.conversation.incoming import ConversationKey, Incoming


class Trigger(enum.StrEnum):
    """Why a character answers."""

    DIRECT = "direct message"
    MENTION = "mentions the bot"
    REPLY = "replies to a character"
    NAME = "says a character's name"
    ANSWER_ALL = "channel answers every message"
    FOLLOW_UP = "follow-up within the window"
    RANDOM = "random chance"


@dataclass(frozen=True, slots=True)
class TriggerSettings:
    """Per-channel trigger rules. The defaults suit a busy group channel."""

    answer_all: bool = False
    #: Seconds after a character answered someone in which that person goes on without @.
    follow_up_seconds: float = 90.0
    #: Chance of joining in unaddressed just after being addressed; halves every half-life.
    #: 0 turns it off.
    random_chance: float = 0.0
    random_half_life_seconds: float = 600.0
    allow_bots: bool = False
    #: With ``allow_bots``: how many bot messages in a row may be answered before a human speaks.
    max_consecutive_bot_turns: int = 3
    #: In a scene: how many character turns one human message may lead to, the first answer
    #: included (1: characters never answer each other).
    scene_turns: int = 2
    #: In a scene: seconds before a character answers another, in which a human who starts
    #: typing or writing ends the chain (characters never answer each other at machine speed).
    scene_pause_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class TriggerDecision:
    """The outcome: answer or not, why, and who speaks."""

    answer: bool
    reason: Trigger | None = None
    character: Character | None = None


@dataclass(slots=True)
class _ChannelState:
    last_addressed_at: float | None = None
    follow_up_author: str | None = None
    follow_up_until: float = -math.inf
    consecutive_bot_turns: int = 0


@dataclass
class TriggerPolicy:
    """Decides per message; remembers per conversation what the follow-up and bot rules need."""

    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    _state: dict[ConversationKey, _ChannelState] = field(default_factory=dict, repr=False)

    def decide(
        self,
        incoming: Incoming,
        characters: Sequence[Character],
        settings: TriggerSettings | None = None,
    ) -> TriggerDecision:
        """Decide for ``incoming`` in a conversation whose scene is ``characters`` (main first)."""
        settings = settings or TriggerSettings()
        state = self._state.setdefault(incoming.key, _ChannelState())
        now = self.clock()
        if not characters:
            return TriggerDecision(False)
        if incoming.author_is_bot:
            if not settings.allow_bots or (
                state.consecutive_bot_turns >= settings.max_consecutive_bot_turns
            ):
                return TriggerDecision(False)
        else:
            state.consecutive_bot_turns = 0

        named = addressed_character(incoming.text, characters)
        reason = self._reason(incoming, named, settings, state, now)
        if reason is None:
            return TriggerDecision(False)
        if reason is not Trigger.RANDOM and reason is not Trigger.FOLLOW_UP:
            state.last_addressed_at = now
        if incoming.author_is_bot:
            state.consecutive_bot_turns += 1
        else:
            state.follow_up_author = incoming.author_id
            state.follow_up_until = now + settings.follow_up_seconds
        return TriggerDecision(True, reason, named or characters[0])

    def _reason(
        self,
        incoming: Incoming,
        named: Character | None,
        settings: TriggerSettings,
        state: _ChannelState,
        now: float,
    ) -> Trigger | None:
        if incoming.is_direct:
            return Trigger.DIRECT
        if incoming.mentions_bot:
            return Trigger.MENTION
        if incoming.replies_to_bot:
            return Trigger.REPLY
        if named is not None:
            return Trigger.NAME
        # Below here the message is not addressed to a character: never butt in when it
        # @mentions someone else.
        if incoming.mentions_others:
            return None
        if settings.answer_all:
            return Trigger.ANSWER_ALL
        if state.follow_up_author == incoming.author_id and now <= state.follow_up_until:
            return Trigger.FOLLOW_UP
        if settings.random_chance > 0 and state.last_addressed_at is not None:
            age = now - state.last_addressed_at
            chance = settings.random_chance * 0.5 ** (age / settings.random_half_life_seconds)
            if self.rng.random() < chance:
                return Trigger.RANDOM
        return None


def addressed_character(text: str, characters: Sequence[Character]) -> Character | None:
    """The character whose name or nickname appears in ``text`` as a whole word, if any.

    When several are named, the one named first in the text wins.
    """
    best: tuple[int, Character] | None = None
    for character in characters:
        for alias in (character.name, *character.nicknames):
            if not alias.strip():
                continue
            match = alias_pattern(alias).search(text)
            if match and (best is None or match.start() < best[0]):
                best = (match.start(), character)
    return best[1] if best else None


@functools.lru_cache(maxsize=1024)
def alias_pattern(alias: str) -> re.Pattern[str]:
    """A pattern finding ``alias`` as a whole word, whatever its case."""
    return re.compile(rf"(?<!\w){re.escape(alias.strip())}(?!\w)", re.IGNORECASE)
