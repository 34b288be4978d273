"""Helpers of the nudge tests: a clock the test moves, and waiting for the scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot.conversation.manager import ConversationManager


class Clock:
    """The engine's clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def ahead(hour: int, minute: int = 0, *, month_day: tuple[int, int] | None = None) -> Clock:
    """A clock at ``hour:minute`` UTC on a day after every stored timestamp (messages are
    stored with the real time; the rules only need the clock to be later)."""
    day = datetime.now(UTC) + timedelta(days=2)
    if month_day is not None:
        day = day.replace(year=day.year + 1, month=month_day[0], day=month_day[1])
    return Clock(day.replace(hour=hour, minute=minute, second=0, microsecond=0))


async def settle(manager: ConversationManager) -> None:
    """Wake the scheduler and wait until it made a whole pass since, and sends nothing.

    Twice: the first pass seen may have begun before the clock moved."""
    scheduler = manager.nudges
    for _ in range(2):
        before = scheduler.passes
        scheduler.wake()
        await until(lambda: scheduler.passes > before)  # noqa: B023 (awaited at once)
    await until(lambda: not scheduler.sending)


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until ``check`` holds."""
    async with asyncio.timeout(seconds):
        while True:
            if check():
                return
            await asyncio.sleep(0.005)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    """Wait until the async ``check`` holds."""
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)
