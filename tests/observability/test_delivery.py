"""DeliveryMonitor: unhealthy only when writes keep failing, in number and in time."""

from __future__ import annotations

import pytest

from bot.observability.delivery import DeliveryMonitor, DeliveryMonitors
from bot.settings import ConfigError, Settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_failures_must_last_both_in_number_and_in_time() -> None:
    clock = Clock()
    monitor = DeliveryMonitor("telegram", failures=3, seconds=30, clock=clock)
    for _ in range(5):
        monitor.failed("TimedOut")
    assert await monitor.check() is True  # a burst: many failures, no duration
    clock.now += 29
    monitor.failed("TimedOut")
    assert await monitor.check() is True
    clock.now += 1
    monitor.failed("Pool timeout: All connections in the connection pool are occupied.")
    reason = await monitor.check()
    assert reason == (
        "7 requests in a row failed over 30 s; last: Pool timeout: All connections in the "
        "connection pool are occupied."
    )


async def test_a_slow_trickle_needs_enough_failures() -> None:
    clock = Clock()
    monitor = DeliveryMonitor("discord", failures=3, seconds=10, clock=clock)
    monitor.failed("HTTP 503")
    clock.now += 60
    monitor.failed("HTTP 503")
    assert await monitor.check() is True
    monitor.failed("HTTP 503")
    assert isinstance(await monitor.check(), str)


async def test_one_success_makes_it_healthy_and_starts_a_new_streak() -> None:
    clock = Clock()
    counted: list[str] = []
    monitor = DeliveryMonitor(
        "telegram", failures=2, seconds=5, clock=clock, on_failure=counted.append
    )
    monitor.failed("HTTP 502")
    clock.now += 5
    monitor.failed("HTTP 502")
    assert not monitor.healthy
    monitor.succeeded()
    assert monitor.healthy
    monitor.failed("HTTP 502")  # the old streak's start does not count any more
    clock.now += 1
    monitor.failed("HTTP 502")
    assert monitor.healthy
    assert counted == ["telegram"] * 4


def monitors_from(environ: dict[str, str]) -> DeliveryMonitors:
    return DeliveryMonitors.from_settings(Settings.from_environ(environ).health)


def test_thresholds_come_from_the_environment() -> None:
    monitors = monitors_from(
        {"TROUPE_UNHEALTHY_AFTER_FAILURES": "2", "TROUPE_UNHEALTHY_AFTER_SECONDS": "7.5"}
    )
    monitor = monitors.for_platform("discord")
    assert (monitor.failures, monitor.seconds) == (2, 7.5)
    assert monitors.for_platform("discord") is monitor
    defaults = monitors_from({}).for_platform("telegram")
    assert (defaults.failures, defaults.seconds) == (5, 60.0)
    with pytest.raises(ConfigError, match="TROUPE_UNHEALTHY_AFTER_FAILURES"):
        monitors_from({"TROUPE_UNHEALTHY_AFTER_FAILURES": "0"})
