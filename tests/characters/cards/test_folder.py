"""Cards dropped into the characters folder load like YAML files, and reload live."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bot.characters import CharacterLibrary, CharacterLoadError, load_character, load_characters
from bot.characters.watch import CharacterWatcher
from tests.characters.cards.helpers import CORPUS

SHIPPED = Path(__file__).resolve().parents[3] / "characters"


def problems_of(*paths: Path) -> list[str]:
    with pytest.raises(CharacterLoadError) as caught:
        load_characters(*paths)
    return [str(problem) for problem in caught.value.problems]


def test_every_kind_of_card_loads_beside_yaml_files(tmp_path: Path) -> None:
    shutil.copytree(SHIPPED, tmp_path, dirs_exist_ok=True)  # with aria.png, an avatar, and a schema
    shutil.copy(CORPUS / "v1_root_only.json", tmp_path / "tom.json")
    shutil.copy(CORPUS / "v2_ztxt.png", tmp_path / "seraphina.png")
    shutil.copy(CORPUS / "v3.charx", tmp_path / "kestrel.charx")
    library = load_characters(tmp_path)
    assert library.ids() == ["aria", "bram", "kestrel", "mara", "seraphina", "tom"]
    seraphina = library.get("Seraphina")
    assert seraphina.avatar_file == tmp_path / "seraphina.png"  # a PNG card is its own picture
    assert seraphina.card["character_book"]["name"] == "Eldoria"
    assert library.get("kestrel").nicknames == ["Captain"]


def test_a_card_named_on_the_command_line_loads(tmp_path: Path) -> None:
    assert load_character(CORPUS / "v2_with_book.json").name == "Seraphina"


def test_card_problems_name_the_file_and_the_json_path(tmp_path: Path) -> None:
    card = json.loads((CORPUS / "v2_with_book.json").read_text(encoding="utf-8"))
    card["data"]["tags"] = ["fine", 7]
    card["data"]["name"] = "two\nlines"
    card["data"]["extensions"]["troupe"] = {"generation": {"temperature": 3}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(card), encoding="utf-8")
    assert problems_of(path) == [
        f"{path}: data.name: must be one line without control characters, got 'two\\nlines'",
        f"{path}: data.extensions.troupe.generation.temperature: "
        "input should be less than or equal to 1, got 3",
        f"{path}: data.tags[1]: input should be a valid string, got 7",
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.json", b"{oops", "invalid JSON: Expecting property name enclosed in double quotes"),
        ("b.charx", b"PK\x03\x04junk", "not a CHARX (zip) file"),
        ("c.json", b'{"spec": "chara_card_v2", "data": 5}', "data: a 'chara_card_v2' card needs"),
        ("d.json", b'{"name": "D"}', "description: field required"),
    ],
)
def test_broken_cards_say_what_is_wrong(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: {message}")


def test_a_png_without_a_card_is_an_avatar_not_a_character(tmp_path: Path) -> None:
    shutil.copy(SHIPPED / "aria.png", tmp_path / "picture.png")
    assert problems_of(tmp_path) == [
        f"{tmp_path}: no character files "
        "(*.yaml, *.yml, *.png, *.apng, *.json, *.charx) in this folder"
    ]
    assert problems_of(tmp_path / "picture.png") == [
        f"{tmp_path / 'picture.png'}: "
        "this PNG carries no character card (no 'ccv3' or 'chara' chunk)"
    ]


def test_a_newer_spec_version_warns_and_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    card = json.loads((CORPUS / "v3_assets_decorators.json").read_text(encoding="utf-8"))
    card["spec_version"] = "3.5"
    card["data"]["x_future_field"] = {"kept": True}
    path = tmp_path / "future.json"
    path.write_text(json.dumps(card), encoding="utf-8")
    character = load_character(path)
    assert character.card["x_future_field"] == {"kept": True}
    assert "spec_version 3.5 is newer than 3.0" in caplog.text


async def test_a_card_dropped_in_reloads_live(tmp_path: Path) -> None:
    shutil.copy(SHIPPED / "aria.yaml", tmp_path)
    shutil.copy(SHIPPED / "aria.png", tmp_path)
    libraries: list[CharacterLibrary] = []
    watcher = CharacterWatcher(tmp_path, on_reload=libraries.append)
    shutil.copy(CORPUS / "v2_ztxt.png", tmp_path / "seraphina.png")
    assert await watcher.check()
    assert libraries[-1].ids() == ["aria", "seraphina"]
    edited = json.loads((CORPUS / "v1_root_only.json").read_text(encoding="utf-8"))
    (tmp_path / "tom.json").write_text(json.dumps(edited), encoding="utf-8")
    assert await watcher.check()
    edited["name"] = "Young Tom"
    (tmp_path / "tom.json").write_text(json.dumps(edited), encoding="utf-8")
    os.utime(tmp_path / "tom.json", ns=(1, 1))  # a new modification time, whatever the clock
    assert await watcher.check()
    assert libraries[-1].get("tom").name == "Young Tom"
