"""The health server: real HTTP requests on 127.0.0.1 against /healthz and /metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.observability.health import HealthServer
from bot.observability.metrics import Metrics
from bot.settings import ConfigError, Settings
from tests.observability.scrape import value

SECRET = "postgres://troupe:hunter2-s3cret@db/troupe"


@pytest.fixture
async def server() -> AsyncIterator[HealthServer]:
    """A health server on a free loopback port with a short check timeout."""
    async with HealthServer(Metrics(), host="127.0.0.1", port=0, check_timeout=0.5) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session with a bounded total time per request."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def get_health(http: aiohttp.ClientSession, server: HealthServer) -> tuple[int, Any]:
    async with http.get(f"http://127.0.0.1:{server.port}/healthz") as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def healthy() -> bool:
    return True


async def says_ok() -> str:
    return "ok"


async def test_no_checks_is_healthy(server: HealthServer, http: aiohttp.ClientSession) -> None:
    assert await get_health(http, server) == (200, {"status": "ok", "checks": {}})


async def test_passing_checks_answer_200(server: HealthServer, http: aiohttp.ClientSession) -> None:
    server.add_check("database", healthy)
    server.add_check("discord", says_ok)

    status, body = await get_health(http, server)

    assert status == 200
    assert body == {"status": "ok", "checks": {"database": "ok", "discord": "ok"}}


async def test_a_false_check_answers_503(server: HealthServer, http: aiohttp.ClientSession) -> None:
    async def down() -> bool:
        return False

    server.add_check("database", healthy)
    server.add_check("telegram", down)

    status, body = await get_health(http, server)

    assert status == 503
    assert body == {"status": "unhealthy", "checks": {"database": "ok", "telegram": "failed"}}


async def test_a_reason_string_is_reported(
    server: HealthServer, http: aiohttp.ClientSession
) -> None:
    async def gateway_closed() -> str:
        return "gateway disconnected 40 s ago"

    server.add_check("discord", gateway_closed)

    status, body = await get_health(http, server)

    assert status == 503
    assert body["checks"] == {"discord": "gateway disconnected 40 s ago"}


async def test_an_exception_reports_its_type_and_never_its_message(
    server: HealthServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> bool:
        raise ConnectionRefusedError(f"cannot reach {SECRET}")

    server.add_check("database", broken)

    async with http.get(f"http://127.0.0.1:{server.port}/healthz") as response:
        raw = await response.text()

    assert response.status == 503
    assert json.loads(raw)["checks"] == {"database": "failed: ConnectionRefusedError"}
    assert "hunter2" not in raw
    # The details go to the log, where the secrets are masked (see test_log_secrets).
    (record,) = caplog.records
    assert record.getMessage().startswith("health check 'database' failed: ConnectionRefusedError")


async def test_a_slow_check_times_out_and_is_cancelled(
    server: HealthServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    cancelled = asyncio.Event()

    async def hangs() -> bool:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return True

    server.add_check("database", healthy)
    server.add_check("telegram", hangs)

    status, body = await asyncio.wait_for(get_health(http, server), timeout=5)

    assert status == 503
    assert body["checks"] == {"database": "ok", "telegram": "timed out after 0.5 s"}
    assert cancelled.is_set()
    assert [r.getMessage() for r in caplog.records] == ["health check 'telegram' timed out"]


async def test_a_check_raising_timeout_itself_is_a_failure_not_our_timeout(
    server: HealthServer, http: aiohttp.ClientSession
) -> None:
    async def connect_times_out() -> bool:
        raise TimeoutError

    server.add_check("database", connect_times_out)

    status, body = await get_health(http, server)

    assert status == 503
    assert body["checks"] == {"database": "failed: TimeoutError"}


async def test_checks_run_at_the_same_time(
    server: HealthServer, http: aiohttp.ClientSession
) -> None:
    # Each check waits for the other: run one after the other, both would time out.
    first_in, second_in = asyncio.Event(), asyncio.Event()

    async def first() -> bool:
        first_in.set()
        await second_in.wait()
        return True

    async def second() -> bool:
        second_in.set()
        await first_in.wait()
        return True

    server.add_check("first", first)
    server.add_check("second", second)

    status, body = await get_health(http, server)

    assert status == 200
    assert body["checks"] == {"first": "ok", "second": "ok"}


async def test_long_reasons_are_cut(server: HealthServer, http: aiohttp.ClientSession) -> None:
    async def chatty() -> str:
        return "x" * 5000

    server.add_check("discord", chatty)

    _, body = await get_health(http, server)

    assert body["checks"]["discord"] == "x" * 200


async def test_a_check_added_after_start_is_used_and_names_are_unique(
    server: HealthServer, http: aiohttp.ClientSession
) -> None:
    assert (await get_health(http, server))[0] == 200

    async def down() -> bool:
        return False

    server.add_check("telegram", down)
    with pytest.raises(ValueError, match="telegram"):
        server.add_check("telegram", healthy)

    assert (await get_health(http, server))[0] == 503


async def test_details_are_shown_and_never_change_the_status(
    server: HealthServer, http: aiohttp.ClientSession
) -> None:
    state = {"form": "advanced"}
    server.add_check("database", healthy)
    server.add_detail("m2her_advanced_roles", lambda: state)
    assert await get_health(http, server) == (
        200,
        {
            "status": "ok",
            "checks": {"database": "ok"},
            "details": {"m2her_advanced_roles": {"form": "advanced"}},
        },
    )
    state["form"] = "folded"  # read afresh on every request
    status, body = await get_health(http, server)
    assert (status, body["details"]) == (200, {"m2her_advanced_roles": {"form": "folded"}})
    with pytest.raises(ValueError, match="already registered"):
        server.add_detail("m2her_advanced_roles", lambda: state)


async def test_metrics_are_served_in_prometheus_text(http: aiohttp.ClientSession) -> None:
    metrics = Metrics()
    metrics.turn_started("discord")
    async with HealthServer(metrics, host="127.0.0.1", port=0) as server:
        metrics.turn_started("discord")
        metrics.turn_finished("discord", "ok", 2.0, 0.4)
        metrics.api_error(1002, "RateLimited")

        async with http.get(f"http://127.0.0.1:{server.port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            text = await response.text()

    assert value(text, "troupe_turns_in_flight", platform="discord") == 1
    assert value(text, "troupe_turns_total", platform="discord", status="ok") == 1
    assert value(text, "troupe_api_errors_total", code="1002", kind="RateLimited") == 1


async def test_unknown_paths_are_404(server: HealthServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"http://127.0.0.1:{server.port}/") as response:
        assert response.status == 404


async def test_close_releases_the_port(http: aiohttp.ClientSession) -> None:
    server = HealthServer(Metrics(), host="127.0.0.1", port=0)
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.port
    await server.start()
    port = server.port
    await server.close()
    await server.close()  # twice is fine

    with pytest.raises(aiohttp.ClientConnectionError):
        await http.get(f"http://127.0.0.1:{port}/healthz")
    # The same port can be bound again straight away.
    async with HealthServer(Metrics(), host="127.0.0.1", port=port) as again:
        assert again.port == port


async def test_a_port_in_use_fails_to_start(server: HealthServer) -> None:
    clash = HealthServer(Metrics(), host="127.0.0.1", port=server.port)
    with pytest.raises(OSError, match="address already in use"):
        await clash.start()
    with pytest.raises(RuntimeError, match="not been started"):
        _ = clash.port


@pytest.mark.parametrize(
    ("environ", "port"),
    [({}, None), ({"TROUPE_HEALTH_PORT": ""}, None), ({"TROUPE_HEALTH_PORT": " 9108 "}, 9108)],
)
def test_port_from_env(environ: dict[str, str], port: int | None) -> None:
    assert Settings.from_environ(environ).health.port == port


@pytest.mark.parametrize("text", ["http", "0", "65536", "-1", "91.08"])
def test_bad_ports_name_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match="TROUPE_HEALTH_PORT"):
        Settings.from_environ({"TROUPE_HEALTH_PORT": text})
