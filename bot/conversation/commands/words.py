"""Counts in words: ``1 message``, ``2 messages``."""

from __future__ import annotations


def count(number: int, singular: str, plural: str | None = None) -> str:
    """``number`` and the noun in the right number, with thousands separators."""
    noun = singular if number == 1 else plural or singular + "s"
    return f"{number:,} {noun}"
