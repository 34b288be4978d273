"""Whether a platform still takes what the bot sends: the delivery half of ``/healthz``.

An adapter tells its platform's :class:`DeliveryMonitor` how each API request ended:
:meth:`~DeliveryMonitor.succeeded` when the platform answered (a refusal such as "the user
blocked the bot" is an answer), :meth:`~DeliveryMonitor.failed` when it could not be reached
or failed itself (a timeout, a refused connection, an exhausted connection pool, a 5xx).
"Slow down" (429) is neither. The monitor is unhealthy once requests have failed
``failures`` times in a row over at least ``seconds``, and healthy again at the next success,
so an orchestrator restarts a process whose platform connection is stuck for good, and a
burst of errors does not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.settings import (
    DEFAULT_UNHEALTHY_AFTER_FAILURES,
    DEFAULT_UNHEALTHY_AFTER_SECONDS,
    HealthSettings,
)

__all__ = ["DeliveryMonitor", "DeliveryMonitors"]

log = logging.getLogger("bot.observability")


class DeliveryMonitor:
    """The outcome of one platform's requests, as a health check.

    ``on_failure`` hears of every failure (the metrics count them); ``clock`` is injectable
    so tests need not wait.
    """

    def __init__(
        self,
        platform: str,
        *,
        failures: int = DEFAULT_UNHEALTHY_AFTER_FAILURES,
        seconds: float = DEFAULT_UNHEALTHY_AFTER_SECONDS,
        on_failure: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.platform = platform
        self._on_failure = on_failure
        self.failures = failures
        self.seconds = seconds
        self._clock = clock
        #: Failures since the last success, and when the first and the last of them happened.
        self._streak = 0
        self._first_failure = 0.0
        self._last_failure = 0.0
        self._last_error = ""

    def succeeded(self) -> None:
        """The platform answered a request."""
        if self._streak >= self.failures:
            log.info("%s: requests get through again", self.platform)
        self._streak = 0

    def failed(self, error: str) -> None:
        """A request did not reach the platform, or the platform failed it; ``error`` says
        how (a short description without secrets: it is shown by ``/healthz``)."""
        now = self._clock()
        if self._streak == 0:
            self._first_failure = now
        self._streak += 1
        self._last_failure = now
        self._last_error = error
        if self._on_failure is not None:
            self._on_failure(self.platform)
        if self._streak == self.failures:
            log.warning("%s: %d requests in a row failed (%s)", self.platform, self._streak, error)

    @property
    def healthy(self) -> bool:
        """False while requests have kept failing, ``failures`` times over ``seconds``."""
        return (
            self._streak < self.failures or self._last_failure - self._first_failure < self.seconds
        )

    async def check(self) -> bool | str:
        """The :data:`~bot.observability.health.HealthCheck` of this platform's delivery."""
        if self.healthy:
            return True
        return (
            f"{self._streak} requests in a row failed over "
            f"{self._last_failure - self._first_failure:.0f} s; last: {self._last_error}"
        )


@dataclass
class DeliveryMonitors:
    """One :class:`DeliveryMonitor` per platform, made on first use with the same thresholds."""

    failures: int = DEFAULT_UNHEALTHY_AFTER_FAILURES
    seconds: float = DEFAULT_UNHEALTHY_AFTER_SECONDS
    #: Told the platform of every failure (e.g. :meth:`Metrics.platform_request_failed`).
    on_failure: Callable[[str], None] | None = None
    _monitors: dict[str, DeliveryMonitor] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls, settings: HealthSettings, *, on_failure: Callable[[str], None] | None = None
    ) -> DeliveryMonitors:
        """Monitors with the thresholds of ``TROUPE_UNHEALTHY_AFTER_FAILURES`` and
        ``TROUPE_UNHEALTHY_AFTER_SECONDS``, telling ``on_failure`` of each failure."""
        return cls(
            failures=settings.unhealthy_after_failures,
            seconds=settings.unhealthy_after_seconds,
            on_failure=on_failure,
        )

    def for_platform(self, platform: str) -> DeliveryMonitor:
        """The monitor of ``platform``."""
        monitor = self._monitors.get(platform)
        if monitor is None:
            monitor = DeliveryMonitor(
                platform, failures=self.failures, seconds=self.seconds, on_failure=self.on_failure
            )
            self._monitors[platform] = monitor
        return monitor
