"""Where fired entries go in the M2-her request, with its native roles.

* ``before_char`` / ``after_char`` entries are the author's own text about the character and
  its world: they go into the ``system`` message, before the description and after the
  scenario (the ``rules`` stay last);
* ``depth`` entries become messages inside the history, ``depth`` messages up from the newest
  (0: after it; deeper than the history: before its oldest message), with their role
  (``system`` unless the entry says ``user`` or ``assistant``). Entries at the same depth with
  the same role share one message.

In each place entries go in ``insertion_order``, lowest first. Lore text is the writer's, never
a user's, so the ``system`` message still holds no user text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.characters.lore.select import Fired
from bot.characters.lore.spec import Position
from bot.llm.types import ChatMessage, Role

_ROLES = {"system": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT}


@dataclass(frozen=True, slots=True)
class Placed:
    """Fired entries sorted into their places."""

    before: str
    after: str
    #: (depth, message), deepest first.
    at_depth: tuple[tuple[int, ChatMessage], ...]


def place(kept: Sequence[Fired], character_name: str) -> Placed:
    """Sort ``kept`` into the ``system`` message's two places and the history's depths."""
    # Stable: between books with equal orders, ``kept``'s own order stands.
    ordered = sorted(kept, key=lambda f: f.entry.insertion_order)
    before = [f.text for f in ordered if f.entry.position is Position.BEFORE_CHAR]
    after = [f.text for f in ordered if f.entry.position is Position.AFTER_CHAR]
    groups: dict[tuple[int, str], list[str]] = {}
    for found in ordered:
        if found.entry.position is Position.DEPTH:
            groups.setdefault((found.entry.depth, found.entry.role), []).append(found.text)
    at_depth = [
        (
            depth,
            ChatMessage(
                _ROLES[role],
                "\n".join(texts),
                name=character_name if role == "assistant" else None,
            ),
        )
        for (depth, role), texts in groups.items()
    ]
    at_depth.sort(key=lambda item: -item[0])
    return Placed("\n".join(before), "\n".join(after), tuple(at_depth))


def insert_at_depth(
    history: Sequence[ChatMessage], at_depth: Sequence[tuple[int, ChatMessage]]
) -> list[ChatMessage]:
    """``history`` with each depth message ``depth`` messages up from its end (``at_depth``
    deepest first, as :func:`place` gives it)."""
    merged = list(history)
    # Each place is at or below the ones before it, so it moves down by those inserted.
    for inserted, (depth, message) in enumerate(at_depth):
        merged.insert(max(len(history) - depth, 0) + inserted, message)
    return merged
