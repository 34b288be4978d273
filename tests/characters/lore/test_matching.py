"""Which entries fire: keys, secondary keys, regexes, case, whole words, constant, enabled,
scan depth, the V3 decorators and recursive scanning."""

from __future__ import annotations

import random

import pytest

from bot.characters.lore.decorators import split_decorators
from bot.characters.lore.keys import KeyIndex, ScanText, compile_key
from bot.characters.lore.select import MAX_RECURSION, Turns
from tests.characters.lore.helpers import book, fired


def test_a_key_anywhere_in_the_scanned_messages_fires_its_entry() -> None:
    lore = book({"keys": ["Vance", "the captain"], "content": "A smuggler."})
    assert fired(lore, "Sam: Have you seen the Captain?") == {"e0": "key 'the captain'"}
    assert fired(lore, "Sam: Nobody here.") == {}


def test_keys_match_inside_words_unless_whole_words_are_asked() -> None:
    inside = book({"keys": ["cat"], "content": "Cats."})
    whole = book({"keys": ["cat", "black dog"], "match_whole_words": True, "content": "A cat."})
    assert fired(inside, "Sam: concatenate") == {"e0": "key 'cat'"}
    assert fired(whole, "Sam: concatenate") == {}
    assert fired(whole, "Sam: the cat, sleeping") == {"e0": "key 'cat'"}
    assert fired(whole, "Sam: a black dogma") == {}
    assert fired(whole, "Sam: a Black Dog!") == {"e0": "key 'black dog'"}


def test_letter_case_matters_only_for_case_sensitive_entries() -> None:
    lore = book(
        {"keys": ["Rook"], "case_sensitive": True, "content": "The spy."},
        {"keys": ["Rook"], "content": "The bird."},
    )
    assert fired(lore, "Sam: a rook on the roof") == {"e1": "key 'Rook'"}
    assert set(fired(lore, "Sam: Rook said so")) == {"e0", "e1"}


def test_regex_keys_written_as_slashes_or_with_use_regex() -> None:
    lore = book(
        {"keys": ["/ship(s|wreck)?\\b/i"], "content": "Ships."},
        {"keys": ["^Sam: no+$"], "use_regex": True, "content": "Refusal."},
        {"keys": ["/[unclosed/"], "content": "Never."},
    )
    assert set(fired(lore, "Sam: a SHIPWRECK!")) == {"e0"}
    assert set(fired(lore, "Sam: nooo")) == {"e1"}


@pytest.mark.parametrize(
    ("logic", "text", "fires"),
    [
        ("and_any", "Vance at the docks", True),
        ("and_any", "Vance at home", False),
        ("and_all", "Vance at the docks at night", True),
        ("and_all", "Vance at the docks", False),
        ("not_any", "Vance at home", True),
        ("not_any", "Vance at night", False),
        ("not_all", "Vance at the docks", True),
        ("not_all", "Vance at the docks at night", False),
    ],
)
def test_secondary_keys_follow_the_selective_logic(logic: str, text: str, fires: bool) -> None:
    lore = book(
        {
            "keys": ["Vance"],
            "secondary_keys": ["docks", "night"],
            "selective_logic": logic,
            "content": "Vance.",
        }
    )
    assert bool(fired(lore, f"Sam: {text}")) is fires


def test_constant_entries_always_fire_and_disabled_ones_never() -> None:
    lore = book(
        {"constant": True, "content": "Rain."},
        {"keys": ["rain"], "enabled": False, "content": "Off."},
    )
    assert fired(lore, "Sam: rain") == {"e0": "constant"}


