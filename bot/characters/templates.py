"""Template macros, as in SillyTavern character cards.

Spellings SillyTavern understands work, in any letter case:

* ``{{char}}`` and ``<BOT>`` become the character's name, ``{{user}}`` and ``<USER>`` the name
  of the person talking to it;
* ``{{random:a,b,c}}`` (or ``{{random::a::b::c}}``) is one of the choices, drawn afresh each
  time the text is filled (each turn);
* ``{{pick:a,b,c}}`` (or ``{{pick::a::b}}``) is one of the choices too, but always the same one
  for the same character, person and text: a persona that says ``{{pick:red,green}} hair``
  keeps its hair colour for the whole conversation (SillyTavern keeps it per chat);
* ``{{roll:2d6+1}}`` (or ``{{roll:20}}``, a ``d20``) is a dice roll;
* ``{{// a note}}`` is a comment for the writer, and disappears.

Anything else in braces is left alone, so text written for other tools passes through
unchanged. Randomness comes from a :class:`random.Random` that tests may pass in.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re

_PLACEHOLDER = re.compile(
    r"\{\{\s*(char|user)\s*\}\}|<(bot|user)>"
    r"|\{\{\s*(random|pick)\s*:(:?)(.*?)\}\}"
    r"|\{\{\s*roll\s*:\s*(?:(\d*)\s*d\s*)?(\d+)\s*(?:([+-])\s*(\d+))?\s*\}\}"
    r"|\{\{//.*?\}\}",
    re.IGNORECASE | re.DOTALL,
)
_DRAWN = re.compile(r"\{\{\s*(random|roll)\s*:", re.IGNORECASE)
#: Bounds that keep a roll cheap whatever a card asks for.
_MAX_DICE = 100
_MAX_SIDES = 1_000_000

_shared_random = random.Random()


def render(text: str, *, char: str, user: str, rng: random.Random | None = None) -> str:
    """Fill the macros in ``text`` for the character ``char`` talking to ``user``.

    ``rng`` draws ``{{random}}`` and ``{{roll}}`` (a shared generator by default).
    """
    if "{" not in text and "<" not in text:
        return text  # the common case: nothing to fill
    if _DRAWN.search(text) is None:
        return _render_fixed(text, char, user)
    return _fill(text, char, user, rng or _shared_random)


@functools.lru_cache(maxsize=1024)
def _render_fixed(text: str, char: str, user: str) -> str:
    # Remembered: every turn renders the same persona sections for the same names.
    return _fill(text, char, user, _shared_random)


def _fill(text: str, char: str, user: str, rng: random.Random) -> str:
    picks = 0

    def fill(match: re.Match[str]) -> str:
        nonlocal picks
        name = (match.group(1) or match.group(2) or "").lower()
        if name:
            return user if name == "user" else char
        kind = (match.group(3) or "").lower()
        if kind:
            choices = _choices(match.group(5), double_colon=bool(match.group(4)))
            if kind == "random":
                return rng.choice(choices)
            picks += 1
            return choices[_stable_index(text, char, user, picks, len(choices))]
        if match.group(7):
            return str(_roll(match, rng))
        return ""  # a {{// comment}}

    return _PLACEHOLDER.sub(fill, text)


def _choices(body: str, *, double_colon: bool) -> list[str]:
    if double_colon:
        return body.split("::")
    # "\," is a comma inside a choice, as in SillyTavern.
    return [part.replace("\0", ",") for part in body.replace("\\,", "\0").split(",")]


def _stable_index(text: str, char: str, user: str, occurrence: int, count: int) -> int:
    key = "\n".join((char.casefold(), user.casefold(), text, str(occurrence)))
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def _roll(match: re.Match[str], rng: random.Random) -> int:
    dice = min(int(match.group(6) or 1), _MAX_DICE)
    sides = min(int(match.group(7)), _MAX_SIDES)
    total = sum(rng.randint(1, sides) for _ in range(dice)) if sides else 0
    if match.group(8):
        modifier = int(match.group(9))
        total += modifier if match.group(8) == "+" else -modifier
    return total
