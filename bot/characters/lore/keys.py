"""Keys, compiled once per book load, and the scan that finds them in a turn's messages.

A book of thousands of entries must not cost thousands of searches per turn. The keys are
indexed once: a plain key by its rarest word (whole-word keys) or its rarest three-character
piece (anywhere-in-a-word keys), rarest among all the book's keys, so "the" anchors nothing
that "Halloran" can; a scan splits its text into words and three-character pieces once, and
only the keys whose anchor is among them are searched for. Regular expressions
(``/pattern/flags`` keys, or every key of a ``use_regex`` entry) are searched one by one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_WORD = re.compile(r"\w+")
#: ``/pattern/flags``: SillyTavern's way of writing a regex key.
_REGEX_KEY = re.compile(r"^/(.+)/([a-z]*)$", re.DOTALL)
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "u": 0, "g": 0}
_GRAM = 3


class BadKey(ValueError):
    """A key that cannot match: an invalid regular expression (it is left out)."""


@dataclass(frozen=True, slots=True)
class Key:
    """One key as written, and how it is searched for."""

    text: str
    case_sensitive: bool
    whole_words: bool
    #: A regex key's expression.
    regex: re.Pattern[str] | None = None
    #: A whole-words key of several words, as an expression.
    words_pattern: re.Pattern[str] | None = None

    @property
    def needle(self) -> str:
        """The text searched for (letter case folded unless case-sensitive)."""
        return self.text if self.case_sensitive else self.text.lower()

    def found_in(self, scan: ScanText) -> bool:
        """Whether this key occurs in ``scan``."""
        if self.regex is not None:
            return self.regex.search(scan.raw) is not None
        if self.words_pattern is not None:
            return self.words_pattern.search(scan.text(self.case_sensitive)) is not None
        if self.whole_words:
            return self.needle in scan.words(self.case_sensitive)
        return self.needle in scan.text(self.case_sensitive)


def compile_key(text: str, *, case_sensitive: bool, whole_words: bool, use_regex: bool) -> Key:
    """``text`` as a :class:`Key`; raises :class:`BadKey` for an invalid regex."""
    text = text.strip()
    written = _REGEX_KEY.match(text)
    if written is None and not use_regex:
        needle = text if case_sensitive else text.lower()
        if whole_words and _WORD.fullmatch(needle) is None:
            flags = 0 if case_sensitive else re.IGNORECASE
            words = re.compile(rf"(?<!\w){re.escape(needle)}(?!\w)", flags)
            return Key(text, case_sensitive, whole_words, words_pattern=words)
        return Key(text, case_sensitive, whole_words)
    pattern, letters = (written.group(1), written.group(2)) if written else (text, "")
    flags = 0 if case_sensitive or written else re.IGNORECASE
    for letter in letters:
        if letter not in _FLAGS:
            raise BadKey(f"unknown regex flag {letter!r} in {text!r}")
        flags |= _FLAGS[letter]
    try:
        return Key(text, case_sensitive, whole_words, re.compile(pattern, flags))
    except re.error as error:
        raise BadKey(f"invalid regular expression {text!r}: {error}") from None


class ScanText:
    """Text to scan, with its lower-case form, words and pieces made once, when first asked."""

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self._lower: str | None = None
        self._words: dict[bool, frozenset[str]] = {}
        self._grams: dict[bool, frozenset[str]] = {}

    def text(self, case_sensitive: bool) -> str:
        """The text, lower-cased unless ``case_sensitive``."""
        if case_sensitive:
            return self.raw
        if self._lower is None:
            self._lower = self.raw.lower()
        return self._lower

    def words(self, case_sensitive: bool) -> frozenset[str]:
        """Every word of the text."""
        found = self._words.get(case_sensitive)
        if found is None:
            found = self._words[case_sensitive] = frozenset(
                _WORD.findall(self.text(case_sensitive))
            )
        return found

    def grams(self, case_sensitive: bool) -> frozenset[str]:
        """Every three-character piece of the text."""
        found = self._grams.get(case_sensitive)
        if found is None:
            text = self.text(case_sensitive)
            found = self._grams[case_sensitive] = frozenset(
                {text[i : i + _GRAM] for i in range(len(text) - _GRAM + 1)}
            )
        return found


class KeyIndex:
    """The keys of many entries, indexed so that a scan looks only at likely ones."""

    def __init__(self) -> None:
        self._keys: list[tuple[int, Key]] = []
        # (case-sensitive, whole-word) -> anchor -> (entry, key) pairs; built when first used.
        self._anchored: dict[tuple[bool, bool], dict[str, list[tuple[int, Key]]]] | None = None
        #: Keys no anchor finds: regexes, and plain keys too short for a three-character piece.
        self._always: list[tuple[int, Key]] = []

    def add(self, entry: int, key: Key) -> None:
        """Index ``key`` of entry number ``entry``."""
        self._keys.append((entry, key))
        self._anchored = None

    def matches(self, scan: ScanText) -> Iterator[tuple[int, Key]]:
        """Every (entry, key) pair whose key occurs in ``scan``."""
        anchored = self._anchored if self._anchored is not None else self.build()
        for (case_sensitive, whole_words), table in anchored.items():
            present = scan.words(case_sensitive) if whole_words else scan.grams(case_sensitive)
            # Looked up from the smaller side: a short message against a big book, or not.
            if len(present) <= len(table):
                anchors = [anchor for anchor in present if anchor in table]
            else:
                anchors = [anchor for anchor in table if anchor in present]
            for anchor in anchors:
                yield from ((e, k) for e, k in table[anchor] if k.found_in(scan))
        yield from ((e, k) for e, k in self._always if k.found_in(scan))

    def build(self) -> dict[tuple[bool, bool], dict[str, list[tuple[int, Key]]]]:
        """Choose every key's anchor (done by the first scan if not before; a book does it
        when it loads, so no turn waits for it)."""
        pieces = {(entry, key): _pieces(key) for entry, key in self._keys}
        # How many keys each piece would anchor: every key takes its rarest.
        counts: dict[str, int] = {}
        for found in pieces.values():
            for piece in found:
                counts[piece] = counts.get(piece, 0) + 1
        anchored: dict[tuple[bool, bool], dict[str, list[tuple[int, Key]]]] = {}
        self._always = []
        for (entry, key), found in pieces.items():
            if not found:
                self._always.append((entry, key))
                continue
            anchor = min(found, key=lambda piece: (counts[piece], piece))
            table = anchored.setdefault((key.case_sensitive, key.whole_words), {})
            table.setdefault(anchor, []).append((entry, key))
        self._anchored = anchored
        return anchored


def _pieces(key: Key) -> set[str]:
    """What may anchor ``key``: its words (whole-word keys) or three-character pieces."""
    if key.regex is not None:
        return set()
    needle = key.needle
    if key.whole_words:
        return set(_WORD.findall(needle))
    return {needle[i : i + _GRAM] for i in range(len(needle) - _GRAM + 1)}


def any_found(keys: Iterable[Key], scan: ScanText) -> Key | None:
    """The first of ``keys`` that occurs in ``scan``."""
    return next((key for key in keys if key.found_in(scan)), None)
