"""When and how long to wait before trying an M2-her call again (``docs/m2her-api.md`` §6.3)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.llm.errors import M2HerError, RequestTimeout

_RNG = random.Random()


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in tries and in total time.

    Only errors with ``retryable`` set are tried again. A timed-out request may
    already have been billed, so timeouts get at most ``timeout_retries`` extra tries.
    ``max_total`` bounds the time from the first try to the start of the last one.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_total: float = 30.0
    timeout_retries: int = 1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.max_total, self.timeout_retries) < 0:
            raise ValueError("delays, max_total and timeout_retries must not be negative")


class RetryState:
    """The retry bookkeeping of one logical call (all of its attempts)."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.attempt = 1
        self._timeouts = 0
        self._rng = rng or _RNG
        self._clock = clock
        self._started = clock()

    def delay_after(self, error: M2HerError) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up with ``error``.

        A non-``None`` answer counts the next attempt as started.
        """
        policy = self.policy
        if not error.retryable or self.attempt >= policy.max_attempts:
            return None
        is_timeout = isinstance(error, RequestTimeout)
        if is_timeout and self._timeouts >= policy.timeout_retries:
            return None
        ceiling = min(policy.max_delay, policy.base_delay * 2 ** (self.attempt - 1))
        delay = self._rng.uniform(0, ceiling)
        if self._clock() - self._started + delay > policy.max_total:
            return None
        self._timeouts += is_timeout
        self.attempt += 1
        return delay
