"""A card's ``mes_example`` text and Troupe's list of example exchanges.

A card writes its examples as one text: blocks opened by ``<START>``, each line of a block
starting with ``{{user}}:`` or ``{{char}}:`` (or ``<USER>:``, ``<BOT>:``, the character's name).
"""

from __future__ import annotations

import re

START = "<START>"
_BLOCK = re.compile(r"^\s*<start>\s*$", re.IGNORECASE | re.MULTILINE)


def parse_examples(text: str, *, char: str) -> list[dict[str, str]]:
    """The ``{user, ai}`` exchanges in ``text``; lines no speaker opens are left out."""
    speaker = re.compile(
        r"^(\{\{user\}\}|<user>|\{\{char\}\}|<bot>|" + re.escape(char) + r"):[ \t]?",
        re.IGNORECASE,
    )
    exchanges: list[dict[str, str]] = []
    for block in _BLOCK.split(text):
        turns: list[tuple[str, list[str]]] = []
        for line in block.split("\n"):
            opened = speaker.match(line)
            if opened:
                role = "user" if opened.group(1).lower() in ("{{user}}", "<user>") else "ai"
                turns.append((role, [line[opened.end() :]]))
            elif turns:
                turns[-1][1].append(line)
        current: dict[str, str] | None = None
        for role, lines in turns:
            if role == "user" or current is None or current["ai"]:
                current = {"user": "", "ai": ""}
                exchanges.append(current)
            current[role] = "\n".join(lines).strip()
    return exchanges


def format_examples(exchanges: list[tuple[str, str]]) -> str:
    """``mes_example`` text for ``(user, ai)`` exchanges: one ``<START>`` block each."""
    blocks = []
    for user, ai in exchanges:
        lines = [START]
        if user:
            lines.append(f"{{{{user}}}}: {user}")
        if ai:
            lines.append(f"{{{{char}}}}: {ai}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def examples_text(exchanges: list[tuple[str, str]], original: object, *, char: str) -> str:
    """The ``mes_example`` to export: the card's ``original`` text while it still says the same
    as ``exchanges`` (its layout is kept), else the exchanges written anew."""
    if isinstance(original, str):
        parsed = [(e["user"], e["ai"]) for e in parse_examples(original, char=char)]
        if parsed == exchanges:
            return original
    return format_examples(exchanges)
