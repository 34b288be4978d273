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
from bot.llm.tokens import estimate_message_tokens
from bot.llm.types import CONTEXT_WINDOW, MAX_COMPLETION_TOKENS, ChatMessage

#: The newest message a character must always have room for: a few lines (256 characters,
#: at the estimate's worst of a token per character). Only a longer one may be refused as
#: too long, and then it is the message that is.
NEWEST_MESSAGE_TOKENS = estimate_message_tokens("\u00e9" * 256)


@dataclass(frozen=True, slots=True)
class Budget:
    """Token limits for one request.

    ``max_completion_tokens`` is what is reserved (and requested) for the reply when
    the character sets no ``generation.max_completion_tokens`` of its own.
    """

    context_window: int = CONTEXT_WINDOW
    max_completion_tokens: int = MAX_COMPLETION_TOKENS
    safety_margin: int = 1024
    #: Most tokens lorebook entries may take in one request (all books together); ``None``:
    #: an eighth of the window.
    lore_tokens: int | None = None

    @property
    def lore_limit(self) -> int:
        """The lore budget in tokens."""
        return self.context_window // 8 if self.lore_tokens is None else self.lore_tokens

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

    def fixed_part_verdict(self, fixed_tokens: int, completion_tokens: int | None = None) -> str:
        """What a character's fixed part of ``fixed_tokens`` leaves: ``"error"`` when the reply
        and the newest message no longer fit beside it, ``"warning"`` past a quarter of the
        window (little history fits, and M2-her may count more than the estimate), else ``"ok"``.
        """
        if fixed_tokens + NEWEST_MESSAGE_TOKENS > self.prompt_limit(completion_tokens):
            return "error"
        if fixed_tokens > self.context_window // 4:
            return "warning"
        return "ok"


class PromptTooLong(ValueError):
    """Even the newest message (or the character alone) does not fit the budget.

    The conversation manager answers this like M2-her's "context too long" error.
    """

    user_message = "That is too long for the character to read; please send something shorter."

    def __init__(self, message: str, *, needed: int, limit: int) -> None:
        super().__init__(f"{message} (about {needed} tokens, limit {limit})")
        self.needed = needed
        self.limit = limit


class CharacterTooLong(PromptTooLong):
    """The character's own part leaves no room: no user message is to blame.

    ``troupe check`` and loading refuse such a character; this is only reached when M2-her's
    counts (which calibrate the estimate) turn out higher than the check assumed.
    """

    user_message = (
        "This character's description is too long for the model to answer right now; "
        "the bot's owner needs to shorten it."
    )


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
