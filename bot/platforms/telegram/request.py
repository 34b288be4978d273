"""The HTTP side of every Bot API call (except long polling): requests that are never cut off
half-way, and whose outcomes feed the platform's delivery health.

Why requests are not cancelled: httpcore (1.0.9, under httpx and so under python-telegram-bot)
loses a pool connection when the task making a request is cancelled at one of the awaits
where the connection is being handed back (the response is read, its connection not yet
marked idle), or while a new connection is being assigned. Such a connection stays
"active", with its request still queued in the pool, for the life of the process. The bot
cancels requests routinely (a reply that ends stops its "typing…" renewal, which may be inside
``sendChatAction``), so under load the 256 connections of the pool leak one by one until
every request fails with "Pool timeout: All connections in the connection pool are occupied"
and the bot never reaches Telegram again (encode/httpcore#1093, #658, #830). Here a request
runs in a task of its own: a cancelled caller stops waiting at once, and the request itself
finishes (it is bounded by its read, write and connect timeouts) and returns its connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from telegram.error import NetworkError, TimedOut
from telegram.request import HTTPXRequest

from bot.observability.delivery import DeliveryMonitor

__all__ = ["TelegramRequest"]

#: HTTP status of "slow down": the platform works, it only asks to wait.
TOO_MANY_REQUESTS = 429


class TelegramRequest(HTTPXRequest):
    """python-telegram-bot's ``HTTPXRequest``, with requests that outlive a cancelled caller,
    and the outcome of each write (a method not named ``get…``) told to ``delivery``: an
    answer (even a refusal) is a success, a 5xx or a request that never got an answer
    (timeout, exhausted pool, network) a failure, a 429 neither. Other arguments are
    ``HTTPXRequest``'s."""

    __slots__ = ("_delivery", "_in_flight")

    def __init__(self, delivery: DeliveryMonitor, **options: Any) -> None:
        super().__init__(**options)
        self._delivery = delivery
        self._in_flight: set[asyncio.Task[tuple[int, bytes]]] = set()

    async def do_request(self, url: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        """See ``BaseRequest.do_request``; cancelling the caller leaves the request running."""
        call = super().do_request(url, *args, **kwargs)
        # Only writes tell delivery's health: Telegram may answer reads while failing writes.
        is_read = url.rpartition("/")[2].startswith("get")
        request = asyncio.create_task(call if is_read else self._reported(call))
        self._in_flight.add(request)
        request.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(request)

    async def shutdown(self) -> None:
        """Let requests whose callers gave up finish (their timeouts bound this), then close."""
        if self._in_flight:
            await asyncio.wait(self._in_flight)
        await super().shutdown()

    async def _reported(self, request: Coroutine[Any, Any, tuple[int, bytes]]) -> tuple[int, bytes]:
        try:
            status, body = await request
        except TimedOut as error:  # a pool timeout too: PTB's own words
            self._delivery.failed(error.message)
            raise
        except NetworkError as error:  # the transport's message might quote the URL
            self._delivery.failed(type(error).__name__)
            raise
        if status >= 500:
            self._delivery.failed(f"HTTP {status}")
        elif status != TOO_MANY_REQUESTS:
            self._delivery.succeeded()
        return status, body
