"""The platforms ``troupe run`` knows: each one's name, whether the settings turn it on, and
how it runs.

An adapter is imported only when it runs, so a bot on Telegram alone never loads discord.py.
``troupe run`` (:mod:`bot.runtime`), ``troupe config`` and the platform names ``troupe.yaml``
accepts (:mod:`bot.configfile`) all come from :data:`PLATFORMS`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.conversation.services import PlatformServices
    from bot.settings import Settings

__all__ = ["PLATFORMS", "TERMINAL", "Platform", "enabled_platforms", "policy_platforms"]

#: An adapter's entry point: runs until cancelled, or raises when it cannot run.
Runner = Callable[["PlatformServices", "Settings"], Coroutine[Any, Any, None]]

#: The terminal chat (``troupe chat``): no platform ``troupe run`` starts, but ``troupe.yaml``
#: may set its policy like any platform's.
TERMINAL = "console"


class Platform(Protocol):
    """What ``troupe run`` needs of a platform."""

    @property
    def name(self) -> str:
        """The platform's name in conversation keys, metrics, ``/healthz`` and ``troupe.yaml``."""
        ...

    def enabled(self, settings: Settings) -> bool:
        """Whether ``settings`` turn the platform on (its token is set)."""
        ...

    async def run(self, services: PlatformServices, settings: Settings) -> None:
        """Serve the platform until cancelled; raise when it cannot run."""
        ...


@dataclass(frozen=True, slots=True)
class LazyPlatform:
    """A :class:`Platform` whose adapter is imported by ``load`` when it first runs."""

    name: str
    is_enabled: Callable[[Settings], bool]
    load: Callable[[], Runner]

    def enabled(self, settings: Settings) -> bool:
        """Whether ``settings`` turn the platform on."""
        return self.is_enabled(settings)

    async def run(self, services: PlatformServices, settings: Settings) -> None:
        """Import the adapter and run it."""
        await self.load()(services, settings)


def _discord() -> Runner:
    from bot.platforms.discord import run_discord

    return run_discord


def _telegram() -> Runner:
    from bot.platforms.telegram import run_telegram

    return run_telegram


PLATFORMS: tuple[Platform, ...] = (
    LazyPlatform("discord", lambda settings: settings.discord.token is not None, _discord),
    LazyPlatform("telegram", lambda settings: settings.telegram.token is not None, _telegram),
)


def enabled_platforms(settings: Settings) -> tuple[Platform, ...]:
    """The platforms ``settings`` turn on."""
    return tuple(platform for platform in PLATFORMS if platform.enabled(settings))


def policy_platforms() -> tuple[str, ...]:
    """The platform names ``troupe.yaml`` may set policy for."""
    return (*(platform.name for platform in PLATFORMS), TERMINAL)
