"""Small builders for lorebook tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.characters.lore.book import Lorebook, compile_book
from bot.characters.lore.select import Turns, fire
from bot.characters.lore.spec import LorebookSpec
from bot.characters.schema import Character


def book(*entries: dict[str, Any], book_id: str = "world", **settings: Any) -> Lorebook:
    """A compiled book of ``entries`` (YAML shape); unnamed entries are named by their index."""
    named = [{"name": f"e{i}", **entry} for i, entry in enumerate(entries)]
    compiled, _ = compile_book(LorebookSpec.model_validate({**settings, "entries": named}), book_id)
    return compiled


NO_REPLIES = Turns(0)


def fired(
    books: Lorebook | Sequence[Lorebook], *messages: str, turns: Turns = NO_REPLIES
) -> dict[str, str]:
    """Label -> why, of every entry that fires on ``messages`` (oldest first)."""
    shelf = [books] if isinstance(books, Lorebook) else list(books)
    return {found.entry.label: found.reason for found in fire(shelf, messages, turns)}


def character(*books: Lorebook, **fields: Any) -> Character:
    """A character using ``books``."""
    made = Character.model_validate({"name": "Mara", "description": "A detective.", **fields})
    made.attach_lorebooks(tuple(books))
    return made
