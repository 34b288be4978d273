"""Estimating a prompt's tokens, calibrated against what M2-her reports.

M2-her's tokenizer is not public. The base figure is the shared heuristic of
:mod:`bot.llm.tokens` (about four ASCII characters per token, one per other character,
plus a little per message). Every response reports the real ``prompt_tokens``; feeding
those to :meth:`TokenEstimator.observe` moves a correction factor towards the observed
ratio, smoothed so one odd response cannot swing it and bounded so it stays sane.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bot.llm.tokens import estimate_message_tokens
from bot.llm.types import ChatMessage


class TokenEstimator:
    """Characters → tokens estimate with a correction factor learnt from real usage.

    ``smoothing`` is the weight of each new observation (an exponential moving
    average); the factor always stays within ``[min_factor, max_factor]``.
    """

    def __init__(
        self,
        *,
        factor: float = 1.0,
        smoothing: float = 0.2,
        min_factor: float = 0.5,
        max_factor: float = 3.0,
    ) -> None:
        if not 0 < min_factor <= max_factor:
            raise ValueError("need 0 < min_factor <= max_factor")
        if not 0 < smoothing <= 1:
            raise ValueError("smoothing must be in (0, 1]")
        self._min = min_factor
        self._max = max_factor
        self._smoothing = smoothing
        self._factor = self._clamp(factor)
        self.observations = 0

    @property
    def factor(self) -> float:
        """The current correction applied to the base estimate."""
        return self._factor

    def estimate_message(self, message: ChatMessage) -> int:
        """Estimated tokens of one message (role, name and content)."""
        return math.ceil(_base(message) * self._factor)

    def estimate(self, messages: Sequence[ChatMessage]) -> int:
        """Estimated tokens of a request's messages (the sum of the per-message figures)."""
        return sum(self.estimate_message(message) for message in messages)

    def observe(self, messages: Sequence[ChatMessage], prompt_tokens: int) -> None:
        """Calibrate from a response that reported ``prompt_tokens`` for ``messages``."""
        base = sum(_base(message) for message in messages)
        if base <= 0 or prompt_tokens <= 0:
            return  # nothing to learn from (e.g. a stream that reported no usage)
        ratio = self._clamp(prompt_tokens / base)
        self._factor = self._clamp(self._factor + self._smoothing * (ratio - self._factor))
        self.observations += 1

    def _clamp(self, value: float) -> float:
        return min(self._max, max(self._min, value))

    def __repr__(self) -> str:
        return f"TokenEstimator(factor={self._factor:.3f}, observations={self.observations})"


def _base(message: ChatMessage) -> int:
    return estimate_message_tokens(message.content, message.name)
