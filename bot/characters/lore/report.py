"""What the lore did in one request, in words (``troupe preview``)."""

from __future__ import annotations

from bot.characters.lore.select import Fired, Selection
from bot.characters.lore.spec import Position


def describe_lore(selection: Selection) -> str:
    """Which entries were sent and why, and which were cut for budget, one line each."""
    if not selection.kept and not selection.cut:
        return "troupe: lorebooks: no entry fired."
    lines = [f"troupe: lorebook entries sent: {len(selection.kept)}"]
    lines += [f"  + {_line(found)}" for found in selection.kept]
    if selection.cut:
        lines.append(f"troupe: cut for the lore budget: {len(selection.cut)}")
        lines += [f"  - {_line(found)}" for found in selection.cut]
    return "\n".join(lines)


def _line(found: Fired) -> str:
    entry = found.entry
    where = str(entry.position)
    if entry.position is Position.DEPTH:
        where = f"depth {entry.depth}, {entry.role}"
    return f"{entry.label!r} [{entry.book}]: {found.reason} ({where}, {found.tokens} tokens)"
