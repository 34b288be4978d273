"""Keys, compiled once per book load, and the scan that finds them in a turn's messages.

A book of thousands of entries must not cost thousands of searches per turn. The keys are
indexed once: a plain key by its first word (whole-word keys) or its first three characters
(anywhere-in-a-word keys); a scan splits its text into words and three-character pieces once,
and only the keys whose anchor is among them are searched for. Regular expressions
(``/pattern/flags`` keys, or every key of a ``use_regex`` entry) are searched one by one.
"""

from __future__ import annotations

import functools
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
    regex: re.Pattern[str] | None = None

    @property
    def needle(self) -> str:
        """The text searched for (letter case folded unless case-sensitive)."""
        return self.text if self.case_sensitive else self.text.lower()

    def found_in(self, scan: ScanText) -> bool:
        """Whether this key occurs in ``scan``."""
        if self.regex is not None:
            return self.regex.search(scan.raw) is not None
        if self.whole_words:
            if _is_word(self.needle):
                return self.needle in scan.words(self.case_sensitive)
            pattern = _word_pattern(self.needle, self.case_sensitive)
            return pattern.search(scan.text(self.case_sensitive)) is not None
        return self.needle in scan.text(self.case_sensitive)


def compile_key(text: str, *, case_sensitive: bool, whole_words: bool, use_regex: bool) -> Key:
    """``text`` as a :class:`Key`; raises :class:`BadKey` for an invalid regex."""
    text = text.strip()
    written = _REGEX_KEY.match(text)
    if written is None and not use_regex:
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


@functools.lru_cache(maxsize=4096)
def _is_word(needle: str) -> bool:
    return _WORD.fullmatch(needle) is not None


@functools.lru_cache(maxsize=4096)
def _word_pattern(needle: str, case_sensitive: bool) -> re.Pattern[str]:
    """A multi-word key as whole words."""
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.compile(rf"(?<!\w){re.escape(needle)}(?!\w)", flags)


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
                text[i : i + _GRAM] for i in range(len(text) - _GRAM + 1)
            )
        return found


class KeyIndex:
    """The keys of many entries, indexed so that a scan looks only at likely ones."""

    def __init__(self) -> None:
        # (case-sensitive, whole-word) -> anchor -> (entry, key) pairs.
        self._anchored: dict[tuple[bool, bool], dict[str, list[tuple[int, Key]]]] = {}
        #: Keys no anchor finds: regexes, and plain keys too short for a three-character piece.
        self._always: list[tuple[int, Key]] = []

    def add(self, entry: int, key: Key) -> None:
        """Index ``key`` of entry number ``entry``."""
        needle = key.needle
        if key.regex is not None or not needle:
            self._always.append((entry, key))
            return
        if key.whole_words:
            words = _WORD.findall(needle)
            anchor = words[0] if words and needle.startswith(words[0]) else None
        else:
            anchor = needle[:_GRAM] if len(needle) >= _GRAM else None
        if anchor is None:
            self._always.append((entry, key))
            return
        table = self._anchored.setdefault((key.case_sensitive, key.whole_words), {})
        table.setdefault(anchor, []).append((entry, key))

    def matches(self, scan: ScanText) -> Iterator[tuple[int, Key]]:
        """Every (entry, key) pair whose key occurs in ``scan``."""
        for (case_sensitive, whole_words), table in self._anchored.items():
            present = scan.words(case_sensitive) if whole_words else scan.grams(case_sensitive)
            # Looked up from the smaller side: a short message against a big book, or not.
            if len(present) <= len(table):
                anchors = [anchor for anchor in present if anchor in table]
            else:
                anchors = [anchor for anchor in table if anchor in present]
            for anchor in anchors:
                yield from ((e, k) for e, k in table[anchor] if k.found_in(scan))
        yield from ((e, k) for e, k in self._always if k.found_in(scan))


def any_found(keys: Iterable[Key], scan: ScanText) -> Key | None:
    """The first of ``keys`` that occurs in ``scan``."""
    return next((key for key in keys if key.found_in(scan)), None)
