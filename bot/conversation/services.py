"""What a platform adapter gets from the engine, and nothing more.

An adapter (see ``docs/adding-a-platform.md``) answers people through the
:class:`~bot.conversation.manager.ConversationManager`, reports how its own requests end to
its :class:`~bot.observability.delivery.DeliveryMonitor` (``/healthz``), and may tell its
moderators' chats of a broken edit of the character files. It never sees the storage, the
character files or how the process is put together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.conversation.manager import ConversationManager
from bot.observability.delivery import DeliveryMonitor

__all__ = ["BrokenCharactersHook", "PlatformServices"]

#: Told, in words for the owner, that an edit of the character files is broken (the last
#: good characters stay in use).
BrokenCharactersHook = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PlatformServices:
    """The engine as one platform sees it."""

    manager: ConversationManager
    #: How this platform's requests end (the platform's half of ``/healthz``).
    delivery: DeliveryMonitor
    #: Adds a hook told of every broken edit of the character files.
    on_broken_characters: Callable[[BrokenCharactersHook], None]
