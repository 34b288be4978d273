"""The fake model's deterministic replies.

The reply to a request is :data:`REPLY_TEMPLATE` filled with:

* ``character``: the ``name`` of the first ``system`` message, else ``"MiniMax AI"``;
* ``speaker``: the ``name`` of the last ``user`` message, else ``"User"``;
* ``echo``: that message's text with whitespace collapsed, cut to
  :data:`ECHO_CHARS` characters plus ``"…"`` when longer;
* ``count``: the number of messages in the request.

For example ``Aria heard Sam: “Evening! Mind if I dry off?” (a fake M2-her reply, 6
messages in context)``. With ``max_completion_tokens`` too small for the reply it is
cut to fit (by the estimate of :mod:`bot.llm.tokens`) and ``finish_reason`` is
``"length"``.
"""

from __future__ import annotations

from typing import Any

from bot.llm.tokens import estimate_text_tokens

REPLY_TEMPLATE = (
    "{character} heard {speaker}: “{echo}” (a fake M2-her reply, {count} messages in context)"
)
ECHO_CHARS = 60
DEFAULT_CHARACTER = "MiniMax AI"


def character_name(messages: list[dict[str, Any]]) -> str:
    """The name the reply speaks as: the first ``system`` message's ``name``."""
    for message in messages:
        if message.get("role") == "system":
            return str(message.get("name") or DEFAULT_CHARACTER)
    return DEFAULT_CHARACTER


def reply_text(messages: list[dict[str, Any]]) -> str:
    """The deterministic reply to ``messages`` (see the module docstring)."""
    speaker, said = "User", ""
    for message in reversed(messages):
        if message.get("role") == "user":
            speaker = str(message.get("name") or speaker)
            said = str(message.get("content") or "")
            break
    echo = " ".join(said.split())
    if len(echo) > ECHO_CHARS:
        echo = echo[:ECHO_CHARS] + "…"
    return REPLY_TEMPLATE.format(
        character=character_name(messages), speaker=speaker, echo=echo, count=len(messages)
    )


LONG_SENTENCE = "Sentence {n} of the long reply goes on a little further."


def long_text(length: int) -> str:
    """Plain prose of exactly ``length`` characters ending in a full stop, in paragraphs of six
    sentences."""
    text = ""
    n = 0
    while len(text) < length:
        text += LONG_SENTENCE.format(n=n) + ("\n\n" if n % 6 == 5 else " ")
        n += 1
    return text[: length - 1] + "."


def cut_to_tokens(text: str, max_tokens: int | None) -> tuple[str, str]:
    """``text`` cut to at most ``max_tokens`` estimated tokens, and the finish reason."""
    if max_tokens is None or estimate_text_tokens(text) <= max_tokens:
        return text, "stop"
    low, high = 0, len(text)  # the longest prefix that fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_text_tokens(text[:middle]) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return text[:low], "length"
