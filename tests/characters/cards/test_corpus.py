"""The corpus: cards shaped like real ones import with the right fields and survive a round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.characters.cards.export import card_json
from bot.characters.cards.importing import CardImportError, import_card
from tests.characters.cards.helpers import CORPUS, exported, fields, imported

CARDS = sorted(p for p in CORPUS.iterdir() if p.suffix in (".json", ".png", ".charx"))


def test_v1_root_only_card(tmp_path: Path) -> None:
    tom = imported(CORPUS / "v1_root_only.json", tmp_path)
    assert tom.id == "old-tom"
    assert tom.name == "Old Tom"
    assert tom.greeting == "*Tom leans on his pole.* Fare's a copper, {{user}}."
    assert [(e.user, e.ai) for e in tom.examples] == [("Is it safe?", "Safer than swimming.")]
    # SillyTavern's own root keys are not Troupe's, but are kept for export.
    assert tom.card["outside_data"]["talkativeness"] == "0.5"


def test_pygmalion_char_keys(tmp_path: Path) -> None:
    nell = imported(CORPUS / "pygmalion_char_keys.json", tmp_path)
    assert nell.name == "Nell"
    assert nell.description.startswith("{{char}} runs the lighthouse")
    assert nell.greeting.startswith("Mind the steps")
    assert nell.scenario == "A storm is coming in."
    assert [e.ai for e in nell.examples] == ["The gulls are good company."]
    # "You:" is no speaker Troupe knows: the card's own text is kept for export.
    assert nell.card["mes_example"].startswith("<START>\nYou:")


def test_v2_with_book(tmp_path: Path) -> None:
    seraphina = imported(CORPUS / "v2_with_book.json", tmp_path)
    assert seraphina.rules == "Write {{char}}'s next reply in a fictional roleplay."
    assert seraphina.version == "1.1"
    assert seraphina.alternate_greetings == ["*A doe watches you.* You are awake, {{user}}."]
    assert len(seraphina.examples) == 2
    book = seraphina.card["character_book"]
    assert book["entries"][0]["secondary_keys"] == ["silver"]
    assert seraphina.card["post_history_instructions"] == "Stay gentle. {{original}}"
    assert seraphina.card["extensions"]["depth_prompt"]["depth"] == 4
    assert seraphina.avatar is None
    # SillyTavern's talkativeness (text) is the director's; a changed one is what it exports.
    assert seraphina.talkativeness == 0.6
    shy = seraphina.model_copy(update={"talkativeness": 0.1})
    card = card_json(shy, spec="v2")
    assert card["data"]["extensions"]["talkativeness"] == "0.1"
    assert "talkativeness" not in card["data"]["extensions"].get("troupe", {})


def test_v3_with_assets_and_decorators(tmp_path: Path) -> None:
    kestrel = imported(CORPUS / "v3_assets_decorators.json", tmp_path)
    assert kestrel.nicknames == ["Captain"]
    assert kestrel.group_only_greetings == ["Crew, meet our new passenger."]
    assert kestrel.card["creation_date"] == 1700000000
    assert kestrel.card["assets"][1]["uri"] == "embeded://assets/emotion/happy.png"
    content = kestrel.card["character_book"]["entries"][0]["content"]
    assert content.startswith("@@depth 2\n@@role system\n@@@instruct_depth 2\n")
    assert kestrel.card["creator_notes_multilingual"] == {"fr": "Carte V3 avec ressources."}


def test_ztxt_png_card(tmp_path: Path) -> None:
    seraphina = imported(CORPUS / "v2_ztxt.png", tmp_path)
    assert seraphina.name == "Seraphina"
    assert seraphina.avatar == "seraphina.png"
    assert (tmp_path / "seraphina.png").read_bytes().startswith(b"\x89PNG")


def test_ccv3_chunk_wins_over_chara(tmp_path: Path) -> None:
    # The PNG carries a stale V2 backfill named differently in 'chara' (tEXt) and the
    # real card in 'ccv3' (iTXt, raw JSON).
    character = imported(CORPUS / "v3_itxt_and_chara.png", tmp_path)
    assert character.name == "Kestrel Vane"


def test_charx_card_and_its_assets(tmp_path: Path) -> None:
    result = import_card(CORPUS / "v3.charx", tmp_path)
    assert result.avatar == tmp_path / "kestrel-vane.png"
    assert result.assets == [tmp_path / "kestrel-vane.assets" / "assets" / "emotion" / "happy.png"]
    assert result.assets[0].read_bytes().startswith(b"\x89PNG")


def test_avatar_written_beside_is_no_card(tmp_path: Path) -> None:
    # Otherwise the avatar would load as a second copy of the character.
    import_card(CORPUS / "v2_ztxt.png", tmp_path)
    from bot.characters import load_characters

    assert load_characters(tmp_path).ids() == ["seraphina"]


@pytest.mark.parametrize("card", CARDS, ids=lambda p: p.name)
@pytest.mark.parametrize(
    ("fmt", "spec"), [("json", "v3"), ("json", "v2"), ("png", "v3"), ("png", "v2")]
)
def test_import_export_import_is_lossless(card: Path, fmt: str, spec: str, tmp_path: Path) -> None:
    first = imported(card, tmp_path / "first")
    card_file = exported(first, tmp_path / "out", fmt=fmt, spec=spec)  # type: ignore[arg-type]
    again = imported(card_file, tmp_path / "again")
    assert {**fields(again), "avatar": None} == {**fields(first), "avatar": None}
    # The picture travels in a PNG card (a blank one if there was none); JSON has none.
    assert again.avatar == (f"{first.id}.png" if fmt == "png" else None)


def test_import_refuses_to_replace_files(tmp_path: Path) -> None:
    import_card(CORPUS / "v1_root_only.json", tmp_path)
    with pytest.raises(
        CardImportError, match=r"would replace .*old-tom\.yaml; remove it or pass --force"
    ):
        import_card(CORPUS / "v1_root_only.json", tmp_path)
    import_card(CORPUS / "v1_root_only.json", tmp_path, overwrite=True)


def test_import_refuses_a_name_the_folder_already_has(tmp_path: Path) -> None:
    (tmp_path / "sera.yaml").write_text("name: Seraphina\ndescription: Another one.\n")
    with pytest.raises(CardImportError, match="already has a character named 'Seraphina'"):
        import_card(CORPUS / "v2_with_book.json", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sera.yaml"]
