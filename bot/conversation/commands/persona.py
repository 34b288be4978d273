"""A user's persona (who they are in the story, sent to every character): show, set, clear."""

from __future__ import annotations

from bot.conversation.commands.caller import Caller
from bot.conversation.manager import ConversationManager
from bot.errors import PersonaTooLong

#: The longest persona, in characters, on every platform: it is sent with every turn.
PERSONA_MAX = 1000
#: The word that clears the persona in the text form (``/persona clear``).
CLEAR = "clear"


async def show_persona(manager: ConversationManager, caller: Caller) -> str:
    """The caller's persona, or that they have none."""
    persona = await manager.persona(caller.platform, caller.user_id)
    return f"Your persona: {persona}" if persona else "You have no persona set."


async def set_persona(manager: ConversationManager, caller: Caller, text: str) -> str:
    """Set the caller's persona; :class:`~bot.errors.PersonaTooLong` past the limit."""
    text = text.strip()
    if len(text) > PERSONA_MAX:
        raise PersonaTooLong(
            f"A persona can be at most {PERSONA_MAX} characters; this one has {len(text)}."
        )
    if not text:
        return await show_persona(manager, caller)
    await manager.set_persona(caller.platform, caller.user_id, text)
    return f"Persona set. The characters will know you as: {text}"


async def clear_persona(manager: ConversationManager, caller: Caller) -> str:
    """Remove the caller's persona."""
    await manager.set_persona(caller.platform, caller.user_id, None)
    return "Persona cleared."


async def persona_command(manager: ConversationManager, caller: Caller, words: str) -> str:
    """The text form: no words show the persona, ``clear`` clears it, anything else sets it."""
    text = words.strip()
    if not text:
        return await show_persona(manager, caller)
    if text.lower() == CLEAR:
        return await clear_persona(manager, caller)
    return await set_persona(manager, caller, text)
