"""The platform adapters (Discord, Telegram, the terminal) and what they share: streaming a
reply into a chat, splitting text, triggers.

:mod:`bot.platforms.registry` lists the platforms ``troupe run`` can start; each adapter gets
:class:`~bot.conversation.services.PlatformServices` and the
:class:`~bot.settings.Settings`, and is imported only when it runs.
"""

from bot.platforms.registry import PLATFORMS, Platform, enabled_platforms, policy_platforms

__all__ = ["PLATFORMS", "Platform", "enabled_platforms", "policy_platforms"]
