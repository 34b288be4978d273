"""Settings from the environment, start-up, ``run_telegram`` and keeping the token secret."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest
from telegram.error import NetworkError

from bot.app import broken_edits_of
from bot.characters.watch import CharacterWatcher
from bot.conversation.manager import ConversationManager
from bot.conversation.services import PlatformServices
from bot.conversation.settings import ServerSettings
from bot.observability.delivery import DeliveryMonitor
from bot.platforms.telegram import ConfigError, TelegramBot, TelegramConfig, run_telegram
from bot.settings import Settings
from tests.standins.telegram import TelegramStandIn, free_loopback_port
from tests.telegram.conftest import WAIT, BotFactory, config_for

CHARACTERS = Path(__file__).resolve().parents[2] / "characters"

TOKEN = "123456:AAH-secret-token-value"


def config_from(environ: dict[str, str]) -> TelegramConfig | None:
    return TelegramConfig.from_settings(Settings.from_environ(environ).telegram)


def test_no_token_means_no_telegram() -> None:
    assert config_from({}) is None
    assert config_from({"TELEGRAM_TOKEN": "  "}) is None


def test_settings_from_the_environment() -> None:
    config = config_from(
        {
            "TELEGRAM_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/",
            "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/tg/updates",
            "TELEGRAM_WEBHOOK_SECRET": "abc_DEF-123",
            "TELEGRAM_LISTEN_HOST": "127.0.0.1",
            "TELEGRAM_LISTEN_PORT": "8088",
        }
    )
    assert config is not None
    assert config.api_base_url == "http://127.0.0.1:8081/bot"
    assert config.file_base_url == "http://127.0.0.1:8081/file/bot"
    assert config.webhook_path == "tg/updates"
    assert (config.webhook_secret, config.listen_host, config.listen_port) == (
        "abc_DEF-123",
        "127.0.0.1",
        8088,
    )
    assert TOKEN not in repr(config)
    assert "abc_DEF-123" not in repr(config)


def test_defaults_poll_official_api_with_a_random_secret() -> None:
    first = config_from({"TELEGRAM_TOKEN": TOKEN})
    second = config_from({"TELEGRAM_TOKEN": TOKEN})
    assert first is not None
    assert second is not None
    assert first.api_base_url == "https://api.telegram.org/bot"
    assert first.webhook_url is None
    assert first.webhook_secret != second.webhook_secret  # never a guessable default
    assert len(first.webhook_secret) >= 32


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TELEGRAM_WEBHOOK_SECRET", "has spaces", "may only use"),
        ("TELEGRAM_WEBHOOK_SECRET", "x" * 257, "may only use"),
        ("TELEGRAM_LISTEN_PORT", "eighty", "port number"),
        ("TELEGRAM_LISTEN_PORT", "70000", "port number"),
        ("TELEGRAM_WEBHOOK_URL", "bot.example.org/hook", "https:// URL"),
        ("TELEGRAM_API_BASE_URL", "localhost:8081", r"an http\(s\) URL"),
    ],
)
def test_unusable_settings_say_what_is_wrong(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        config_from({"TELEGRAM_TOKEN": TOKEN, name: value})
    assert TOKEN not in str(caught.value)


async def test_a_rejected_token_is_reported_without_the_token(
    tg: TelegramStandIn, manager: ConversationManager
) -> None:
    bot = TelegramBot(manager, TelegramConfig(token=TOKEN, api_base_url=tg.base_url))
    with pytest.raises(ConfigError, match="rejected TELEGRAM_TOKEN") as caught:
        await bot.start()
    await bot.stop()
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_the_token_never_reaches_the_logs(
    tg: TelegramStandIn,
    manager: ConversationManager,
    start_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    with caplog.at_level(logging.DEBUG):
        await start_bot(manager)
        tg.user_says(dm, alice, "hello")
        await tg.wait_until(lambda: len(dm.bot_messages()) == 1, timeout=WAIT)
    assert "HTTP Request" in caplog.text  # httpx logged the requests...
    assert tg.token not in caplog.text  # ...without the token
    assert "/bot***/getMe" in caplog.text


def services_for(
    manager: ConversationManager, watcher: CharacterWatcher | None = None
) -> PlatformServices:
    watcher = watcher or CharacterWatcher(CHARACTERS, on_reload=manager.use_characters)
    return PlatformServices(manager, DeliveryMonitor("telegram"), broken_edits_of(watcher))


async def test_run_telegram_answers_until_cancelled(
    tg: TelegramStandIn, manager: ConversationManager
) -> None:
    environ = {"TELEGRAM_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url}
    running = asyncio.create_task(
        run_telegram(services_for(manager), Settings.from_environ(environ))
    )
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "hello")
    await tg.wait_until(lambda: len(dm.bot_messages()) == 1, timeout=WAIT)
    assert tg.commands_for({"type": "all_private_chats"})
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, WAIT)
    polls = len(tg.calls_to("getUpdates"))
    await asyncio.sleep(0.3)
    assert len(tg.calls_to("getUpdates")) == polls  # stopped polling


async def test_run_telegram_needs_a_token(manager: ConversationManager) -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_TOKEN is not set"):
        await run_telegram(services_for(manager), Settings.from_environ({}))


async def test_a_broken_character_edit_is_reported_to_the_moderators_chat(
    tg: TelegramStandIn, manager: ConversationManager, tmp_path: Path
) -> None:
    folder = tmp_path / "characters"
    shutil.copytree(CHARACTERS, folder)
    alice = tg.add_user("Alice")
    mods = tg.group("Mods", [alice], admins=[alice])
    await manager.policies.set_server_settings(
        "telegram", "-1", ServerSettings(moderators_chat_id=str(mods.id))
    )
    watcher = CharacterWatcher(folder, on_reload=manager.use_characters)
    environ = {"TELEGRAM_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url}
    running = asyncio.create_task(
        run_telegram(services_for(manager, watcher), Settings.from_environ(environ))
    )
    try:
        # Polling has begun: the bot is running and its hooks are in place.
        await tg.wait_until(lambda: bool(tg.calls_to("getUpdates")), timeout=WAIT)
        await asyncio.sleep(0.1)
        (folder / "bram.yaml").write_text("name: Bram\npersonality: [1, 2]\n", encoding="utf-8")
        assert not await watcher.check()  # broken: nothing reloaded
        await tg.wait_until(lambda: bool(mods.bot_messages()), timeout=WAIT)
        notice = mods.bot_messages()[-1].text
        assert notice.startswith("Character files have problems")
        assert "bram.yaml:1: description: field required" in notice
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running


def test_config_for_tests_points_at_the_stand_in(tg: TelegramStandIn) -> None:
    assert config_for(tg).api_base_url == tg.base_url


async def test_an_unreachable_bot_api_fails_plainly_without_the_token(
    manager: ConversationManager,
) -> None:
    port = free_loopback_port()  # nothing listens there
    bot = TelegramBot(
        manager, TelegramConfig(token=TOKEN, api_base_url=f"http://127.0.0.1:{port}/bot")
    )
    with pytest.raises(NetworkError) as caught:
        await bot.start()
    await bot.stop()
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value.__cause__)
