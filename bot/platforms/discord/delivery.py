"""How discord.py's HTTP requests end, told to the platform's delivery monitor.

Every REST call (messages, webhooks, typing) goes through one aiohttp session; a trace on it
sees how each write (any method but GET) ended. An answer, even a refusal (403, 404), means
Discord takes writes; a 5xx or no answer at all (timeout, refused connection) is a failure; a
429 is neither. Reads are left out: Discord may serve them while it fails every write.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import aiohttp

from bot.observability.delivery import DeliveryMonitor

__all__ = ["report_requests"]

#: HTTP status of "slow down": Discord works, it only asks to wait.
TOO_MANY_REQUESTS = 429
#: Exceptions that mean the request got no answer (cancellation, for one, does not).
NO_ANSWER = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def report_requests(
    delivery: DeliveryMonitor, trace: aiohttp.TraceConfig | None = None
) -> aiohttp.TraceConfig:
    """``trace`` (a new one if ``None``) made to tell ``delivery`` how writes end; give it
    to ``discord.Client(http_trace=...)``."""
    trace = trace or aiohttp.TraceConfig()

    async def on_request_end(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        if params.method == "GET":
            return
        status = params.response.status
        if status >= 500:
            delivery.failed(f"HTTP {status}")
        elif status != TOO_MANY_REQUESTS:
            delivery.succeeded()

    async def on_request_exception(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        if params.method != "GET" and isinstance(params.exception, NO_ANSWER):
            # The class only: an aiohttp message quotes the URL, and webhook URLs hold tokens.
            delivery.failed(type(params.exception).__name__)

    trace.on_request_end.append(on_request_end)
    trace.on_request_exception.append(on_request_exception)
    return trace
