"""PostgreSQL notifications (``LISTEN``/``NOTIFY``) on one connection that comes back when lost.

A database restart or a failover drops the connection; it is opened again (waiting longer after
each failure) and listens to the same channels. Notifications sent meanwhile are lost: whoever
relies on them must also look for itself now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger("bot.storage")

#: Told the payload of each notification on a channel.
Heard = Callable[[str], None]


class NotificationListener:
    """Listens on channels of the database that ``connect`` opens connections to."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[AsyncConnection]],
        *,
        first_retry: float = 0.5,
        max_retry: float = 30.0,
    ) -> None:
        self._connect = connect
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._channels: dict[str, list[Heard]] = {}
        self._connection: AsyncConnection | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    async def listen(self, channel: str, heard: Heard) -> None:
        """Call ``heard`` for every notification on ``channel`` from now on."""
        self._channels.setdefault(channel, []).append(heard)
        if self._connection is None:
            await self._open()
        else:
            await self._subscribe(self._connection, channel)

    async def close(self) -> None:
        """Stop listening and close the connection."""
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        await self._drop()

    async def _open(self) -> None:
        connection = await self._connect()
        try:
            raw = await self._driver(connection)
            raw.add_termination_listener(self._lost)
            for channel in self._channels:
                await self._subscribe(connection, channel)
        except BaseException:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await connection.close()
            raise
        self._connection = connection

    async def _subscribe(self, connection: AsyncConnection, channel: str) -> None:
        raw = await self._driver(connection)
        await raw.add_listener(channel, self._dispatch)

    def _dispatch(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        for heard in self._channels.get(channel, []):
            heard(payload)

    def _lost(self, _connection: Any) -> None:
        if self._closed or self._reconnecting is not None:
            return
        log.warning("the database connection for notifications was lost; reconnecting")
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        await self._drop()
        delay = self._first_retry
        while True:
            await asyncio.sleep(delay)
            try:
                await self._open()
            except Exception as error:  # whatever the driver raises, try again later
                log.warning("notifications: reconnecting failed (%s); retrying", error)
                delay = min(delay * 2, self._max_retry)
            else:
                log.info("notifications: listening again")
                self._reconnecting = None
                return

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # It may be dead already; closing it must not fail whatever the driver says.
            with contextlib.suppress(Exception):
                await connection.invalidate()
                await connection.close()

    @staticmethod
    async def _driver(connection: AsyncConnection) -> Any:
        """asyncpg's own connection under SQLAlchemy's."""
        raw = await connection.get_raw_connection()
        return raw.driver_connection
