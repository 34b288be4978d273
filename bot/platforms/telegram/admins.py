"""Who administers a group, from ``getChatAdministrators``.

Admin commands and buttons ask fresh every time (a demoted admin loses the right at once).
Ordinary messages use a list at most a minute old, so that a busy group costs one call a
minute: the engine only needs it to spare admins the rate limits and budgets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from telegram import Bot
from telegram.error import TelegramError

__all__ = ["Admins"]

log = logging.getLogger("bot.platforms.telegram")


class Admins:
    """The administrators of each group the bot is in, cached for ``ttl`` seconds."""

    def __init__(
        self, bot: Bot, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._bot = bot
        self._ttl = ttl
        self._clock = clock
        self._lists: dict[int, tuple[float, frozenset[int]]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def is_admin(self, chat_id: int, user_id: int, *, fresh: bool = True) -> bool:
        """Whether ``user_id`` administers the group ``chat_id``.

        ``fresh=False`` accepts a list up to ``ttl`` old. Concurrent questions about one
        chat are answered in the order they were asked, with one lookup.
        """
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            cached = self._lists.get(chat_id)
            if fresh or cached is None or self._clock() - cached[0] > self._ttl:
                members = await self._bot.get_chat_administrators(chat_id)
                cached = (self._clock(), frozenset(member.user.id for member in members))
                self._lists[chat_id] = cached
            return user_id in cached[1]

    async def probably_admin(self, chat_id: int, user_id: int) -> bool:
        """:meth:`is_admin` from the cache when it can, ``False`` if Telegram can't say."""
        try:
            return await self.is_admin(chat_id, user_id, fresh=False)
        except TelegramError as error:
            log.debug("could not list the admins of chat %s: %s", chat_id, error)
            return False
