"""``{{char}}`` / ``{{user}}`` templates, as in SillyTavern character cards.

Both spellings SillyTavern understands work, in any letter case: ``{{char}}`` and
``<BOT>`` become the character's name, ``{{user}}`` and ``<USER>`` the name of the person
talking to it. Anything else in braces is left alone, so text written for other tools
passes through unchanged.
"""

from __future__ import annotations

import functools
import re

_PLACEHOLDER = re.compile(r"\{\{\s*(char|user)\s*\}\}|<(bot|user)>", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def render(text: str, *, char: str, user: str) -> str:
    """Fill the templates in ``text`` with the character's and the user's names.

    Remembered: every turn renders the same persona sections for the same names.
    """
    if "{" not in text and "<" not in text:
        return text  # the common case: nothing to fill

    def fill(match: re.Match[str]) -> str:
        which = (match.group(1) or match.group(2)).lower()
        return user if which == "user" else char

    return _PLACEHOLDER.sub(fill, text)
