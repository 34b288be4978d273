"""``troupe run``: the engine, the platforms the settings turn on (see
:mod:`bot.platforms.registry`), health and metrics, and a graceful shutdown.

On SIGTERM or SIGINT the bot stops starting turns (messages that still arrive are stored, and
owed a turn at the next start), lets the replies in flight finish up to
``TROUPE_SHUTDOWN_SECONDS`` (default 20), stops those still running (their users are told;
they are resumed at the next start), then disconnects from the platforms and closes the
database and the M2-her client. The deadline is hard: every step after it is bounded, and the
process exits within it plus 2 s whatever hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TextIO

from bot.app import Engine, open_engine
from bot.llm.errors import AuthenticationError, InsufficientBalance, M2HerError
from bot.llm.roles import PLAIN_PROBE, REPROBE_SECONDS
from bot.observability.delivery import DeliveryMonitor, DeliveryMonitors
from bot.observability.health import HealthServer
from bot.platforms.registry import enabled_platforms
from bot.settings import ConfigError, Settings

log = logging.getLogger("bot.runtime")

#: After the deadline: stopping the turns still running (telling a chat takes up to 1 s) ...
STOP_TURNS_SECONDS = 1.2
#: ... then disconnecting from the platforms.
DISCONNECT_SECONDS = 0.4
#: The process exits this long after the deadline, whatever hangs (the last resort).
HARD_EXIT_SECONDS = 1.9


async def run_bot(
    settings: Settings,
    *,
    out: TextIO,
    stop: asyncio.Event | None = None,
    hard_exit: bool = False,
    reprobe_seconds: float = REPROBE_SECONDS,
) -> int:
    """Run every platform ``settings`` turn on until ``stop`` is set (or a signal arrives).

    With ``hard_exit`` (the ``troupe run`` process, never a test's) the process is ended
    :data:`HARD_EXIT_SECONDS` after the shutdown deadline if closing hangs. While M2-her
    refuses the advanced roles they are probed again every ``reprobe_seconds``.
    """
    platforms = enabled_platforms(settings)
    deadline = settings.shutdown.seconds
    stop = stop or asyncio.Event()
    async with open_engine(settings, reprobe_seconds=reprobe_seconds) as engine:
        print(engine.backend, flush=True, file=out)
        print(engine.characters_summary(), flush=True, file=out)
        await check_model_key(engine, settings)
        delivery = DeliveryMonitors.from_settings(
            settings.health, on_failure=engine.manager.metrics.platform_request_failed
        )
        async with contextlib.AsyncExitStack() as stack:
            server = None
            if settings.health.port is not None:
                server = await stack.enter_async_context(
                    HealthServer(engine.manager.metrics, port=settings.health.port)
                )
                server.add_check("database", engine.storage.ping)
                server.add_detail("m2her_advanced_roles", engine.roles.details)
                print(f"Health and metrics on port {server.port}.", flush=True, file=out)
            _on_signals(stop)
            tasks = {
                platform.name: asyncio.create_task(
                    platform.run(engine.services(delivery.for_platform(platform.name)), settings)
                )
                for platform in platforms
            }
            for name, task in tasks.items():
                if server is not None:
                    server.add_check(name, _platform_check(task, delivery.for_platform(name)))
            print(f"Running: {', '.join(tasks)}. Ctrl-C or SIGTERM stops.", flush=True, file=out)
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([stopping, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if hard_exit:
                _exit_at_the_latest(deadline + HARD_EXIT_SECONDS)
            code = await _shut_down(engine, tasks, deadline, out)
    return code


async def check_model_key(engine: Engine, settings: Settings) -> None:
    """Start-up self-check: one tiny call, so a rejected key is explained before anyone chats.

    With ``MINIMAX_ADVANCED_ROLES=auto`` the call is the advanced-roles probe
    (:meth:`RoleSupport.probe <bot.llm.roles.RoleSupport.probe>`). Skipped with the built-in
    fake. A network problem only warns: the API may be back soon.
    """
    if settings.m2her.api_key is None or engine.client is None:
        return
    try:
        if engine.roles.probing:
            await engine.roles.probe(engine.client)
        else:
            await engine.client.complete(PLAIN_PROBE)
    except (AuthenticationError, InsufficientBalance) as error:
        raise ConfigError(
            f"M2-her refused the key: {error.status_msg} (code {error.code}). Fix: check "
            "MINIMAX_API_KEY (platform.minimax.io → API Keys); a key from the mainland-China "
            "site needs MINIMAX_BASE_URL=https://api.minimaxi.com; code 1008 means the "
            "account needs topping up."
        ) from None
    except M2HerError as error:
        log.warning("could not check the M2-her key at start: %s", error)


async def _shut_down(
    engine: Engine, tasks: dict[str, asyncio.Task[None]], deadline: float, out: TextIO
) -> int:
    manager = engine.manager
    manager.stop_answering()
    if not await manager.drain(deadline):
        log.warning("replies still running after %g s: stopping them till the next start", deadline)
        if not await manager.interrupt(STOP_TURNS_SECONDS):
            log.warning("some stopped replies did not wind up in time")
    # Before the platforms close: a notice still waiting would only fail on them.
    await manager.aclose()
    code = 0
    for name, task in tasks.items():
        if task.done() and not task.cancelled() and task.exception() is not None:
            error = task.exception()
            print(f"troupe: {name} stopped: {error}", file=out, flush=True)
            log.error("%s stopped", name, exc_info=error)
            code = 1
        task.cancel()
    if tasks:
        # A platform library that hangs while disconnecting must not hold the exit.
        _, hung = await asyncio.wait(tasks.values(), timeout=DISCONNECT_SECONDS)
        for name, task in tasks.items():
            if task in hung:
                log.warning("%s did not disconnect within %g s", name, DISCONNECT_SECONDS)
    print("Stopped.", flush=True, file=out)
    return code


def _exit_at_the_latest(seconds: float) -> None:
    """End the process in ``seconds`` unless it has exited by then."""

    def exit_now() -> None:
        log.error("shutdown took longer than %g s: exiting now", seconds)
        sys.stdout.flush()
        os._exit(1)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True
    timer.start()


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)


def _platform_check(
    task: asyncio.Task[None], delivery: DeliveryMonitor
) -> Callable[[], Awaitable[bool | str]]:
    """Healthy while the platform's task runs and its requests get through."""

    async def check() -> bool | str:
        if not task.done():
            return await delivery.check()
        return "stopped" if task.cancelled() or task.exception() is None else "crashed"

    return check
