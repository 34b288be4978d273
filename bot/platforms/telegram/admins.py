"""Who administers a group, from ``getChatAdministrators``.

Admin commands and buttons ask fresh every time (a demoted admin loses the right at once).
Ordinary messages use a list at most a minute old, so that a busy group costs one call a
minute: the engine only needs it to spare admins the rate limits and budgets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from telegram import Bot
from telegram.error import TelegramError

from bot.conversation.cache import TimedCache
from bot.conversation.keyed import KeyedLocks

__all__ = ["Admins"]

log = logging.getLogger("bot.platforms.telegram")


class Admins:
    """The administrators of each group the bot is in, cached for ``ttl`` seconds."""

    def __init__(
        self, bot: Bot, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._bot = bot
        self._lists: TimedCache[int, frozenset[int]] = TimedCache(ttl, clock=clock)
        self._locks: KeyedLocks[int] = KeyedLocks()

    async def is_admin(self, chat_id: int, user_id: int, *, fresh: bool = True) -> bool:
        """Whether ``user_id`` administers the group ``chat_id``.

        ``fresh=False`` accepts a list up to ``ttl`` old. Concurrent questions about one
        chat are answered in the order they were asked, with one lookup.
        """
        async with self._locks.hold(chat_id):
            cached = self._lists.get(chat_id)
            if fresh or cached is None:
                members = await self._bot.get_chat_administrators(chat_id)
                cached = (self._lists.put(chat_id, frozenset(m.user.id for m in members)),)
            return user_id in cached[0]

    async def probably_admin(self, chat_id: int, user_id: int) -> bool:
        """:meth:`is_admin` from the cache when it can, ``False`` if Telegram can't say."""
        try:
            return await self.is_admin(chat_id, user_id, fresh=False)
        except TelegramError as error:
            log.debug("could not list the admins of chat %s: %s", chat_id, error)
            return False
