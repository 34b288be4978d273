"""``/memory``: what the character remembers about this conversation and the one who asks.

The list is numbered: the summary of what fell out of the window first (when there is one),
then the facts about the caller. ``forget N`` deletes item N and ``fix N TEXT`` corrects it.
Facts are the caller's own; the summary belongs to the whole chat, so in a group only its
admins may change it.
"""

from __future__ import annotations

from bot.conversation.commands.caller import Caller
from bot.conversation.manager import ConversationManager
from bot.conversation.recall import MemoryItems
from bot.errors import BadCommandWords
from bot.llm.summary import FACT_MAX

#: The text form's usage, said when its words make no sense.
MEMORY_USAGE = "Use /memory, /memory forget N or /memory fix N new text."
#: The longest correction of the summary, in characters (it is sent with every turn).
SUMMARY_MAX = 4000


def describe(items: MemoryItems) -> str:
    """The numbered list ``/memory`` shows."""
    name = items.character.name
    if items.summary is None and not items.facts:
        return f"{name} remembers nothing beyond the conversation itself yet."
    lines: list[str] = []
    number = 1
    if items.summary is not None:
        lines += [f"What {name} remembers of the story so far:", f"{number}. {items.summary}"]
        number += 1
    if items.facts:
        lines.append(f"What {name} knows about you:")
        for fact in items.facts:
            lines.append(f"{number}. {fact.text}")
            number += 1
    lines.append("/memory forget N deletes item N; /memory fix N text corrects it.")
    return "\n".join(lines)


async def show_memory(manager: ConversationManager, caller: Caller) -> str:
    """The caller's numbered view of the memory."""
    return describe(await manager.memory(caller.key, caller.user_id))


async def forget_memory(manager: ConversationManager, caller: Caller, number: int) -> str:
    """Delete item ``number`` of :func:`show_memory`'s list."""
    return await _change(manager, caller, number, None)


async def fix_memory(manager: ConversationManager, caller: Caller, number: int, text: str) -> str:
    """Replace item ``number`` of :func:`show_memory`'s list with ``text``."""
    text = " ".join(text.split()) if number > 1 else text.strip()
    if not text:
        raise BadCommandWords("Say what it should read instead: /memory fix N new text.")
    return await _change(manager, caller, number, text)


async def memory_command(manager: ConversationManager, caller: Caller, words: str) -> str:
    """The text form: no words show the memory; ``forget N``; ``fix N TEXT``."""
    verb, _, rest = words.strip().partition(" ")
    if not verb:
        return await show_memory(manager, caller)
    number_word, _, text = rest.strip().partition(" ")
    if verb.lower() not in ("forget", "fix") or not number_word.isdigit():
        raise BadCommandWords(MEMORY_USAGE)
    if verb.lower() == "forget":
        return await forget_memory(manager, caller, int(number_word))
    return await fix_memory(manager, caller, int(number_word), text)


async def _change(
    manager: ConversationManager, caller: Caller, number: int, text: str | None
) -> str:
    items = await manager.memory(caller.key, caller.user_id)
    summary_items = 1 if items.summary is not None else 0
    if not 1 <= number <= summary_items + len(items.facts):
        raise BadCommandWords(f"There is no item {number}; /memory lists them.")
    if number <= summary_items:
        await caller.require_admin()
        if text is not None and len(text) > SUMMARY_MAX:
            raise BadCommandWords(f"The story so far can be at most {SUMMARY_MAX} characters.")
        await manager.recall.set_summary(items.conversation_id, text)
    else:
        if text is not None and len(text) > FACT_MAX:
            raise BadCommandWords(f"A fact can be at most {FACT_MAX} characters.")
        fact = items.facts[number - summary_items - 1]
        await manager.recall.set_fact(fact.id, caller.user_id, text)
    name = items.character.name
    return (
        f"{name} no longer remembers item {number}."
        if text is None
        else f"Item {number} now reads: {text}"
    )
