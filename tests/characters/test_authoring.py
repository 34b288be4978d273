"""Authoring mistakes show up in ``troupe check`` and at start, never in a user's chat."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from pathlib import Path

import pytest

from bot.app import open_engine
from bot.characters.budget import NEWEST_MESSAGE_TOKENS, Budget, CharacterTooLong, PromptTooLong
from bot.characters.library import CharacterLibrary
from bot.characters.loader import (
    CharacterLoadError,
    check_paths,
    load_character,
    read_characters,
)
from bot.characters.prompt import build_prompt, fixed_tokens, preview_body
from bot.characters.schema import Character
from bot.characters.watch import CharacterWatcher
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.llm.client import M2HerClient
from bot.settings import Settings
from bot.storage import open_storage
from tests.conversation.conftest import RecordingSink, said
from tests.test_cli import troupe

SHIPPED = Path(__file__).resolve().parents[2] / "characters"
BROKEN = "name: Pip\ndescriptoin: A sprite.\n"


def folder_with(tmp_path: Path, **files: str) -> Path:
    """The shipped characters plus ``files`` (name without ``.yaml`` → text)."""
    folder = tmp_path / "characters"
    shutil.copytree(SHIPPED, folder)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


def persona_of(tokens: int) -> str:
    """A description of about ``tokens`` estimated tokens (four ASCII letters a token)."""
    return "word " * (tokens * 4 // 5)


def environ(folder: Path, tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "TROUPE_CHARACTERS_DIR": str(folder),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        **more,
    }


# The token budget ------------------------------------------------------------------------


def test_check_warns_past_a_quarter_of_the_window_and_still_passes(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(f"name: Big\ndescription: {persona_of(2_500)}\n", encoding="utf-8")
    budget = Budget(context_window=8_000, max_completion_tokens=500)
    out = io.StringIO()
    assert check_paths([path], out, budget=budget) == 0
    assert f"warning: {path}: long: " in out.getvalue()
    assert "over a quarter of the 8,000-token window" in out.getvalue()
    assert "ok: 1 character (big)" in out.getvalue()
    quiet = io.StringIO()
    assert check_paths([path], quiet, budget=Budget()) == 0
    assert "warning" not in quiet.getvalue()


def test_check_fails_a_character_that_leaves_no_room_for_reply_and_newest_message(
    tmp_path: Path,
) -> None:
    budget = Budget(context_window=8_000, max_completion_tokens=500)
    # Fits the prompt alone, but not with the newest message beside it.
    tokens = budget.prompt_limit() - NEWEST_MESSAGE_TOKENS // 2
    path = tmp_path / "huge.yaml"
    path.write_text(f"name: Huge\ndescription: {persona_of(tokens)}\n", encoding="utf-8")
    character = load_character(path)
    assert fixed_tokens(character) <= budget.prompt_limit()
    out = io.StringIO()
    assert check_paths([path], out, budget=budget) == 1
    assert f"{path}: too long: " in out.getvalue()
    assert "over the 8,000-token window: cut at least" in out.getvalue()


def test_the_reply_reserved_is_the_characters_own(tmp_path: Path) -> None:
    budget = Budget(context_window=8_000, max_completion_tokens=500)
    tokens = budget.prompt_limit() - NEWEST_MESSAGE_TOKENS - 200
    text = f"name: Tall\ndescription: {persona_of(tokens)}\n"
    (tmp_path / "tall.yaml").write_text(text, encoding="utf-8")
    assert not read_characters(tmp_path, budget=budget).problems
    wordy = text + "generation:\n  max_completion_tokens: 2000\n"
    (tmp_path / "tall.yaml").write_text(wordy, encoding="utf-8")
    assert read_characters(tmp_path, budget=budget).problems


def test_a_character_too_big_is_never_loaded_so_no_chat_meets_it(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, huge=f"name: Huge\ndescription: {persona_of(70_000)}\n")
    report = read_characters(folder)
    assert "huge" not in report.library
    assert [p.path.name for p in report.problems] == ["huge.yaml"]
    assert set(report.library.ids()) == {"aria", "bram", "mara"}


async def test_a_character_that_outgrows_the_window_at_run_time_does_not_blame_the_user(
    tmp_path: Path, m2her_client: M2HerClient
) -> None:
    # Built in code, past the loader's check (as a learnt estimate could make a real one).
    huge = Character(id="huge", name="Huge", description=persona_of(70_000))
    with pytest.raises(CharacterTooLong):
        build_prompt(huge, [], user_name="Sam")
    storage = await open_storage(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        manager = ConversationManager(
            storage=storage, characters=CharacterLibrary([huge]), client=m2her_client
        )
        sink = RecordingSink()
        await manager.handle(said("hi"), sink)
        told = " ".join(sink.of("notice") + sink.of("finish"))
        assert CharacterTooLong.user_message in told
        assert "send something shorter" not in told
        # A message too long is still the message's.
        assert "send something shorter" in PromptTooLong.user_message
    finally:
        await storage.close()


# Broken files ----------------------------------------------------------------------------


def test_read_characters_keeps_the_good_files_and_names_each_broken_one(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, pip=BROKEN)
    report = read_characters(folder)
    assert set(report.library.ids()) == {"aria", "bram", "mara"}
    assert [str(p) for p in report.problems] == [
        f"{folder / 'pip.yaml'}:1: description: field required",
        f"{folder / 'pip.yaml'}:2: descriptoin: unknown field; did you mean 'description'?",
    ]


def test_a_duplicate_leaves_out_only_the_second_file(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, zed="id: aria\nname: Zed\ndescription: A copy.\n")
    report = read_characters(folder)
    assert report.library.get("aria").name == "Aria"
    assert "Zed" not in report.library
    assert [p.path.name for p in report.problems] == ["zed.yaml"]


async def test_the_engine_starts_with_the_good_characters_and_says_what_is_left_out(
    tmp_path: Path,
) -> None:
    folder = folder_with(tmp_path, pip=BROKEN)
    async with open_engine(Settings.from_environ(environ(folder, tmp_path))) as engine:
        assert engine.manager.characters.ids() == ["aria", "bram", "mara"]
        summary = engine.characters_summary()
    assert "Left out: 1 broken character file(s), until fixed:" in summary
    assert f"{folder / 'pip.yaml'}:2: descriptoin: unknown field" in summary


async def test_the_engine_refuses_to_start_when_every_file_is_broken(tmp_path: Path) -> None:
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "pip.yaml").write_text(BROKEN, encoding="utf-8")
    (folder / "bob.yaml").write_text("name: Bob\n", encoding="utf-8")
    with pytest.raises(CharacterLoadError) as caught:
        async with open_engine(Settings.from_environ(environ(folder, tmp_path))):
            pass
    assert "pip.yaml:2: descriptoin" in str(caught.value)
    assert "bob.yaml:1: description: field required" in str(caught.value)


def test_troupe_chat_starts_beside_a_broken_file_and_check_still_fails(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, pip=BROKEN)
    env = {"TROUPE_CHARACTERS_DIR": str(folder)}
    chat = troupe("chat", "aria", stdin="Hello!\n", tmp_path=tmp_path, env=env)
    assert chat.returncode == 0, chat.stderr
    assert f"{folder / 'pip.yaml'}:2: descriptoin" in chat.stdout
    assert "Hello!" in chat.stdout
    check = troupe("check", tmp_path=tmp_path, env=env)
    assert check.returncode == 1
    assert "pip.yaml:2: descriptoin" in check.stdout


async def test_start_up_problems_are_told_to_each_error_hook_as_it_is_added(
    tmp_path: Path,
) -> None:
    folder = folder_with(tmp_path, pip=BROKEN)
    report = read_characters(folder)
    watcher = CharacterWatcher(
        folder,
        on_reload=lambda library: None,
        interval=0.05,
        library=report.library,
        problems=report.error(),
    )
    heard: list[CharacterLoadError] = []

    async def hook(error: CharacterLoadError) -> None:
        heard.append(error)

    watching = asyncio.create_task(watcher.run())
    try:
        await asyncio.sleep(0.1)
        watcher.add_error_hook(hook)
        async with asyncio.timeout(5):
            while not heard:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert "pip.yaml:2: descriptoin" in str(heard[0])
        await asyncio.sleep(0.2)
        assert len(heard) == 1  # told once
    finally:
        watching.cancel()


async def test_a_good_edit_is_reloaded_while_another_file_stays_broken(tmp_path: Path) -> None:
    folder = folder_with(tmp_path)
    loaded: list[CharacterLibrary] = []
    start = read_characters(folder).library
    watcher = CharacterWatcher(folder, on_reload=loaded.append, library=start)
    bram = folder / "bram.yaml"
    bram.write_text(bram.read_text(encoding="utf-8") + "\ngenration: {}\n", encoding="utf-8")
    assert not await watcher.check()  # only a broken file changed: nothing to reload
    aria = folder / "aria.yaml"
    aria.write_text(
        aria.read_text(encoding="utf-8").replace("name: Aria\n", "name: Arietta\n", 1),
        encoding="utf-8",
    )
    assert await watcher.check()
    library = loaded[-1]
    assert library.get("aria").name == "Arietta"
    assert library.get("bram").name == "Bram Oakbarrel"  # its last good version


# The default character ------------------------------------------------------------------


async def test_a_file_added_while_running_never_takes_over_as_default(
    tmp_path: Path, m2her_client: M2HerClient
) -> None:
    folder = folder_with(tmp_path)
    storage = await open_storage(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        manager = ConversationManager(
            storage=storage,
            characters=read_characters(folder).library,
            client=m2her_client,
            settings=ManagerSettings(),
        )
        assert manager.default_character.id == "aria"
        watcher = CharacterWatcher(folder, on_reload=manager.use_characters)
        (folder / "abe.yaml").write_text("name: Abe\ndescription: First by id.\n", "utf-8")
        assert await watcher.check()
        assert "abe" in manager.characters
        assert manager.default_character.id == "aria"
        (folder / "aria.yaml").unlink()
        assert await watcher.check()
        assert manager.default_character.id == "abe"  # gone: the first by id
    finally:
        await storage.close()


async def test_the_default_and_why_are_printed_at_start(tmp_path: Path) -> None:
    folder = folder_with(tmp_path)
    async with open_engine(Settings.from_environ(environ(folder, tmp_path))) as engine:
        first = engine.characters_summary()
    assert first.splitlines()[0] == (
        "Characters: aria, bram, mara; default: aria "
        "(the first by id; set TROUPE_DEFAULT_CHARACTER to choose)."
    )
    configured = environ(folder, tmp_path, TROUPE_DEFAULT_CHARACTER="mara")
    async with open_engine(Settings.from_environ(configured)) as engine:
        chosen = engine.characters_summary()
    assert "default: mara (TROUPE_DEFAULT_CHARACTER)." in chosen


def test_troupe_chat_prints_the_default_character(tmp_path: Path) -> None:
    result = troupe("chat", stdin="Hello!\n", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "default: aria (the first by id" in result.stdout


# Preview and greetings -------------------------------------------------------------------


def test_preview_opens_with_the_greeting_a_new_conversation_picks(tmp_path: Path) -> None:
    aria = read_characters(SHIPPED).library.get("aria")
    result = troupe("preview", "aria", "--user", "Kit", "--greeting", "2", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = preview_body(aria, user="Kit", greeting=aria.greetings[1])
    assert json.loads(result.stdout) == expected
    opening = json.loads(result.stdout)["messages"][-2]
    assert opening == {
        "role": "assistant",
        "name": "Aria",
        "content": aria.render(aria.greetings[1], user="Kit"),
    }
    assert f"greeting 2 of {len(aria.greetings)}" in result.stderr

    picked = troupe("preview", "aria", "--user", "Kit", tmp_path=tmp_path)
    assert picked.returncode == 0, picked.stderr
    assert json.loads(picked.stdout) in [
        preview_body(aria, user="Kit", greeting=greeting) for greeting in aria.greetings
    ]
    assert "picked at random, as a new conversation does" in picked.stderr

    wrong = troupe("preview", "aria", "--greeting", "9", tmp_path=tmp_path)
    assert wrong.returncode == 1
    assert f"the character has {len(aria.greetings)} greeting(s)" in wrong.stderr


def test_group_only_greetings_open_group_chats_only(tmp_path: Path) -> None:
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "pip.yaml").write_text(
        "name: Pip\ndescription: A sprite.\ngreeting: Hi, {{user}}.\n"
        "group_only_greetings: ['Hello, everyone!']\n",
        encoding="utf-8",
    )
    pip = load_character(folder / "pip.yaml")
    assert pip.greetings_for(group=False) == ["Hi, {{user}}."]
    assert pip.greetings_for(group=True) == ["Hi, {{user}}.", "Hello, everyone!"]
    env = {"TROUPE_CHARACTERS_DIR": str(folder)}
    group = troupe("preview", "pip", "--group", "--greeting", "2", tmp_path=tmp_path, env=env)
    assert group.returncode == 0, group.stderr
    assert json.loads(group.stdout)["messages"][-2]["content"] == "Hello, everyone!"
    alone = troupe("preview", "pip", "--greeting", "2", tmp_path=tmp_path, env=env)
    assert alone.returncode == 1


# Avatars ---------------------------------------------------------------------------------


def test_an_avatar_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "characters"
    folder.mkdir()
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG")
    (folder / "face.png").symlink_to(secret)
    path = folder / "pip.yaml"
    path.write_text("name: Pip\ndescription: A sprite.\navatar: face.png\n", encoding="utf-8")
    with pytest.raises(CharacterLoadError) as caught:
        load_character(path)
    assert str(caught.value).startswith(
        f"{path}:3: avatar: must be a file inside the characters folder"
    )
    inside = folder / "img"
    inside.mkdir()
    (inside / "real.png").write_bytes(b"\x89PNG")
    (folder / "face.png").unlink()
    (folder / "face.png").symlink_to(inside / "real.png")
    assert load_character(path).avatar == "face.png"


async def test_a_configured_default_that_is_broken_stops_the_start_with_its_problems(
    tmp_path: Path,
) -> None:
    folder = folder_with(tmp_path, pip=BROKEN)
    configured = environ(folder, tmp_path, TROUPE_DEFAULT_CHARACTER="pip")
    with pytest.raises(CharacterLoadError, match=r"pip\.yaml:2: descriptoin"):
        async with open_engine(Settings.from_environ(configured)):
            pass
