"""The folded form of a request: M2-her's advanced roles written into the ``system`` message.

Some M2-her deployments refuse any request holding ``user_system``, ``group`` or
``sample_message_*`` (``docs/m2her-api.md`` §3.6). For them the same information goes into the
``system`` message instead, after the character's own text, in this layout
(``docs/design.md``, "The folded form")::

    <the character: description, personality, scenario, rules>

    [User persona: Sam]
    A moth expert, soaked from the rain.

    [Scene: The Lantern]
    A small tavern at the edge of town.

    [Example dialogue]
    Sam: Is it always this quiet?
    Aria: Only until the fishermen come in.

Each section keeps its message's order; consecutive example messages share one
``[Example dialogue]`` block, one ``name: text`` line each. Every other message is kept as
it was, so the history still carries each speaker's own ``name``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.llm.roles import ADVANCED_ROLES
from bot.llm.types import ChatMessage, Role

__all__ = ["fold_advanced_roles"]

_EXAMPLES = frozenset({Role.SAMPLE_MESSAGE_USER, Role.SAMPLE_MESSAGE_AI})
#: Who an example line is said by when its message has no name.
_UNNAMED_SPEAKER = {Role.SAMPLE_MESSAGE_USER: "User", Role.SAMPLE_MESSAGE_AI: "Character"}


def fold_advanced_roles(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """``messages`` with every advanced-role message folded into the first ``system`` one
    (made, unnamed, when there is none); the other messages unchanged and in order."""
    advanced = [message for message in messages if message.role in ADVANCED_ROLES]
    if not advanced:
        return list(messages)
    kept = [message for message in messages if message.role not in ADVANCED_ROLES]
    at = next((i for i, m in enumerate(kept) if m.role == Role.SYSTEM), None)
    system = kept[at] if at is not None else ChatMessage(Role.SYSTEM, None)
    text = "\n\n".join(filter(None, [(system.content or "").strip(), *_sections(advanced)]))
    folded = system._replace(content=text)
    if at is None:
        return [folded, *kept]
    kept[at] = folded
    return kept


def _sections(messages: Iterable[ChatMessage]) -> Iterable[str]:
    examples: list[str] = []
    for message in messages:
        content = (message.content or "").strip()
        if message.role in _EXAMPLES:
            speaker = message.name or _UNNAMED_SPEAKER[message.role]
            examples.append(f"{speaker}: {content}")
            continue
        if examples:
            yield "\n".join(["[Example dialogue]", *examples])
            examples = []
        title = "User persona" if message.role == Role.USER_SYSTEM else "Scene"
        heading = f"[{title}: {message.name}]" if message.name else f"[{title}]"
        # A scene sent by name alone (M2-her wants content) needs no body repeating it.
        yield heading if content in ("", message.name) else f"{heading}\n{content}"
    if examples:
        yield "\n".join(["[Example dialogue]", *examples])
