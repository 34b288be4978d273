"""Engine fixtures: each database backend, the shipped characters, the fake M2-her on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.characters.loader import CharacterLibrary, load_characters
from bot.characters.schema import Character
from bot.conversation.incoming import ConversationKey, Incoming
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.llm.client import M2HerClient
from bot.llm.fake import FakeM2Her
from bot.storage import Storage, open_storage

CHARACTERS_DIR = Path(__file__).resolve().parents[2] / "characters"
KEY = ConversationKey("test", "room-1")


@dataclass
class RecordingSink:
    """A ReplySink that remembers every call, in order."""

    events: list[tuple[str, Any]] = field(default_factory=list)

    async def begin(self, character: Character) -> None:
        self.events.append(("begin", character.id))

    async def delta(self, text: str) -> None:
        self.events.append(("delta", text))

    async def finish(self, text: str) -> Sequence[str]:
        self.events.append(("finish", text))
        return [f"platform-{len(self.events)}"]

    async def retract(self, replacement: str | None = None) -> None:
        self.events.append(("retract", replacement))

    async def notice(self, text: str) -> None:
        self.events.append(("notice", text))

    def of(self, kind: str) -> list[Any]:
        return [value for event, value in self.events if event == kind]


def main_greeting(greetings: Sequence[str]) -> str:
    """The greeting chooser of the engines here: the character's main ``greeting``."""
    return greetings[0]


def said(
    text: str,
    *,
    author: str = "sam",
    name: str | None = None,
    key: ConversationKey = KEY,
    **facts: Any,
) -> Incoming:
    """A direct message (answered by default) from ``author``."""
    facts.setdefault("is_direct", True)
    return Incoming(
        key=key, author_id=author, author_name=name or author.title(), text=text, **facts
    )


@dataclass
class Engine:
    manager: ConversationManager
    storage: Storage
    fake: FakeM2Her
    characters: CharacterLibrary


EngineFactory = Callable[..., Awaitable[Engine]]


@pytest.fixture
async def make_engine(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient, database_url: str
) -> AsyncIterator[EngineFactory]:
    """Builds engines on one database; several calls simulate restarts of the process."""
    opened: list[Storage] = []

    async def make(settings: ManagerSettings | None = None, **kwargs: Any) -> Engine:
        storage = await open_storage(database_url)
        opened.append(storage)
        characters = load_characters(CHARACTERS_DIR)
        kwargs.setdefault("choose_greeting", main_greeting)
        manager = ConversationManager(
            storage=storage,
            characters=characters,
            client=m2her_client,
            settings=settings or ManagerSettings(default_character="aria"),
            **kwargs,
        )
        return Engine(manager, storage, fake_m2her, characters)

    yield make
    for storage in opened:
        await storage.close()


@pytest.fixture
async def engine(make_engine: EngineFactory) -> Engine:
    return await make_engine()
