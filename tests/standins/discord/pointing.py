"""Pointing an unmodified discord.py at the stand-in, and proving nothing leaves 127.0.0.1.

discord.py has no constructor option for its endpoints; it reads two class attributes:

* ``discord.http.Route.BASE`` — the REST base every request is built on
  (``DISCORD_API_BASE_URL``, e.g. ``http://127.0.0.1:PORT/api/v10``);
* ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` — the websocket a ``Client`` connects to
  (``DISCORD_GATEWAY_URL``, e.g. ``ws://127.0.0.1:PORT/gateway``). ``AutoShardedClient`` asks
  ``GET /gateway/bot`` instead (the stand-in answers with its own URL), and every client resumes
  on READY's ``resume_gateway_url`` (also the stand-in's).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from types import SimpleNamespace

import aiohttp
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route


@contextlib.contextmanager
def point_discord_py_at(api_base_url: str, gateway_url: str) -> Iterator[None]:
    """Make discord.py use ``api_base_url`` and ``gateway_url`` inside the block, then restore.

    These are process-wide class attributes, so clients created inside the block (and any
    other discord.py code in the process) use them.
    """
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = api_base_url.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


class LeftLoopback(AssertionError):
    """discord.py tried to reach a host other than 127.0.0.1 / ::1."""


def loopback_only_trace(seen: list[str] | None = None) -> aiohttp.TraceConfig:
    """An aiohttp trace for ``discord.Client(http_trace=...)`` that refuses non-loopback hosts.

    Every URL discord.py requests (REST, gateway websocket, CDN) passes through it; each is
    appended to ``seen`` when given, and a non-loopback one raises ``LeftLoopback`` before any
    connection is made.
    """
    trace = aiohttp.TraceConfig()

    async def on_request_start(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        if seen is not None:
            seen.append(str(params.url))
        host = params.url.host or ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise LeftLoopback(f"discord.py tried to reach {params.url}")

    trace.on_request_start.append(on_request_start)
    return trace
