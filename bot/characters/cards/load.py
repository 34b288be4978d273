"""A card placed in the characters folder, loaded like a YAML character."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.characters.cards.files import read_card_file
from bot.characters.cards.validate import character_from_card
from bot.characters.schema import Character
from bot.yamlcheck import FileProblem
from bot.yamlsource import YamlDocument

log = logging.getLogger("bot.characters")


def load_card(path: Path) -> tuple[Character | None, YamlDocument | None, list[FileProblem]]:
    """The character in the card at ``path``; never raises for a bad card.

    A PNG card is its own avatar; the character's id is the file's name unless the card
    says otherwise.
    """
    try:
        card_file = read_card_file(path)
    except OSError as error:
        return None, None, [FileProblem(path, 0, "", f"cannot read: {error.strerror or error}")]
    except ValueError as error:
        field = getattr(error, "path", "")
        return None, None, [FileProblem(path, 0, field, str(error))]
    avatar = path.name if path.suffix.lower() in (".png", ".apng") else None
    character, problems, warnings = character_from_card(
        card_file, file=path, avatar=avatar, context={"source_path": path}
    )
    for warning in warnings:
        log.warning("%s: %s", path, warning)
    # Cards have no lines to point at; the document is there for the duplicate checks.
    return character, YamlDocument(data=card_file.card), problems
