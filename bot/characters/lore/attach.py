"""The books each character uses: its own, and the world books it names.

Run by the loader after a character file validated: a broken book, or a world book that is
missing or broken, is a problem of the file that uses it (so live reload keeps its last good
version); bad regex keys and unsupported decorators are warnings.
"""

from __future__ import annotations

from pathlib import Path

from bot.characters.cards.files import is_card_path
from bot.characters.lore.book import Lorebook, compile_book
from bot.characters.lore.files import FOLDER, WorldBooks, remarks_at
from bot.characters.lore.formats import read_book_data
from bot.characters.schema import Character
from bot.yamlcheck import FileProblem
from bot.yamlsource import YamlDocument


def attach_books(
    character: Character, document: YamlDocument, world: WorldBooks
) -> tuple[list[FileProblem], list[FileProblem]]:
    """Give ``character`` its books (:meth:`Character.attach_lorebooks`); returns the
    problems and the warnings found in them."""
    path = character.source_path or Path("?")
    problems: list[FileProblem] = []
    warnings: list[FileProblem] = []
    books: list[Lorebook] = []
    if character.lorebook is not None:
        book, remarks = compile_book(character.lorebook, character.id)
        books.append(book)
        warnings += remarks_at(path, remarks, document, ("lorebook",))
    card_book = character.card.get("character_book")
    if card_book is not None:
        # In a card file the book is at data.character_book (no lines); in YAML, under card:.
        in_card = is_card_path(path)
        prefix = ("data", "character_book") if in_card else ("card", "character_book")
        reading = read_book_data(card_book, f"{character.id} (card)")
        lines = None if in_card else document
        problems += remarks_at(path, reading.problems, lines, prefix)
        warnings += remarks_at(path, reading.warnings, lines, prefix)
        if reading.book is not None:
            books.append(reading.book)
    for number, book_id in enumerate(character.world_books):
        found = world.books.get(book_id)
        if found is not None:
            books.append(found)
            continue
        where = ("world_books", number)
        if book_id in world.files:
            message = f"world book {book_id!r} has problems (see {world.files[book_id]})"
        else:
            known = ", ".join(sorted(world.files)) or "none"
            message = f"no world book {book_id!r} in {path.parent / FOLDER} (known: {known})"
        problems.append(
            FileProblem(path, document.line_of(where), f"world_books[{number}]", message)
        )
    character.attach_lorebooks(tuple(books))
    return problems, warnings
