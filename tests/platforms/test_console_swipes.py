"""Swipes in the terminal: /regen, /prev, /next and /continue on the engine, with a real
SQLite file and the fake M2-her; greetings' alternatives; limits, usage and restarts."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.characters.loader import load_characters
from bot.conversation import commands
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.conversation.policy import ChatPolicy, Limits, PolicyTree
from bot.llm.client import M2HerClient
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Reply
from bot.platforms.console import ConsoleChat
from bot.storage import Storage, open_storage
from tests.conversation.conftest import main_greeting
from tests.platforms.test_console_commands import said

CHARACTERS_DIR = Path(__file__).resolve().parents[2] / "characters"


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'chat.sqlite3'}"


@pytest.fixture
async def storage(database: str) -> AsyncIterator[Storage]:
    opened = await open_storage(database)
    yield opened
    await opened.close()


def engine(
    storage: Storage, client: M2HerClient, settings: ManagerSettings | None = None
) -> ConversationManager:
    return ConversationManager(
        storage=storage,
        characters=load_characters(CHARACTERS_DIR),
        client=client,
        settings=settings or ManagerSettings(default_character="aria"),
        choose_greeting=main_greeting,
    )


async def chat_with(manager: ConversationManager) -> tuple[ConsoleChat, io.StringIO]:
    out = io.StringIO()
    chat = ConsoleChat(manager, character="aria", user_name="Sam", out=out, confirm=False)
    await chat.start()
    return chat, out


async def history(storage: Storage) -> list[str]:
    conversation = await storage.conversation("console", "aria", default_character="aria")
    return [message.text for message in await storage.history_window(conversation.id, 100)]


def sent(fake: FakeM2Her) -> list[str]:
    """The history part of the newest request to the model."""
    messages = fake.requests[-1].body["messages"]
    return [str(m["content"]) for m in messages if m["role"] in ("user", "assistant")]


async def test_regen_prev_next_and_continue_change_the_last_reply_and_its_history(
    storage: Storage, m2her_client: M2HerClient, fake_m2her: FakeM2Her
) -> None:
    chat, out = await chat_with(engine(storage, m2her_client))
    fake_m2her.enqueue(Reply(text="First."), Reply(text="Second."), Reply(text="more."))
    assert await said(chat, out, "hello") == "Aria: First.\n"

    assert await said(chat, out, "/regen") == "Aria: Second.\n* 2/2 (/prev, /next, /regen)\n"
    assert "First." not in sent(fake_m2her)
    assert (await history(storage))[-2:] == ["hello", "Second."]
    assert await said(chat, out, "/prev") == "Aria: First.\n* 1/2 (/prev, /next, /regen)\n"
    assert (await history(storage))[-1] == "First."
    assert await said(chat, out, "/prev") == ""  # already the first: nothing changes
    assert await said(chat, out, "/next") == "Aria: Second.\n* 2/2 (/prev, /next, /regen)\n"
    continued = await said(chat, out, "/continue")
    assert continued == "Aria: Second. more.\n* 2/2 (/prev, /next, /regen)\n"
    assert sent(fake_m2her)[-2:] == ["hello", "Second."]
    assert (await history(storage))[-1] == "Second. more."

    # Every regeneration and continuation is a paid turn: its usage is recorded.
    usage = await said(chat, out, "/usage")
    assert "in 3 replies" in usage


async def test_next_past_the_last_alternative_writes_a_new_one(
    storage: Storage, m2her_client: M2HerClient, fake_m2her: FakeM2Her
) -> None:
    chat, out = await chat_with(engine(storage, m2her_client))
    fake_m2her.enqueue(Reply(text="A."), Reply(text="B."))
    await said(chat, out, "hello")
    assert await said(chat, out, "/next") == "Aria: B.\n* 2/2 (/prev, /next, /regen)\n"
    assert len(fake_m2her.requests) == 2


async def test_a_greetings_alternatives_are_the_characters_other_greetings(
    storage: Storage, m2her_client: M2HerClient, fake_m2her: FakeM2Her
) -> None:
    manager = engine(storage, m2her_client)
    aria = manager.characters.get("aria")
    first, other = (aria.render(greeting, user="Sam") for greeting in aria.greetings)
    chat, out = await chat_with(manager)
    assert out.getvalue().endswith(f"Aria: {first}\n* 1/2 (/prev, /next, /regen)\n")
    assert await said(chat, out, "/next") == f"Aria: {other}\n* 2/2 (/prev, /next, /regen)\n"
    assert await history(storage) == [other]
    # Regenerating a greeting shows the next one; no model call.
    assert await said(chat, out, "/regen") == f"Aria: {first}\n* 1/2 (/prev, /next, /regen)\n"
    assert fake_m2her.requests == []
    assert await said(chat, out, "/continue") == f"* {commands.GREETING_STAYS}\n"


async def test_nothing_to_swipe_and_limits_are_said_plainly(
    storage: Storage, m2her_client: M2HerClient, fake_m2her: FakeM2Her
) -> None:
    limited = PolicyTree(base=ChatPolicy(limits=Limits(user_messages_per_minute=1)))
    settings = ManagerSettings(default_character="aria", policy=limited)
    chat, out = await chat_with(engine(storage, m2her_client, settings))
    await said(chat, out, "/reset")
    assert await said(chat, out, "/regen") == f"* {commands.NOTHING_TO_SWIPE}\n"
    fake_m2her.enqueue(Reply(text="Only one."))
    await said(chat, out, "hello")
    refused = await said(chat, out, "/regen")
    assert refused.startswith("* You're writing faster than the characters can keep up")
    assert len(fake_m2her.requests) == 1
    assert (await history(storage))[-1] == "Only one."


async def test_a_new_engine_on_the_same_file_swipes_what_the_old_one_wrote(
    database: str, m2her_client: M2HerClient, fake_m2her: FakeM2Her
) -> None:
    fake_m2her.enqueue(Reply(text="Old."), Reply(text="New."))
    before = await open_storage(database)
    chat, out = await chat_with(engine(before, m2her_client))
    await said(chat, out, "hello")
    await said(chat, out, "/regen")
    await before.close()

    after = await open_storage(database)
    try:
        chat, out = await chat_with(engine(after, m2her_client))
        assert await said(chat, out, "/prev") == "Aria: Old.\n* 1/2 (/prev, /next, /regen)\n"
        assert (await history(after))[-1] == "Old."
    finally:
        await after.close()
