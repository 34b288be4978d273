"""Reading books: the YAML shape, card books (V2, V3, ``lorebook_v3``), SillyTavern world info,
world books in ``lorebooks/`` attached by characters, and the errors of broken ones."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from bot.characters.cards.export import card_json
from bot.characters.cards.v1v2v3 import read_card
from bot.characters.loader import check_paths, read_characters
from bot.characters.lore.formats import read_book_data
from bot.characters.lore.spec import Position, SelectiveLogic
from bot.characters.schema import Character

CARD_BOOK: dict[str, Any] = {
    "name": "Port Ash",
    "scan_depth": 5,
    "token_budget": 300,
    "recursive_scanning": True,
    "extensions": {},
    "entries": [
        {
            "keys": ["Vance"],
            "content": "Vance smuggles rum.",
            "extensions": {
                "position": 4,
                "depth": 2,
                "role": 1,
                "selectiveLogic": 3,
                "match_whole_words": True,
                "scan_depth": None,
            },
            "enabled": True,
            "insertion_order": 10,
            "selective": True,
            "secondary_keys": ["rum"],
            "constant": False,
            "position": "after_char",
            "comment": "the smuggler",
            "case_sensitive": True,
        },
        {
            "keys": ["fog"],
            "content": "@@depth 0\n@@role assistant\nThe fog.",
            "enabled": True,
            "insertion_order": 20,
            "use_regex": False,
            "selective": False,
            "secondary_keys": ["ignored"],
            "priority": 7,
        },
    ],
}


def test_a_card_book_maps_sillytaverns_extensions() -> None:
    reading = read_book_data(CARD_BOOK, "port")
    assert reading.problems == []
    assert reading.book is not None
    book = reading.book
    assert (book.name, book.scan_depth, book.token_budget, book.recursive_scanning) == (
        "Port Ash",
        5,
        300,
        True,
    )
    vance, fog = book.entries
    assert vance.label == "the smuggler"
    assert (vance.position, vance.depth, vance.role) == (Position.DEPTH, 2, "user")
    assert vance.logic is SelectiveLogic.AND_ALL
    assert [k.text for k in vance.secondary_keys] == ["rum"]
    assert vance.keys[0].whole_words
    assert vance.keys[0].case_sensitive
    assert (fog.position, fog.depth, fog.role, fog.priority) == (Position.DEPTH, 0, "assistant", 7)
    assert fog.content == "The fog."
    assert fog.secondary_keys == ()


def test_a_lorebook_v3_export_and_a_sillytavern_world_info_file() -> None:
    wrapped = read_book_data({"spec": "lorebook_v3", "data": CARD_BOOK}, "port")
    assert wrapped.book is not None
    assert len(wrapped.book.entries) == 2
    world_info = {
        "entries": {
            "0": {
                "uid": 0,
                "key": ["Ash"],
                "keysecondary": ["rain"],
                "selective": True,
                "selectiveLogic": 2,
                "content": "Port Ash.",
                "order": 5,
                "position": 0,
                "disable": True,
                "caseSensitive": None,
                "matchWholeWords": True,
                "scanDepth": 3,
            }
        }
    }
    reading = read_book_data(world_info, "wi")
    assert reading.book is not None
    (entry,) = reading.book.entries
    assert (entry.logic, entry.insertion_order, entry.position) == (
        SelectiveLogic.NOT_ANY,
        5,
        Position.BEFORE_CHAR,
    )
    assert (entry.enabled, entry.scan_depth, entry.keys[0].whole_words) == (False, 3, True)


def test_a_broken_card_book_names_the_json_path_of_the_field() -> None:
    broken = {
        "entries": [
            {"keys": "Vance", "content": "x"},
            {"content": "y", "extensions": {"depth": "deep"}},
        ]
    }
    reading = read_book_data(broken, "b")
    assert reading.book is None
    paths = {".".join(map(str, loc)) for loc, _ in reading.problems}
    assert paths == {"entries.0.keys", "entries.1.extensions.depth"}
    world_info = read_book_data({"entries": {"7": {"key": ["a"], "content": 3}}}, "w")
    assert [loc for loc, _ in world_info.problems] == [("entries", "7", "content")]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_characters_use_their_own_book_their_cards_and_world_books(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mara.yaml",
        "name: Mara\ndescription: A detective.\nworld_books: [harbour, wi]\n"
        "lorebook:\n  entries:\n    - keys: [Vance]\n      content: Own.\n"
        f"card:\n  character_book: {json.dumps(CARD_BOOK)}\n",
    )
    write(
        tmp_path,
        "lorebooks/harbour.yaml",
        "name: The Harbour\nentries:\n  - {keys: [tide], content: Tides.}\n",
    )
    write(
        tmp_path,
        "lorebooks/wi.json",
        json.dumps({"entries": {"0": {"key": ["x"], "content": "X."}}}),
    )
    card = {
        "spec": "chara_card_v2",
        "data": {"name": "Pip", "description": "A sprite.", "character_book": CARD_BOOK},
    }
    write(tmp_path, "pip.json", json.dumps(card))
    report = read_characters(tmp_path)
    assert report.problems == []
    mara = report.library.get("mara")
    assert [book.id for book in mara.lorebooks] == ["mara", "mara (card)", "harbour", "wi"]
    assert report.library.get("pip").lorebooks[0].name == "Port Ash"
    assert set(report.library.books) == {"harbour", "wi"}
    assert report.library.books["harbour"].name == "The Harbour"


def test_broken_books_and_missing_world_books_name_file_line_and_field(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mara.yaml",
        "name: Mara\ndescription: A detective.\nworld_books: [harbour, nowhere]\n"
        "lorebook:\n  entries:\n    - keys: [Vance]\n      depth: -1\n      content: Own.\n",
    )
    write(tmp_path, "lorebooks/harbour.yaml", "entries:\n  - keys: [tide]\n    contnt: Tides.\n")
    write(tmp_path, "lorebooks/broken.json", '{"entries": [')
    out = io.StringIO()
    assert check_paths([tmp_path], out) == 1
    text = out.getvalue()
    assert (
        f"{tmp_path}/mara.yaml:7: lorebook.entries[0].depth: "
        "input should be greater than or equal to 0" in text
    )
    assert f"{tmp_path}/lorebooks/harbour.yaml:3: entries[0].contnt: unknown field" in text
    assert f"{tmp_path}/lorebooks/broken.json:1: invalid JSON" in text
    # A character whose world book is broken or missing is broken too, at its line.
    write(
        tmp_path,
        "mara.yaml",
        "name: Mara\ndescription: A detective.\nworld_books: [harbour, nowhere]\n",
    )
    out = io.StringIO()
    check_paths([tmp_path], out)
    text = out.getvalue()
    assert (
        "mara.yaml:3: world_books[0]: world book 'harbour' has problems "
        f"(see {tmp_path}/lorebooks/harbour.yaml)" in text
    )
    assert "mara.yaml:3: world_books[1]: no world book 'nowhere' in" in text


def test_check_lists_unsupported_decorators_and_bad_regexes_as_warnings(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mara.yaml",
        "name: Mara\ndescription: A detective.\nlorebook:\n  entries:\n"
        "    - keys: ['/(open/']\n"
        '      content: "@@is_greeting 1\\n@@@keep_activate_after_match\\nText"\n',
    )
    out = io.StringIO()
    assert check_paths([tmp_path], out) == 0
    text = out.getvalue()
    assert "mara.yaml:5: lorebook.entries[0].keys[0]: invalid regular expression '/(open/'" in text
    assert (
        "mara.yaml:6: lorebook.entries[0].content: unsupported decorator(s) kept but ignored: "
        "@@is_greeting 1" in text
    )


def test_a_yaml_lorebook_survives_export_and_import_as_a_card() -> None:
    mara = Character.model_validate(
        {
            "name": "Mara",
            "description": "A detective.",
            "world_books": ["port-sable"],
            "lorebook": {"entries": [{"keys": ["Vance"], "content": "x", "position": "depth"}]},
        }
    )
    again = Character.model_validate(read_card(card_json(mara)).fields)
    assert again.lorebook == mara.lorebook
    assert again.world_books == ["port-sable"]
