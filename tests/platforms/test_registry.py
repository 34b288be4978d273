"""The platform registry: what ``troupe run``, ``troupe config`` and ``troupe.yaml`` know of the
platforms, adapters imported only when they run, and the services a platform is given."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.app import describe_configuration
from bot.configfile import ConfigFileError, load_config_file
from bot.conversation.manager import ConversationManager
from bot.conversation.services import PlatformServices
from bot.platforms import registry
from bot.platforms.discord.events import PLATFORM as DISCORD
from bot.platforms.registry import LazyPlatform, enabled_platforms, policy_platforms
from bot.platforms.telegram.handlers import PLATFORM as TELEGRAM
from bot.runtime import run_bot
from bot.settings import Settings
from tests.observability.probe import wait_for_check
from tests.standins.telegram import free_loopback_port

REPO = Path(__file__).resolve().parents[2]
CHARACTERS = REPO / "characters"


async def run_nothing(services: PlatformServices, settings: Settings) -> None:
    """A platform that is never started."""


def test_each_platform_has_its_settings_section_and_its_adapters_name() -> None:
    names = [platform.name for platform in registry.PLATFORMS]
    assert names == [DISCORD, TELEGRAM]
    assert set(names) <= set(Settings.model_fields)
    assert policy_platforms() == (DISCORD, TELEGRAM, "console")


def test_a_token_turns_its_platform_on() -> None:
    def on(environ: dict[str, str]) -> list[str]:
        return [p.name for p in enabled_platforms(Settings.from_environ(environ))]

    assert on({}) == []
    assert on({"TELEGRAM_TOKEN": "1:a"}) == ["telegram"]
    assert on({"DISCORD_TOKEN": "d", "TELEGRAM_TOKEN": "1:a"}) == ["discord", "telegram"]


def test_an_adapter_is_imported_only_when_it_runs() -> None:
    script = textwrap.dedent(
        """
        import sys
        import bot.cli, bot.runtime, bot.app, bot.configfile
        from bot.platforms.registry import PLATFORMS
        discord, telegram = PLATFORMS
        assert "discord" not in sys.modules and "telegram" not in sys.modules
        telegram.load()
        assert "telegram" in sys.modules and "discord" not in sys.modules
        discord.load()
        assert "discord" in sys.modules
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_troupe_yaml_takes_the_registered_platforms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "troupe.yaml"
    path.write_text("platforms:\n  matrix:\n    trigger: {answer_all: true}\n", encoding="utf-8")
    with pytest.raises(ConfigFileError, match="'discord', 'telegram' or 'console', got 'matrix'"):
        load_config_file(path)
    matrix = LazyPlatform("matrix", lambda settings: False, lambda: run_nothing)
    monkeypatch.setattr(registry, "PLATFORMS", (*registry.PLATFORMS, matrix))
    tree = load_config_file(path).policy_tree()
    assert tree.platforms["matrix"] == {"trigger": {"answer_all": True}}


def test_troupe_config_shows_the_registered_platforms(tmp_path: Path) -> None:
    settings = Settings.from_environ(
        {"TROUPE_CHARACTERS_DIR": str(CHARACTERS), "TELEGRAM_TOKEN": "1:a"}
    )
    shown = describe_configuration(settings)
    assert shown["platforms"] == {"discord": "off (no token)", "telegram": "on"}
    assert shown["settings"]["telegram"]["TELEGRAM_TOKEN"] == "*** (set)"


async def test_troupe_run_runs_each_enabled_platform_with_its_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given: list[tuple[PlatformServices, Settings]] = []
    running_now = asyncio.Event()

    async def run_echo(services: PlatformServices, settings: Settings) -> None:
        given.append((services, settings))
        running_now.set()
        await asyncio.Event().wait()

    async def never(services: PlatformServices, settings: Settings) -> None:
        raise AssertionError("a platform the settings leave off was started")

    monkeypatch.setattr(
        registry,
        "PLATFORMS",
        (
            LazyPlatform("echo", lambda settings: True, lambda: run_echo),
            LazyPlatform("off", lambda settings: False, lambda: never),
        ),
    )
    port = free_loopback_port()
    settings = Settings.from_environ(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'troupe.sqlite3'}",
            "TROUPE_CHARACTERS_DIR": str(CHARACTERS),
            "TROUPE_HEALTH_PORT": str(port),
        }
    )
    out = io.StringIO()
    stop = asyncio.Event()
    running = asyncio.create_task(run_bot(settings, out=out, stop=stop))
    try:
        await asyncio.wait_for(running_now.wait(), 10)
        assert await wait_for_check(port, "echo", healthy=True) == (200, "ok")
        [(services, seen)] = given
        assert seen is settings
        assert isinstance(services.manager, ConversationManager)
        assert services.delivery.platform == "echo"
        assert "Running: echo." in out.getvalue()
    finally:
        stop.set()
        assert await asyncio.wait_for(running, 10) == 0
