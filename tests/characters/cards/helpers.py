"""Shared steps of the card tests: import a card file, export a character, compare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.characters import Character, load_character
from bot.characters.cards.export import Spec, card_json, card_png
from bot.characters.cards.importing import import_card

CORPUS = Path(__file__).parent / "corpus"


def imported(card: Path, into: Path) -> Character:
    """The character ``troupe import-card`` makes of ``card``, read back from its YAML."""
    return load_character(import_card(card, into).character)


def exported(character: Character, folder: Path, *, fmt: str, spec: Spec) -> Path:
    """``character`` written as a card file in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{character.id}.card.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(card_json(character, spec=spec)), encoding="utf-8")
    else:
        path.write_bytes(card_png(character, spec=spec)[0])
    return path


def fields(character: Character) -> dict[str, Any]:
    """Everything a character is, for comparing two imports."""
    return character.model_dump(mode="json")
