"""The health and metrics HTTP server: ``/healthz`` and ``/metrics``.

>>> async with HealthServer(metrics, port=9108) as server:   # doctest: +SKIP
...     server.add_check("database", storage.ping)
...     await stop_event.wait()

``/healthz`` runs every registered check at once, each bounded by ``check_timeout``, and
answers 200 ``{"status": "ok", "checks": {...}}`` when all pass, else 503 with
``"status": "unhealthy"`` and the failing checks' reasons. Details registered with
:meth:`HealthServer.add_detail` (a state worth knowing that is no failure, such as M2-her's
advanced roles being folded) are shown under ``"details"``, and never change the status.
``/metrics`` is :meth:`Metrics.render` for a Prometheus scraper. The server is off unless
``TROUPE_HEALTH_PORT`` is set (:class:`~bot.settings.HealthSettings`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Self

from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from bot.observability.metrics import Metrics

__all__ = ["HealthCheck", "HealthDetail", "HealthServer"]

log = logging.getLogger("bot.observability")

#: A health check: ``True`` or ``"ok"`` when healthy; ``False`` or a short reason when not.
HealthCheck = Callable[[], Awaitable[bool | str]]
#: A detail: plain data describing some state, read on every ``/healthz`` request.
HealthDetail = Callable[[], Mapping[str, str]]

#: Reasons longer than this are cut: a check should say what failed, not dump a page.
MAX_REASON = 200


class HealthServer:
    """An aiohttp server on ``host:port`` with ``/healthz`` and ``/metrics``.

    ``port=0`` binds a free port; :attr:`port` tells which once started. Checks can be
    added before or after :meth:`start` (an adapter that comes up later adds its own).
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        host: str = "0.0.0.0",
        port: int,
        check_timeout: float = 2.0,
    ) -> None:
        self._metrics = metrics
        self._host = host
        self._requested_port = port
        self._check_timeout = check_timeout
        self._checks: dict[str, HealthCheck] = {}
        self._details: dict[str, HealthDetail] = {}
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def add_check(self, name: str, check: HealthCheck) -> None:
        """Run ``check`` on every ``/healthz`` request and report it under ``name``."""
        if name in self._checks:
            raise ValueError(f"a health check named {name!r} is already registered")
        self._checks[name] = check

    def add_detail(self, name: str, detail: HealthDetail) -> None:
        """Show ``detail()`` under ``"details"`` → ``name`` on every ``/healthz`` request."""
        if name in self._details:
            raise ValueError(f"a health detail named {name!r} is already registered")
        self._details[name] = detail

    @property
    def port(self) -> int:
        """The port the server listens on (the one picked for ``port=0``)."""
        if self._port is None:
            raise RuntimeError("the health server has not been started")
        return self._port

    async def start(self) -> None:
        """Bind and start serving."""
        if self._runner is not None:
            raise RuntimeError("the health server is already running")
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        # Scrapes every few seconds would drown the log: no access log.
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]

    async def close(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _healthz(self, request: web.Request) -> web.Response:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_check(n, self._checks[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        healthy = all(result == "ok" for result in results)
        body: dict[str, object] = {"status": "ok" if healthy else "unhealthy", "checks": checks}
        if self._details:
            body["details"] = {name: dict(detail()) for name, detail in self._details.items()}
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.render())
        # Set as a header: aiohttp's content_type argument refuses the parameters.
        response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
        return response

    async def _run_check(self, name: str, check: HealthCheck) -> str:
        """``"ok"``, or why not. An exception gives only its type name: its message could
        carry a connection string or a token, so it goes to the (masked) log instead."""
        deadline = asyncio.timeout(self._check_timeout)
        try:
            async with deadline:
                result = await check()
        except Exception as error:
            if deadline.expired():
                log.warning("health check %r timed out", name)
                return f"timed out after {self._check_timeout:g} s"
            log.warning("health check %r failed: %r", name, error)
            return f"failed: {type(error).__name__}"
        if result is True or result == "ok":
            return "ok"
        if not result:
            return "failed"
        return str(result)[:MAX_REASON]
