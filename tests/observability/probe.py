"""Reading a running bot's ``/healthz`` from a test."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp


async def healthz(port: int) -> tuple[int, dict[str, Any]]:
    """The status and body of ``/healthz`` on 127.0.0.1:``port``."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz") as response,
    ):
        body: dict[str, Any] = await response.json()
        return response.status, body


async def wait_for_check(
    port: int,
    name: str,
    *,
    healthy: bool,
    timeout: float = 10.0,  # noqa: ASYNC109 - a bound on the whole wait
) -> tuple[int, str]:
    """Poll ``/healthz`` until check ``name`` is (un)healthy; the status and the check's text."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                status, body = await healthz(port)
            except aiohttp.ClientConnectionError:  # not listening yet
                status, body = 0, {}
            result = body.get("checks", {}).get(name)
            if result is not None and (result == "ok") == healthy:
                return status, result
            await asyncio.sleep(0.05)
