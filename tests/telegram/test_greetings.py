"""Group-only greetings open group chats, never private ones (`/start` through the real
python-telegram-bot against the Bot API stand-in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.conversation.manager import ManagerSettings
from tests.standins.telegram import TelegramStandIn
from tests.telegram.conftest import WAIT, BotFactory, ManagerFactory

#: A character whose only greeting is for groups: whether it is posted depends on the chat
#: alone, never on which greeting a random pick chose.
CRIER = """\
name: Town Crier
description: "{{char}} announces the news of the square."
group_only_greetings: ["Hear ye, {{user}} and all assembled!"]
"""


@pytest.fixture
def crier_dir(tmp_path: Path) -> Path:
    """A characters folder with the crier alone."""
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "crier.yaml").write_text(CRIER, encoding="utf-8")
    return folder


@pytest.mark.parametrize("supergroup", [False, True], ids=["group", "supergroup"])
async def test_a_group_opens_with_a_group_only_greeting(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
    crier_dir: Path,
    supergroup: bool,
) -> None:
    manager = await make_manager(crier_dir, settings=ManagerSettings(default_character="crier"))
    await start_bot(manager)
    alice = tg.add_user("Alice", "alice")
    square = tg.group("Square", [alice], admins=[alice], supergroup=supergroup)

    tg.user_says(square, alice, "/start")

    await tg.wait_until(lambda: len(square.bot_messages()) == 2, timeout=WAIT)
    greeting, help_text = square.bot_messages()
    assert greeting.text == "Hear ye, Alice and all assembled!"
    assert "/persona" in help_text.text


async def test_a_private_chat_never_gets_a_group_only_greeting(
    tg: TelegramStandIn, make_manager: ManagerFactory, start_bot: BotFactory, crier_dir: Path
) -> None:
    manager = await make_manager(crier_dir, settings=ManagerSettings(default_character="crier"))
    await start_bot(manager)
    alice = tg.add_user("Alice", "alice")
    dm = tg.private_chat(alice)

    tg.user_says(dm, alice, "/start")
    await tg.wait_until(lambda: len(dm.bot_messages()) == 1, timeout=WAIT)
    tg.user_says(dm, alice, "/start")  # the greeting would come before the second help
    await tg.wait_until(lambda: len(dm.bot_messages()) == 2, timeout=WAIT)

    assert all("/persona" in message.text for message in dm.bot_messages())
