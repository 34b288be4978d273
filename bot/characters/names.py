"""Display names as safe data for M2-her's ``name`` field.

A display name comes from a platform and can hold anything: newlines, control or
bidi-override characters, a thousand characters, or words like ``system``. The role of
a message comes only from the request's structure, so a name needs no escaping, only
tidying: control characters become spaces, invisible formatting characters go, emoji and
other symbols go (M2-her's guide asks for plain, distinct names; an emoji-only name keeps its
emoji, so that it stays distinct), runs of whitespace collapse, and the length is capped. A
name that is empty afterwards gets a fallback. The same name always gives the same result, so
a speaker's ``name`` is stable from turn to turn.
"""

from __future__ import annotations

import functools
import unicodedata

#: Longest display name sent to M2-her.
MAX_DISPLAY_NAME = 64


@functools.lru_cache(maxsize=4096)  # the same few names recur on every turn
def sanitize_name(name: str, *, fallback: str = "User") -> str:
    """A one-line, printable, at most :data:`MAX_DISPLAY_NAME`-character version of ``name``."""
    if name.isascii() and name.isprintable() and "  " not in name:
        cleaned = name.strip()  # fast path: plain names need no per-character work
    else:
        tidied = [_tidy(ch) for ch in name]
        plain = " ".join("".join(ch for ch in tidied if not _is_decoration(ch)).split())
        cleaned = plain or " ".join("".join(tidied).split())
    cleaned = cleaned[:MAX_DISPLAY_NAME].rstrip()
    return cleaned or fallback


def _tidy(ch: str) -> str:
    category = unicodedata.category(ch)
    if category == "Cf":
        return ""  # zero-width and bidi controls: invisible, so dropped
    if category[0] in "CZ":
        return " "  # newlines, tabs, other controls and odd spaces separate words
    return ch


def _is_decoration(ch: str) -> bool:
    """Emoji and symbols (``So``), skin-tone modifiers, variation selectors, the keycap mark."""
    if not ch:
        return False
    category = unicodedata.category(ch)
    return (
        category == "So"
        or "\U0001f3fb" <= ch <= "\U0001f3ff"
        or "\ufe00" <= ch <= "\ufe0f"
        or ch == "\u20e3"
    )
