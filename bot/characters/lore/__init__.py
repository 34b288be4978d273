"""Lorebooks: entries of world knowledge that join a character's request when they come up.

One concept per module:

* :mod:`.spec`: the YAML shape (a character's ``lorebook:``, a world book file);
* :mod:`.formats`: card ``character_book`` and SillyTavern world info read into that shape;
* :mod:`.decorators`: card V3 ``@@decorators`` at the start of an entry's text;
* :mod:`.keys`: keys compiled once per load, and the indexed scan of a turn's messages;
* :mod:`.book`: :class:`Lorebook`, a book ready for turns;
* :mod:`.select`: which entries fire and which fit the budget;
* :mod:`.placement`: where they go in the M2-her request;
* :mod:`.files` and :mod:`.attach`: world book files, and the books each character uses.
"""

from bot.characters.lore.book import Lorebook, LoreEntry, compile_book
from bot.characters.lore.select import Fired, Selection, Turns
from bot.characters.lore.spec import LorebookSpec, LoreEntrySpec

__all__ = [
    "Fired",
    "LoreEntry",
    "LoreEntrySpec",
    "Lorebook",
    "LorebookSpec",
    "Selection",
    "Turns",
    "compile_book",
]
