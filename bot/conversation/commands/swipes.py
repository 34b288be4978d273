"""Swipes from chat commands and buttons: regenerate, browse and continue a character's reply.

Who may: the person the reply answered, or someone who may administer the chat (a
moderator); a greeting, which answered nobody, anyone in the chat. Only the newest message
of a conversation can change: buttons under an older reply answer :data:`TOO_LATE`.
"""

from __future__ import annotations

from bot.conversation.commands.caller import Caller
from bot.conversation.manager import ConversationManager
from bot.conversation.sink import ReplySink
from bot.conversation.swipes import SwipeAction, SwipeTarget
from bot.conversation.turn import TurnOutcome
from bot.errors import NotAllowed, TooLate

#: Said when the reply is no longer the newest message (or is gone).
TOO_LATE = "Too late: only the newest reply can be changed, and a message came after this one."
#: Said when there is no character reply to act on.
NOTHING_TO_SWIPE = "There is no reply to change yet."
#: Said to someone other than the person the reply answered, who is no moderator.
NOT_YOUR_REPLY = "Only the person this reply answered, or a moderator, can change it."
#: Said when "continue" is asked of a greeting.
GREETING_STAYS = "A greeting cannot be continued; regenerate or browse it instead."

#: Button and keyboard labels, one per action, the same on every platform.
LABELS = {
    SwipeAction.PREVIOUS: "◀",
    SwipeAction.NEXT: "▶",
    SwipeAction.REGENERATE: "↻ Regenerate",
    SwipeAction.CONTINUE: "⏩ Continue",
}


async def swipe(
    manager: ConversationManager,
    caller: Caller,
    action: SwipeAction,
    sink: ReplySink,
    *,
    message_id: int | None = None,
    channel_name: str | None = None,
) -> TurnOutcome:
    """Do ``action`` to the character's message ``message_id`` (``None``: the newest one)
    for ``caller``, shown through ``sink``; a :class:`~bot.errors.Refusal` says why not."""

    async def check(target: SwipeTarget | None) -> None:
        if target is None:
            raise TooLate(NOTHING_TO_SWIPE if message_id is None else TOO_LATE)
        if not target.newest:
            raise TooLate(TOO_LATE)
        if action is SwipeAction.CONTINUE and not target.generated:
            raise NotAllowed(GREETING_STAYS)
        if target.answered_author not in (None, caller.user_id):
            try:
                await caller.require_admin()
            except NotAllowed:
                raise NotAllowed(NOT_YOUR_REPLY) from None

    return await manager.swipe(
        caller.key, action, sink, check=check, message_id=message_id, channel_name=channel_name
    )


def swipe_data(action: SwipeAction, message_id: int) -> str:
    """What a button for ``action`` on the message ``message_id`` carries (a Discord custom
    id, Telegram callback data): ``swipe:next:42``. The same after a restart."""
    return f"{PREFIX}{action.value}:{message_id}"


def parse_swipe_data(data: str) -> tuple[SwipeAction, int] | None:
    """The action and message of :func:`swipe_data`'s text; ``None`` for anything else."""
    if not data.startswith(PREFIX):
        return None
    action, _, message_id = data[len(PREFIX) :].partition(":")
    if action not in set(SwipeAction) or not message_id.isdigit():
        return None
    return SwipeAction(action), int(message_id)


#: How swipe buttons' data begins.
PREFIX = "swipe:"
