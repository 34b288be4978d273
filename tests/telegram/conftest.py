"""End-to-end fixtures: the Telegram Bot API stand-in, an engine on a SQLite file with the fake
M2-her behind it, and the adapter (python-telegram-bot, unmodified) running between them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.characters.loader import load_characters
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.llm.client import M2HerClient
from bot.platforms.streaming import Rate
from bot.platforms.telegram.app import TelegramBot
from bot.platforms.telegram.config import TelegramConfig
from bot.storage import Storage, open_storage
from tests.conversation.conftest import main_greeting
from tests.standins.telegram import TelegramStandIn
from tests.standins.telegram.model import Chat

CHARACTERS_DIR = Path(__file__).resolve().parents[2] / "characters"
WAIT = 8.0


ManagerFactory = Callable[..., Awaitable[ConversationManager]]
BotFactory = Callable[..., Awaitable[TelegramBot]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "standin(**options): TelegramStandIn constructor options")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # PTB 22 itself reads RetryAfter.retry_after as an int, which warns on every 429.
    here = Path(__file__).parent
    quiet = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
    for item in items:
        if here in item.path.parents:
            item.add_marker(quiet)


@pytest.fixture
async def tg(request: pytest.FixtureRequest) -> AsyncIterator[TelegramStandIn]:
    """The Bot API stand-in on 127.0.0.1; it must not have hit a bug of its own.

    ``@pytest.mark.standin(rate_limit=...)`` passes options to its constructor.
    """
    marker = request.node.get_closest_marker("standin")
    async with TelegramStandIn(**(marker.kwargs if marker else {})) as standin:
        yield standin
        # A long poll cut off by the bot shutting down is not a stand-in bug.
        bugs = [e for e in standin.internal_errors if not isinstance(e, ConnectionResetError)]
        assert bugs == []


@pytest.fixture
async def make_manager(m2her_client: M2HerClient, tmp_path: Path) -> AsyncIterator[ManagerFactory]:
    """Builds managers on one SQLite file; a second one is the process after a restart."""
    opened: list[Storage] = []

    async def make(characters: Path = CHARACTERS_DIR, **kwargs: Any) -> ConversationManager:
        storage = await open_storage(f"sqlite+aiosqlite:///{tmp_path / 'troupe.sqlite3'}")
        opened.append(storage)
        kwargs.setdefault("settings", ManagerSettings(default_character="aria"))
        kwargs.setdefault("choose_greeting", main_greeting)
        return ConversationManager(
            storage=storage,
            characters=load_characters(characters),
            client=m2her_client,
            **kwargs,
        )

    yield make
    for storage in opened:
        await storage.close()


@pytest.fixture
async def manager(make_manager: ManagerFactory) -> ConversationManager:
    """The engine: Aria by default."""
    return await make_manager()


def config_for(tg: TelegramStandIn, **values: Any) -> TelegramConfig:
    """Settings pointing the adapter at the stand-in, with short long polls."""
    values.setdefault("poll_timeout", 1)
    return TelegramConfig(token=tg.token, api_base_url=tg.base_url, **values)


@pytest.fixture
async def start_bot(tg: TelegramStandIn) -> AsyncIterator[BotFactory]:
    """Starts the adapter on a manager (fast cadences unless given); all stopped afterwards."""
    running: list[TelegramBot] = []

    async def start(manager: ConversationManager, **options: Any) -> TelegramBot:
        config = options.pop("config", None) or config_for(tg)
        options.setdefault("private_interval", 0.05)
        options.setdefault("group_interval", 0.1)
        # Telegram's 20 a minute would make every group test wait; tests of flood control
        # give the stand-in its limits instead.
        options.setdefault("group_rate", Rate(20, 1.0))
        options.setdefault("typing_interval", 0.2)
        bot = TelegramBot(manager, config, **options)
        await bot.start()
        running.append(bot)
        return bot

    yield start
    for bot in running:
        await bot.stop()


@pytest.fixture
async def bot(manager: ConversationManager, start_bot: BotFactory) -> TelegramBot:
    """The adapter, polling the stand-in."""
    return await start_bot(manager)


async def said_back(tg: TelegramStandIn, chat: Chat, text: str) -> str:
    """Wait for the bot's message in ``chat`` that contains ``text``; its whole text."""
    await tg.wait_until(
        lambda: any(text in m.text for m in chat.bot_messages()), timeout=WAIT, what=text
    )
    return next(m.text for m in chat.bot_messages() if text in m.text)
