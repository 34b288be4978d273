"""``troupe import-card``: a card file into a YAML character and its avatar, side by side."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.characters.cards.files import CardFile, read_card_file
from bot.characters.cards.validate import character_from_card
from bot.characters.loader import CharacterLoadError, load_characters
from bot.characters.schema import Character, slugify
from bot.errors import TroupeError
from bot.yamlcheck import FileProblem

_SAFE_EXT = re.compile(r"^[a-z0-9]{1,8}$")


class CardImportError(TroupeError):
    """The card cannot be imported; ``problems`` says why, with the card's JSON paths."""

    def __init__(self, problems: Sequence[FileProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(slots=True)
class ImportedCard:
    """What one import wrote."""

    character: Path
    avatar: Path | None
    assets: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def import_card(source: Path, into: Path, *, overwrite: bool = False) -> ImportedCard:
    """Write the card at ``source`` as ``into/<id>.yaml`` (and ``<id>.png`` for its picture).

    CHARX assets other than the picture go to ``into/<id>.assets/``. Nothing is written
    when the card is invalid, or when a file would be replaced without ``overwrite``.
    """
    try:
        card_file = read_card_file(source)
    except OSError as error:
        raise CardImportError(
            [FileProblem(source, 0, "", f"cannot read: {error.strerror or error}")]
        ) from None
    except ValueError as error:
        raise CardImportError(
            [FileProblem(source, 0, getattr(error, "path", ""), str(error))]
        ) from None
    ext = card_file.image_ext if _SAFE_EXT.match(card_file.image_ext) else "png"
    # Validated once without files to learn the id, which names the files.
    draft, problems, warnings = character_from_card(
        card_file,
        file=source,
        avatar=f"avatar.{ext}" if card_file.image else None,
        context={},
        fallback_id=slugify(source.stem) or "character",
    )
    if draft is None:
        raise CardImportError(problems)
    taken = _name_taken(draft, into)
    if taken is not None:
        message = f"{into} already has a character named {draft.name!r} ({taken}); rename one"
        raise CardImportError([FileProblem(source, 0, "", message)])
    target = into / f"{draft.id}.yaml"
    avatar = into / f"{draft.id}.{ext}" if card_file.image is not None else None
    assets = _asset_targets(card_file, into / f"{draft.id}.assets")
    clashes = [p for p in (target, avatar, *assets) if p is not None and p.exists()]
    if clashes and not overwrite:
        message = f"would replace {clashes[0]}; remove it or pass --force"
        raise CardImportError([FileProblem(source, 0, "", message)])
    into.mkdir(parents=True, exist_ok=True)
    if avatar is not None and card_file.image is not None:
        avatar.write_bytes(card_file.image)
    for path, data in assets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    character = draft.model_copy(update={"avatar": avatar.name if avatar else draft.avatar})
    target.write_text(character_yaml(character, source=source.name), encoding="utf-8")
    return ImportedCard(target, avatar, sorted(assets), warnings)


def character_yaml(character: Character, *, source: str) -> str:
    """The YAML file of ``character`` (its id is the file's name, so not written)."""
    fields = character.model_dump(mode="json", exclude_defaults=True)
    fields.pop("id", None)
    text = yaml.dump(fields, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100)
    return f"# Imported from {source} by troupe import-card.\n{text}"


def _name_taken(draft: Character, into: Path) -> Path | None:
    """The file of another character in ``into`` that ``draft``'s name would clash with.

    A character with ``draft``'s id is the one being replaced (the ``--force`` rule covers it);
    a broken folder is not this import's business and is not checked.
    """
    if not into.is_dir():
        return None
    try:
        library = load_characters(into)
    except CharacterLoadError:
        return None
    if draft.name not in library:
        return None
    other = library.get(draft.name)
    return other.source_path if other.id != draft.id else None


def _asset_targets(card_file: CardFile, folder: Path) -> dict[Path, bytes]:
    """CHARX members other than the picture, kept inside ``folder`` (no ``..`` escapes)."""
    targets: dict[Path, bytes] = {}
    for name, data in card_file.assets.items():
        if data is card_file.image:
            continue
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if not parts or ".." in parts or "\\" in name:
            continue
        targets[folder.joinpath(*parts)] = data
    return targets


class _BlockDumper(yaml.SafeDumper):
    """Multi-line text as ``|`` blocks, which people can read and edit."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> Any:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _represent_text)
