"""Forgetting a conversation (reset) and erasing a user (forget), each after a question.

A platform shows the :class:`Question` with its own buttons or prompt and runs the action
when the person who asked confirms; a reset is checked for admin rights again then.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.conversation.commands.caller import Caller
from bot.conversation.commands.words import count
from bot.conversation.manager import ConversationManager

#: The answer to a question that was cancelled.
CANCELLED = "Cancelled; nothing was changed."
#: The label of the button (or word) that cancels.
CANCEL = "Cancel"
#: The answer to anyone but the asker who tries to answer.
NOT_YOURS = "Only the person who asked can answer this."


@dataclass(frozen=True, slots=True)
class Question:
    """What to ask before erasing, and the label of the button that confirms."""

    text: str
    confirm: str


FORGET_QUESTION = Question(
    "Erase everything stored about you: your messages in every chat, your persona, what the "
    "characters remember of you, your usage and moderation records? This cannot be undone.",
    "Yes, erase",
)


async def ask_reset(manager: ConversationManager, caller: Caller) -> Question:
    """The question before a reset; for the chat's admins."""
    await caller.require_admin()
    character = await manager.character_for(caller.key)
    return Question(
        f"Forget this whole conversation with {character.name}? This cannot be undone.",
        "Yes, reset",
    )


async def reset(manager: ConversationManager, caller: Caller) -> str:
    """Forget the conversation's history (confirmed); for the chat's admins."""
    await caller.require_admin()
    deleted = await manager.reset(caller.key)
    return f"Conversation reset ({count(deleted, 'message')} forgotten)."


async def forget(manager: ConversationManager, caller: Caller) -> str:
    """Erase everything stored about the caller on their platform (confirmed)."""
    report = await manager.users.forget(caller.platform, caller.user_id)
    memories = f", {count(report.memories, 'memory', 'memories')}" if report.memories else ""
    return (
        f"Erased {count(report.messages, 'message')}, {count(report.personas, 'persona')}"
        f"{memories}, {count(report.model_calls, 'usage record')} and "
        f"{count(report.moderation_events, 'moderation record')} about you."
    )
