"""docker/healthcheck.py, run as Docker runs it, against Troupe's real /healthz on loopback."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from types import ModuleType

import pytest
import yaml
from aiohttp import web

from bot.observability.health import HealthServer
from bot.observability.metrics import Metrics
from tests.deploy.dockerfile_model import REPO, parse_dockerfile, seconds

SCRIPT = REPO / "docker" / "healthcheck.py"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Response], Awaitable[int]]]:
    """Yields ``start(response)``: a bare /healthz answering ``response``, on the port it
    returns (for answers Troupe's own server does not give)."""
    runners: list[web.AppRunner] = []

    async def start(response: web.Response) -> int:
        async def healthz(_request: web.Request) -> web.Response:
            return response

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port: int = runner.addresses[0][1]
        return port

    yield start
    for runner in runners:
        await runner.cleanup()


async def run_check(port: int, **environ: str) -> tuple[int, str]:
    """Run the script in a process of its own, as ``HEALTHCHECK CMD`` does."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        env={"TROUPE_HEALTH_PORT": str(port), **environ},
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, stdout.decode()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_healthy_bot_exits_zero() -> None:
    async def database() -> bool:
        return True

    async with HealthServer(Metrics(), host="127.0.0.1", port=0) as server:
        server.add_check("database", database)
        code, output = await run_check(server.port)
    assert code == 0
    assert output.strip() == f"http://127.0.0.1:{server.port}/healthz: 200"


async def test_unhealthy_bot_exits_one_and_says_which_check_failed() -> None:
    async def database() -> str:
        return "connection refused"

    async def telegram() -> bool:
        return True

    async with HealthServer(Metrics(), host="127.0.0.1", port=0) as server:
        server.add_check("database", database)
        server.add_check("telegram", telegram)
        code, output = await run_check(server.port)
    assert code == 1
    assert f"http://127.0.0.1:{server.port}/healthz: 503 " in output
    assert '"database": "connection refused"' in output


async def test_long_unhealthy_body_is_cut(serve) -> None:
    port = await serve(web.Response(status=503, text="x" * 5000))
    code, output = await run_check(port)
    assert code == 1
    assert output.count("x") == load_script().MAX_BODY


async def test_nothing_listening_exits_one() -> None:
    port = free_port()
    code, output = await run_check(port)
    assert code == 1
    assert f"http://127.0.0.1:{port}/healthz: " in output
    assert "refused" in output.lower()


async def test_proxy_settings_are_bypassed(serve) -> None:
    port = await serve(web.json_response({"status": "ok", "checks": {}}))
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    code, output = await run_check(port, HTTP_PROXY=dead_proxy, http_proxy=dead_proxy)
    assert code == 0, output


def test_defaults_fit_the_image_and_the_compose_timeout() -> None:
    script = load_script()
    assert parse_dockerfile()[-1].env["TROUPE_HEALTH_PORT"] == script.DEFAULT_PORT
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    docker_timeout = compose["services"]["bot"]["healthcheck"]["timeout"]
    # Docker kills a check that outlives its timeout and reports nothing useful.
    assert seconds(docker_timeout) > script.TIMEOUT