def test_only_the_newest_scan_depth_messages_are_scanned() -> None:
    lore = book(
        {"keys": ["Vance"], "content": "The book's depth."},
        {"keys": ["Vance"], "scan_depth": 3, "content": "Its own depth."},
        {"keys": ["Vance"], "content": "@@scan_depth 4\nThe decorator's depth."},
        scan_depth=1,
    )
    history = ["Sam: Vance?", "Mara: who?", "Sam: hm", "Mara: no"]
    assert set(fired(lore, *history)) == {"e2"}
    assert set(fired(lore, *history[1:], "Sam: x")) == set()
    assert set(fired(lore, *history[2:], "Mara: Vance")) == {"e0", "e1", "e2"}


def test_activate_only_after_and_every_count_the_characters_replies() -> None:
    lore = book(
        {"constant": True, "content": "@@activate_only_after 3\nLate."},
        {"constant": True, "content": "@@activate_only_every 2\nEven."},
    )
    assert set(fired(lore, turns=Turns(2))) == {"e1"}
    assert set(fired(lore, turns=Turns(3))) == {"e0"}
    assert set(fired(lore, turns=Turns(4))) == {"e0", "e1"}
    # A window that does not hold the whole conversation cannot tell: both fire.
    assert set(fired(lore, turns=Turns(1, exact=False))) == {"e0", "e1"}


def test_dont_activate_additional_and_exclude_keys() -> None:
    lore = book(
        {"keys": ["Vance"], "content": "@@dont_activate\nNever."},
        {"keys": ["Vance"], "content": "@@additional_keys docks, pier\nAt the water."},
        {"keys": ["Vance"], "content": "@@exclude_keys jail\nFree."},
    )
    assert set(fired(lore, "Sam: Vance at the pier")) == {"e1", "e2"}
    assert set(fired(lore, "Sam: Vance in jail")) == set()


def test_decorators_are_taken_off_the_text_and_fallbacks_stand_in() -> None:
    decorators, text = split_decorators(
        "@@risu_only 4\n@@@depth 2\n@@role user\n@@is_greeting 1\n\nThe text.\n@@not_a_decorator"
    )
    assert text == "The text.\n@@not_a_decorator"
    assert decorators.values == {"depth": ["2"], "role": ["user"]}
    assert decorators.unsupported == ["@@is_greeting 1"]


def test_recursive_scanning_lets_entries_fire_each_other_a_bounded_number_of_times() -> None:
    chain = [{"keys": [f"k{i}"], "content": f"see k{i + 1}"} for i in range(MAX_RECURSION + 3)]
    lore = book(*chain, recursive_scanning=True)
    found = fired(lore, "Sam: k0")
    assert set(found) == {f"e{i}" for i in range(MAX_RECURSION + 1)}
    assert found["e1"] == "key 'k1' in the text of e0"
    assert set(fired(book(*chain), "Sam: k0")) == {"e0"}


def test_recursion_respects_prevent_and_exclude() -> None:
    lore = book(
        {"keys": ["apple"], "content": "mentions bee", "prevent_recursion": True},
        {"keys": ["bee"], "content": "mentions sea"},
        {"keys": ["sea"], "content": "deep", "exclude_recursion": True},
        recursive_scanning=True,
    )
    assert set(fired(lore, "Sam: apple")) == {"e0"}
    assert set(fired(lore, "Sam: bee")) == {"e1"}


def test_the_index_finds_exactly_what_searching_every_key_finds() -> None:
    rng = random.Random(3)
    words = ["the", "old", "reef", "Halloran", "pier", "rum", "tide", "a", "ox", "Ivy"]
    index = KeyIndex()
    keys = []
    for number in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        if number % 7 == 0:
            text = rng.choice(words)[1:3]  # a fragment, maybe shorter than an anchor
        key = compile_key(
            text,
            case_sensitive=number % 5 == 0,
            whole_words=number % 2 == 0,
            use_regex=number % 37 == 0,
        )
        keys.append(key)
        index.add(number, key)
    for _ in range(50):
        scan = ScanText(" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))))
        expected = {n for n, key in enumerate(keys) if key.found_in(scan)}
        assert {n for n, _ in index.matches(scan)} == expected
