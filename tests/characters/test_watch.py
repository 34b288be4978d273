"""Live reload of character files, through the engine that uses them."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from bot.characters.loader import CharacterLoadError, load_characters
from bot.characters.watch import CharacterWatcher
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.llm.client import M2HerClient
from bot.llm.fake import FakeM2Her
from bot.storage import open_storage
from tests.conversation.conftest import RecordingSink, said

SHIPPED = Path(__file__).resolve().parents[2] / "characters"


def copy_characters(tmp_path: Path) -> Path:
    folder = tmp_path / "characters"
    shutil.copytree(SHIPPED, folder)
    return folder


def rename_aria(folder: Path, new_name: str) -> None:
    path = folder / "aria.yaml"
    text = path.read_text(encoding="utf-8").replace("name: Aria\n", f"name: {new_name}\n", 1)
    path.write_text(text, encoding="utf-8")


async def test_an_edit_takes_effect_and_a_broken_one_keeps_the_last_good(
    tmp_path: Path, fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    folder = copy_characters(tmp_path)
    storage = await open_storage(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    manager = ConversationManager(
        storage=storage,
        characters=load_characters(folder),
        client=m2her_client,
        settings=ManagerSettings(default_character="aria"),
    )
    errors: list[CharacterLoadError] = []

    async def heard(error: CharacterLoadError) -> None:
        errors.append(error)

    watcher = CharacterWatcher(folder, on_reload=manager.use_characters, interval=0.05)
    watcher.add_error_hook(heard)
    watching = asyncio.create_task(watcher.run())
    try:
        rename_aria(folder, "Arietta")
        async with asyncio.timeout(5):
            while manager.characters.get("aria").name != "Arietta":  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await manager.handle(said("hello"), RecordingSink())
        assert fake_m2her.requests[-1].body["messages"][0]["name"] == "Arietta"

        (folder / "aria.yaml").write_text("name: Arietta\ndescriptoin: oops\n", encoding="utf-8")
        async with asyncio.timeout(5):
            while not errors:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert "aria.yaml:2: descriptoin: unknown field" in str(errors[0])
        assert manager.characters.get("aria").name == "Arietta"  # the last good version
        await manager.handle(said("still there?"), RecordingSink())
        assert fake_m2her.requests[-1].body["messages"][0]["name"] == "Arietta"
    finally:
        watching.cancel()
        await storage.close()


async def test_unchanged_files_are_not_reloaded(tmp_path: Path) -> None:
    folder = copy_characters(tmp_path)
    loaded: list[object] = []
    watcher = CharacterWatcher(folder, on_reload=loaded.append)
    assert not await watcher.check()
    (folder / "pip.yaml").write_text("name: Pip\ndescription: A sprite.\n", encoding="utf-8")
    assert await watcher.check()
    assert not await watcher.check()
    assert len(loaded) == 1
