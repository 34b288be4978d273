"""The terminal's commands on the shared command layer: its confirmation step, its refusals."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.characters.loader import load_characters
from bot.characters.prompt import MEMORY_NAME
from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.conversation.nudges import NudgeDefaults
from bot.llm.client import M2HerClient
from bot.llm.fake import FakeM2Her
from bot.platforms.console import ConsoleChat
from bot.storage import Storage, open_storage
from tests.conversation.nudging import ahead, settle

CHARACTERS_DIR = Path(__file__).resolve().parents[2] / "characters"


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    opened = await open_storage(f"sqlite+aiosqlite:///{tmp_path / 'chat.sqlite3'}")
    yield opened
    await opened.close()


@pytest.fixture
def manager(storage: Storage, m2her_client: M2HerClient) -> ConversationManager:
    return ConversationManager(
        storage=storage,
        characters=load_characters(CHARACTERS_DIR),
        client=m2her_client,
        settings=ManagerSettings(default_character="aria"),
    )


async def chat_with(
    manager: ConversationManager, *, confirm: bool
) -> tuple[ConsoleChat, io.StringIO]:
    out = io.StringIO()
    chat = ConsoleChat(manager, character="aria", user_name="Sam", out=out, confirm=confirm)
    await chat.start()
    return chat, out


async def said(chat: ConsoleChat, out: io.StringIO, line: str) -> str:
    """What the terminal shows in answer to ``line``."""
    shown = len(out.getvalue())
    assert await chat.handle_line(line + "\n")
    return out.getvalue()[shown:]


async def history(storage: Storage) -> int:
    conversation = await storage.conversation("console", "aria", default_character="aria")
    return len(await storage.history_window(conversation.id, 100))


async def test_on_a_terminal_reset_and_forget_ask_first(
    manager: ConversationManager, storage: Storage
) -> None:
    chat, out = await chat_with(manager, confirm=True)
    await said(chat, out, "remember me")
    assert await history(storage) == 3  # the greeting, the message, the reply
    asked = await said(chat, out, "/reset")
    assert asked == (
        "* Forget this whole conversation with Aria? This cannot be undone. "
        "Type yes to confirm; anything else cancels.\n"
    )
    assert await said(chat, out, "no") == "* Cancelled; nothing was changed.\n"
    assert await history(storage) == 3
    await said(chat, out, "/reset")
    assert await said(chat, out, "yes") == "* Conversation reset (3 messages forgotten).\n"
    assert await history(storage) == 0

    await said(chat, out, "/persona a courier")
    assert (await said(chat, out, "/forget")).startswith("* Erase everything stored about you")
    assert await manager.users.persona("console", "Sam") == "a courier"
    assert (await said(chat, out, "YES")).startswith("* Erased 0 messages, 1 persona,")
    assert await manager.users.persona("console", "Sam") is None


async def test_from_a_pipe_they_act_at_once(manager: ConversationManager, storage: Storage) -> None:
    chat, out = await chat_with(manager, confirm=False)
    await said(chat, out, "remember me")
    assert await said(chat, out, "/reset") == "* Conversation reset (3 messages forgotten).\n"
    assert await history(storage) == 0


async def test_refusals_are_shown_and_the_chat_goes_on(manager: ConversationManager) -> None:
    chat, out = await chat_with(manager, confirm=True)
    too_long = await said(chat, out, "/persona " + "x" * 1001)
    assert too_long == "* A persona can be at most 1000 characters; this one has 1001.\n"
    assert await manager.users.persona("console", "Sam") is None
    assert "did you mean 'bram'" in await said(chat, out, "/character bramm")
    assert await said(chat, out, "/scene bram") == "* Bram Oakbarrel joins the scene.\n"
    assert "Aria is the main character here" in await said(chat, out, "/scene aria")
    assert await said(chat, out, "/character") == (
        "* Main character: Aria. Also in the scene: Bram Oakbarrel.\nAvailable: Mara Quill.\n"
    )
    assert await said(chat, out, "/scene Bram Oakbarrel") == "* Bram Oakbarrel leaves the scene.\n"
    assert [c.id for c in await manager.scene(ConversationKey("console", "aria"))] == ["aria"]


async def test_usage_of_the_user_and_the_conversation(manager: ConversationManager) -> None:
    chat, out = await chat_with(manager, confirm=True)
    assert await said(chat, out, "/usage") == (
        "* You: 0 tokens in 0 replies (≈ $0.0000)\n"
        "This conversation: 0 tokens in 0 replies (≈ $0.0000)\n"
    )
    await said(chat, out, "count this")
    shown = await said(chat, out, "/usage")
    assert shown.startswith("* You: ")
    assert shown.count(" in 1 reply (≈ $") == 2


async def test_nudges_on_in_the_terminal_lets_the_character_speak_first(
    storage: Storage, m2her_client: M2HerClient
) -> None:
    clock = ahead(12)
    manager = ConversationManager(
        storage=storage,
        characters=load_characters(CHARACTERS_DIR),
        client=m2her_client,
        settings=ManagerSettings(
            default_character="aria",
            nudges=NudgeDefaults(quiet_minutes=30, quiet_hours="off", max_per_day=2),
        ),
        now=clock,
    )
    chat, out = await chat_with(manager, confirm=True)
    try:
        assert "/nudges on|off" in await said(chat, out, "/help")
        await said(chat, out, "Is the lamp lit?")
        answer = await said(chat, out, "/nudges on")
        assert "Characters may speak first here." in answer
        assert "After 30 minutes without a message, a character opens a topic." in answer
        clock.advance(minutes=29)
        await settle(manager)
        assert out.getvalue().count("Aria heard Sam") == 1  # the reply alone
        shown = len(out.getvalue())
        clock.advance(minutes=1)
        await settle(manager)
        assert out.getvalue()[shown:].startswith("Aria: Aria heard Sam: “Is the lamp lit?”")
        assert "At most 2 a day; 1 so far today." in await said(chat, out, "/nudges")
    finally:
        await manager.aclose()


async def test_memory_is_shown_corrected_and_forgotten_in_the_terminal(
    storage: Storage, m2her_client: M2HerClient, fake_m2her: FakeM2Her
) -> None:
    manager = ConversationManager(
        storage=storage,
        characters=load_characters(CHARACTERS_DIR),
        client=m2her_client,
        settings=ManagerSettings(default_character="aria", history_limit=4),
    )
    chat, out = await chat_with(manager, confirm=False)
    assert await said(chat, out, "/memory") == (
        "* Aria remembers nothing beyond the conversation itself yet.\n"
    )
    for line in ("I'm a nurse, call me Sam.", "two", "three"):
        await said(chat, out, line)
    await manager.recall.settled()
    shown = await said(chat, out, "/memory")
    assert shown.startswith("* What Aria remembers of the story so far:\n1. Lines remembered: ")
    assert shown.endswith(
        "What Aria knows about you:\n2. is a nurse\n3. wants to be called Sam\n"
        "/memory forget N deletes item N; /memory fix N text corrects it.\n"
    )
    assert await said(chat, out, "/memory fix 2 is a night-shift nurse") == (
        "* Item 2 now reads: is a night-shift nurse\n"
    )
    assert await said(chat, out, "/memory forget 3") == "* Aria no longer remembers item 3.\n"
    assert await said(chat, out, "/memory forget 1") == "* Aria no longer remembers item 1.\n"
    assert await said(chat, out, "/memory") == (
        "* What Aria knows about you:\n1. is a night-shift nurse\n"
        "/memory forget N deletes item N; /memory fix N text corrects it.\n"
    )
    assert (
        await said(chat, out, "/memory forget 7") == "* There is no item 7; /memory lists them.\n"
    )
    assert await said(chat, out, "/memory remember 1") == (
        "* Use /memory, /memory forget N or /memory fix N new text.\n"
    )
    # What the next request carries is the corrected memory.
    await said(chat, out, "four")
    sent = fake_m2her.requests[-1].body["messages"]
    memory = next(m for m in sent if m.get("name") == MEMORY_NAME)
    assert (
        memory["content"] == "What Aria knows about the people here:\n- Sam: is a night-shift nurse"
    )

    await manager.recall.settled()
    await said(chat, out, "/reset")
    assert await said(chat, out, "/memory") == (
        "* Aria remembers nothing beyond the conversation itself yet.\n"
    )
