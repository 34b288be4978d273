"""Lore in real turns: world books attached to a character and to a channel (stored with the
chat's settings), the turn count the decorators see, and live reload of book files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.characters.loader import load_characters
from bot.characters.watch import CharacterWatcher
from bot.conversation import commands
from bot.conversation.commands import Caller
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.conversation.policy import ChatPolicy, PolicyTree
from bot.conversation.trigger import TriggerSettings
from bot.errors import BadCommandWords, NotAllowed
from bot.llm.client import M2HerClient
from bot.llm.fake import FakeM2Her
from bot.storage import Storage, open_storage
from tests.conversation.conftest import KEY, RecordingSink, said

MARA = "name: Mara\ndescription: A detective.\n"
HARBOUR = (
    "name: The Harbour\nscan_depth: 1\n"
    "entries:\n  - {keys: [tide], content: The tide turns at six.}\n"
)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    opened = await open_storage(f"sqlite+aiosqlite:///{tmp_path / 'lore.sqlite3'}")
    yield opened
    await opened.close()


def folder(tmp_path: Path, character: str = MARA, harbour: str = HARBOUR) -> Path:
    characters = tmp_path / "characters"
    (characters / "lorebooks").mkdir(parents=True, exist_ok=True)
    (characters / "mara.yaml").write_text(character)
    (characters / "lorebooks" / "harbour.yaml").write_text(harbour)
    return characters


def manager_for(
    characters: Path, storage: Storage, client: M2HerClient, **settings: Any
) -> ConversationManager:
    return ConversationManager(
        storage=storage,
        characters=load_characters(characters),
        client=client,
        settings=ManagerSettings(default_character="mara", **settings),
    )


async def system_of_next_turn(manager: ConversationManager, fake: FakeM2Her, text: str) -> str:
    await manager.handle(said(text), RecordingSink())
    return str(fake.requests[-1].body["messages"][0].get("content", ""))


async def test_a_characters_world_book_joins_its_turns(
    tmp_path: Path, storage: Storage, fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    characters = folder(tmp_path, MARA + "world_books: [harbour]\n")
    manager = manager_for(characters, storage, m2her_client)
    assert "The tide turns at six." in await system_of_next_turn(manager, fake_m2her, "the tide?")
    assert "tide turns" not in await system_of_next_turn(manager, fake_m2her, "hello")


async def test_admins_attach_world_books_to_a_chat(
    tmp_path: Path, storage: Storage, fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    answer_all = PolicyTree(base=ChatPolicy(trigger=TriggerSettings(answer_all=True)))
    manager = manager_for(folder(tmp_path), storage, m2her_client, policy=answer_all)
    admin = Caller(KEY, "sam")

    async def no() -> bool:
        return False

    member = Caller(KEY, "bob", no, "Only the keepers can do that.")
    assert await commands.chat_lorebooks(manager, member) == (
        "World books in this chat: none.\nAvailable: harbour (The Harbour)."
    )
    with pytest.raises(NotAllowed, match="Only the keepers"):
        await commands.chat_lorebooks(manager, member, ["add", "harbour"])
    with pytest.raises(BadCommandWords, match="No world book 'atlantis' \\(known: harbour\\)"):
        await commands.chat_lorebooks(manager, admin, ["add", "atlantis"])
    assert "tide turns" not in await system_of_next_turn(manager, fake_m2her, "the tide?")
    assert await commands.chat_lorebooks(manager, admin, ["add", "The Harbour"]) == (
        "World books in this chat: harbour (The Harbour).\nAvailable: no other."
    )
    assert "The tide turns at six." in await system_of_next_turn(manager, fake_m2her, "tide?")
    # Stored beside the trigger rules: changing one keeps the other, and a chat whose admins
    # only attached books keeps the rules of troupe.yaml.
    assert (await manager.policies.chat_settings(KEY)).answer_all is True
    await manager.policies.set_chat_settings(KEY, TriggerSettings(follow_up_seconds=5))
    assert await manager.policies.chat_lorebooks(KEY) == ("harbour",)
    later = manager_for(folder(tmp_path), storage, m2her_client)
    assert await later.policies.chat_lorebooks(KEY) == ("harbour",)
    assert (await later.policies.chat_settings(KEY)).follow_up_seconds == 5
    await commands.chat_lorebooks(manager, admin, ["remove", "harbour"])
    assert "tide turns" not in await system_of_next_turn(manager, fake_m2her, "the tide?")


async def test_activate_only_every_counts_replies_in_the_window(
    tmp_path: Path, storage: Storage, fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    lore = (
        "lorebook:\n  entries:\n    - constant: true\n"
        '      content: "@@activate_only_every 2\\nEvery other turn."\n'
    )
    manager = manager_for(folder(tmp_path, MARA + lore), storage, m2her_client)
    seen = [
        "Every other turn." in await system_of_next_turn(manager, fake_m2her, f"turn {n}")
        for n in range(4)
    ]
    assert seen == [True, False, True, False]  # 0, 1, 2, 3 replies so far
    # Once the window cannot hold the whole conversation, the count is unknown: it fires.
    short = manager_for(folder(tmp_path, MARA + lore), storage, m2her_client, history_limit=4)
    assert "Every other turn." in await system_of_next_turn(short, fake_m2her, "turn 4")
    assert "Every other turn." in await system_of_next_turn(short, fake_m2her, "turn 5")


async def test_book_edits_reload_and_a_broken_one_keeps_the_last_good(
    tmp_path: Path, storage: Storage, fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    characters = folder(tmp_path, MARA + "world_books: [harbour]\n")
    manager = manager_for(characters, storage, m2her_client)
    watcher = CharacterWatcher(
        characters, on_reload=manager.use_characters, library=manager.characters
    )
    told: list[str] = []

    async def tell(error: Exception) -> None:
        told.append(str(error))

    watcher.add_error_hook(tell)
    book = characters / "lorebooks" / "harbour.yaml"
    book.write_text(HARBOUR.replace("six", "seven"))
    assert await watcher.check() is True
    assert "at seven." in await system_of_next_turn(manager, fake_m2her, "the tide?")
    book.write_text("entries:\n  - keys: tide\n    content: x\n")
    await watcher.check()
    assert f"{book}:2: entries[0].keys: input should be a valid list" in told[0]
    assert "at seven." in await system_of_next_turn(manager, fake_m2her, "the tide?")
