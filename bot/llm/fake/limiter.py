"""A sliding-window RPM/TPM limiter for the fake server (``docs/m2her-api.md`` §8)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """Admits a request if the last ``window`` seconds stay within ``rpm`` and ``tpm``."""

    def __init__(
        self,
        rpm: int,
        tpm: int,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.window = window
        self._clock = clock
        self._admitted: deque[tuple[float, int]] = deque()
        self._tokens = 0

    def admit(self, tokens: int) -> bool:
        """Count a request of ``tokens`` tokens, unless it would break a limit."""
        now = self._clock()
        admitted = self._admitted
        while admitted and admitted[0][0] <= now - self.window:
            self._tokens -= admitted.popleft()[1]
        if len(admitted) >= self.rpm or self._tokens + tokens > self.tpm:
            return False
        admitted.append((now, tokens))
        self._tokens += tokens
        return True
