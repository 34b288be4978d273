"""The YAML shape of a lorebook: a character's ``lorebook:`` field and a world book file.

Field names follow the card's ``character_book`` (spec V2/V3) where they can, and
SillyTavern's entry settings in snake case where the card has none (``selective_logic``,
``match_whole_words``, ``depth``, ``role``, ``scan_depth``). Card and SillyTavern formats are
turned into this shape first (:mod:`bot.characters.lore.formats`), so that one model checks all.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Messages scanned for keys when a book says nothing (SillyTavern's default).
DEFAULT_SCAN_DEPTH = 2
#: Where a depth entry goes when it names no depth (SillyTavern's default).
DEFAULT_DEPTH = 4


class SelectiveLogic(StrEnum):
    """How ``secondary_keys`` combine with a matched primary key (SillyTavern's four)."""

    AND_ANY = "and_any"
    AND_ALL = "and_all"
    NOT_ANY = "not_any"
    NOT_ALL = "not_all"


class Position(StrEnum):
    """Where an entry's text goes: in the ``system`` message, or into the history."""

    BEFORE_CHAR = "before_char"
    AFTER_CHAR = "after_char"
    DEPTH = "depth"


#: The M2-her role a depth entry is sent with.
LoreRole = Literal["system", "user", "assistant"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class LoreEntrySpec(_Strict):
    """One lorebook entry: text that joins the request when its keys are mentioned."""

    content: str
    """The text sent to the model; may start with ``@@decorator`` lines (card V3)."""
    keys: list[str] = []
    """Any of these in the recent messages fires the entry; ``/pattern/flags`` is a regex."""
    secondary_keys: list[str] = []
    """Optional filter checked after a key matched, as ``selective_logic`` says."""
    selective_logic: SelectiveLogic = SelectiveLogic.AND_ANY
    """and_any, and_all, not_any or not_all of the secondary keys."""
    name: str = ""
    """A label for people (``troupe preview``); never sent."""
    comment: str = ""
    """A note for people; never sent."""
    constant: bool = False
    """Always fires, keys or not."""
    enabled: bool = True
    """A disabled entry never fires."""
    insertion_order: int = 100
    """Lower goes first in the request; with no ``priority``, lower is cut first."""
    priority: int | None = None
    """Over the lore budget, the lowest priority is cut first."""
    case_sensitive: bool = False
    """Keys match only in the same letter case."""
    match_whole_words: bool = False
    """Keys match only as whole words (``cat`` not in ``concatenate``)."""
    use_regex: bool = False
    """Every key is a regular expression (card V3), not only ``/…/`` ones."""
    position: Position = Position.BEFORE_CHAR
    """before_char / after_char (in ``system``) or depth (a message in the history)."""
    depth: int = Field(default=DEFAULT_DEPTH, ge=0, le=1000)
    """With ``position: depth``: how many messages from the newest (0: after it)."""
    role: LoreRole = "system"
    """With ``position: depth``: the message's role."""
    scan_depth: int | None = Field(default=None, ge=0, le=1000)
    """This entry's own scan depth, instead of the book's."""
    prevent_recursion: bool = False
    """This entry's text never fires other entries."""
    exclude_recursion: bool = False
    """This entry is fired only by the messages, never by other entries' text."""


class LorebookSpec(_Strict):
    """A lorebook: its entries and how they are scanned and budgeted."""

    name: str = ""
    """The book's name, for people."""
    description: str = ""
    """A note for people; never sent."""
    scan_depth: int = Field(default=DEFAULT_SCAN_DEPTH, ge=0, le=1000)
    """How many of the newest messages are scanned for keys."""
    token_budget: int | None = Field(default=None, ge=1)
    """Most tokens this book's entries may take in one request."""
    recursive_scanning: bool = False
    """Fired entries' text may fire other entries (a few rounds at most)."""
    entries: list[LoreEntrySpec] = []
    """The entries."""
