"""Swipes: what can be done to a character's reply shown last, and what the engine knows
about it when it is asked to.

The engine (:meth:`~bot.conversation.manager.ConversationManager.swipe`) runs the action in
the conversation's lane, as one of its turns; the command layer
(:mod:`bot.conversation.commands.swipes`) decides who may, and says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.storage import Alternatives, StoredMessage


class SwipeAction(StrEnum):
    """What to do to a reply (the values are what buttons and commands carry)."""

    #: Write a new alternative (a greeting shows the next greeting instead).
    REGENERATE = "regen"
    #: Show the alternative before the one shown.
    PREVIOUS = "prev"
    #: Show the alternative after the one shown.
    NEXT = "next"
    #: Let the model go on from the reply's end.
    CONTINUE = "cont"


@dataclass(frozen=True, slots=True)
class SwipeTarget:
    """The reply a swipe acts on, as found once the conversation's turn is the swipe's."""

    reply: StoredMessage
    #: Who wrote the message the reply answered (``None`` for a greeting).
    answered_author: str | None
    #: No message came after the reply: it may still change.
    newest: bool
    alternatives: Alternatives

    @property
    def generated(self) -> bool:
        """Written by the model for a message (a greeting is not: it is from the file)."""
        return self.reply.reply_to_id is not None


#: Raises a :class:`~bot.errors.Refusal` if the swipe may not happen (no such reply: ``None``;
#: too late; not theirs).
SwipeCheck = Callable[[SwipeTarget | None], Awaitable[None]]
