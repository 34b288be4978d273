"""A set of loaded characters, looked up by id or by name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping

from bot.characters.lore.book import Lorebook
from bot.characters.schema import Character
from bot.errors import Refusal


class UnknownCharacter(Refusal, KeyError):
    """No character matches the key; the message suggests the closest ones."""

    def __str__(self) -> str:
        # KeyError would show the message in quotes, like a dict key.
        return str(self.args[0]) if self.args else "unknown character"


class CharacterLibrary:
    """Characters by id, sorted by id. Lookups ignore letter case.

    The loader guarantees that no id or name is shared by two characters, so a key
    always finds at most one.
    """

    def __init__(
        self, characters: Iterable[Character], *, books: Mapping[str, Lorebook] | None = None
    ) -> None:
        """``books`` are the world books loaded with the characters, by id."""
        self.books: Mapping[str, Lorebook] = dict(books or {})
        self._by_id = {c.id: c for c in sorted(characters, key=lambda c: c.id)}
        self._by_key: dict[str, Character] = {}
        for character in self._by_id.values():
            self._by_key.setdefault(character.id.casefold(), character)
            self._by_key.setdefault(character.name.casefold(), character)

    def get(self, key: str) -> Character:
        """The character with this id (file name) or name; :class:`UnknownCharacter` if none."""
        found = self._by_key.get(key.strip().casefold())
        if found is not None:
            return found
        close = difflib.get_close_matches(key.casefold(), list(self._by_key), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(k) for k in close)}?" if close else ""
        known = ", ".join(self._by_id) or "none loaded"
        raise UnknownCharacter(f"no character {key!r}{hint} (known: {known})")

    def default(self, preferred: str | None = None, *, keep: str | None = None) -> Character:
        """``preferred`` (the configured one) if given; else ``keep`` (the id of the default
        so far) while it is loaded, so that adding a file never moves it; else the first by id.
        """
        if preferred:
            return self.get(preferred)
        if not self._by_id:
            raise UnknownCharacter("no characters are loaded")
        if keep is not None and keep in self._by_id:
            return self._by_id[keep]
        return next(iter(self._by_id.values()))

    def lorebooks(self, ids: Iterable[str]) -> tuple[Lorebook, ...]:
        """The world books with these ids that are loaded (a book since removed is skipped)."""
        return tuple(self.books[book_id] for book_id in ids if book_id in self.books)

    def ids(self) -> list[str]:
        """Every character id, sorted."""
        return list(self._by_id)

    def __iter__(self) -> Iterator[Character]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.strip().casefold() in self._by_key

    def __repr__(self) -> str:
        return f"CharacterLibrary({self.ids()!r})"
