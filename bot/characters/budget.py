"""The token budget a prompt must fit in, and trimming history to it.

M2-her's window (65,536 tokens) holds the prompt *and* the reply, so the reply's
``max_completion_tokens`` is reserved first, then a safety margin for estimation
error; the rest is for the prompt. The character's own messages always stay; history
is dropped oldest first, a whole message at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.characters.tokens import TokenEstimator
from bot.llm.types import CONTEXT_WINDOW, MAX_COMPLETION_TOKENS, ChatMessage


@dataclass(frozen=True, slots=True)
class Budget:
    """Token limits for one request.

    ``max_completion_tokens`` is what is reserved (and requested) for the reply when
    the character sets no ``generation.max_completion_tokens`` of its own.
    """

    context_window: int = CONTEXT_WINDOW
    max_completion_tokens: int = MAX_COMPLETION_TOKENS
    safety_margin: int = 1024

    def __post_init__(self) -> None:
        if not 1 <= self.max_completion_tokens <= MAX_COMPLETION_TOKENS:
            raise ValueError(f"max_completion_tokens must be in 1..{MAX_COMPLETION_TOKENS}")
        if self.safety_margin < 0:
            raise ValueError("safety_margin must not be negative")
        if self.prompt_limit() <= 0:
            raise ValueError("context_window leaves no room for a prompt")

    def prompt_limit(self, completion_tokens: int | None = None) -> int:
        """Tokens left for the prompt when ``completion_tokens`` are reserved for the reply."""
        reserved = completion_tokens or self.max_completion_tokens
        return self.context_window - reserved - self.safety_margin


class PromptTooLong(ValueError):
    """Even the newest message (or the character alone) does not fit the budget.

    The conversation manager answers this like M2-her's "context too long" error.
    """

    user_message = "That is too long for the character to read; please send something shorter."

    def __init__(self, message: str, *, needed: int, limit: int) -> None:
        super().__init__(f"{message} (about {needed} tokens, limit {limit})")
        self.needed = needed
        self.limit = limit


def fit_newest(
    newest_first: Iterable[ChatMessage], available: int, estimator: TokenEstimator
) -> tuple[list[ChatMessage], int]:
    """The newest messages that fit in ``available`` tokens (oldest first), and their total.

    Counting stops at the first message that does not fit, so the kept messages are
    always a contiguous, most recent run (an old short message never jumps the queue)
    and older messages are never even looked at.
    """
    kept: list[ChatMessage] = []
    used = 0
    for message in newest_first:
        cost = estimator.estimate_message(message)
        if used + cost > available:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    return kept, used
