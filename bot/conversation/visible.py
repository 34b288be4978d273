"""Whether a text shows anything at all: a message that shows nothing is no turn."""

from __future__ import annotations

import unicodedata

#: Unicode categories that show nothing by themselves: separators (spaces, line and
#: paragraph separators), controls, and format characters (zero-width space and joiners,
#: direction marks, the soft hyphen, the byte-order mark).
_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


def has_visible_text(text: str) -> bool:
    """Whether ``text`` has at least one character that shows."""
    category = unicodedata.category
    return any(category(character) not in _INVISIBLE for character in text)
