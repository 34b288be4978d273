"""A cheap, deterministic token estimate shared by the client and the fake server.

M2-her's tokenizer is not public. The estimate counts roughly four ASCII characters
per token and one token per other character (CJK, emoji, accented letters), plus a
small per-message overhead for the role and name. The fake server reports exactly
this figure as ``prompt_tokens``, so code that calibrates against real usage sees a
stable number in tests.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from bot.llm.types import ChatMessage

#: Tokens charged per message for its role, name and separators.
MESSAGE_OVERHEAD = 4


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens in ``text``."""
    ascii_chars = len(text.encode("ascii", "ignore"))
    return -(-ascii_chars // 4) + (len(text) - ascii_chars)


# A conversation's history goes into every turn's prompt again: the same texts recur.
@functools.lru_cache(maxsize=2048)
def estimate_message_tokens(content: str | None, name: str | None = None) -> int:
    """Estimated tokens of one message with this ``content`` and ``name``."""
    return MESSAGE_OVERHEAD + estimate_text_tokens(content or "") + estimate_text_tokens(name or "")


def estimate_prompt_tokens(messages: Iterable[ChatMessage]) -> int:
    """Estimated prompt tokens of a whole request."""
    return sum(estimate_message_tokens(m.content, m.name) for m in messages)
