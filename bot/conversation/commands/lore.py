"""A chat's world books: shared lorebooks its admins attach, scanned in every turn there.

:func:`chat_lorebooks` shows them to everyone; ``add BOOK`` and ``remove BOOK`` are for the
chat's admins. A book is named by its id (its file name in the ``lorebooks/`` folder) or its
name. The list is stored with the chat's other settings; a thread or topic follows its chat.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.commands.caller import Caller
from bot.conversation.manager import ConversationManager
from bot.errors import BadCommandWords

LOREBOOKS_USAGE = "add BOOK · remove BOOK (BOOK: a world book's file name or name)"


async def chat_lorebooks(
    manager: ConversationManager, caller: Caller, words: Sequence[str] = ()
) -> str:
    """The chat's world books and the others loaded, after ``add BOOK`` / ``remove BOOK``
    (admins) if ``words`` say one. Raises :class:`~bot.errors.BadCommandWords` for bad words."""
    attached = await manager.policies.chat_lorebooks(caller.key)
    if words:
        await caller.require_admin()
        attached = await _change(manager, caller, attached, words)
    books = manager.characters.books
    if not books and not attached:
        return "No world books are loaded (they go in the characters folder's lorebooks/)."
    here = ", ".join(_describe(manager, book_id) for book_id in attached) or "none"
    others = [_describe(manager, book_id) for book_id in sorted(books) if book_id not in attached]
    return f"World books in this chat: {here}.\nAvailable: {', '.join(others) or 'no other'}."


async def _change(
    manager: ConversationManager, caller: Caller, attached: tuple[str, ...], words: Sequence[str]
) -> tuple[str, ...]:
    action, name = words[0].lower(), " ".join(words[1:]).strip()
    if action not in ("add", "remove") or not name:
        raise BadCommandWords(f"Say what to change: {LOREBOOKS_USAGE}")
    book_id = _find(manager, name, attached)
    if action == "add":
        if book_id is None:
            known = ", ".join(sorted(manager.characters.books)) or "none loaded"
            raise BadCommandWords(f"No world book {name!r} (known: {known}).")
        changed = attached if book_id in attached else (*attached, book_id)
    else:
        if book_id is None or book_id not in attached:
            raise BadCommandWords(f"{name!r} is not one of this chat's world books.")
        changed = tuple(b for b in attached if b != book_id)
    await manager.policies.set_chat_lorebooks(caller.key, changed)
    return changed


def _find(manager: ConversationManager, name: str, attached: tuple[str, ...]) -> str | None:
    """The id of the book called ``name`` (id or name, any letter case)."""
    wanted = name.casefold()
    books = manager.characters.books
    for book_id in (*attached, *books):
        book = books.get(book_id)
        if book_id.casefold() == wanted or (book is not None and book.name.casefold() == wanted):
            return book_id
    return None


def _describe(manager: ConversationManager, book_id: str) -> str:
    book = manager.characters.books.get(book_id)
    if book is None:
        return f"{book_id} (not loaded)"
    return book_id if book.name == book_id else f"{book_id} ({book.name})"
