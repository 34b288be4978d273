"""A card read into a validated :class:`Character`, its problems named by JSON path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.characters.cards.files import CardFile
from bot.characters.cards.v1v2v3 import CardFormatError, CardReading, read_card
from bot.characters.schema import Character, slugify
from bot.yamlcheck import FileProblem, describe_value, format_loc


def character_from_card(
    card_file: CardFile,
    *,
    file: Path,
    avatar: str | None,
    context: dict[str, Any],
    fallback_id: str = "",
) -> tuple[Character | None, list[FileProblem], list[str]]:
    """The character in ``card_file`` (read from ``file``), every problem, and warnings.

    ``avatar`` (a path beside the character) is the card's picture, if it has one;
    ``fallback_id`` is the id when no other is given and the name makes none (say, "ȴ").
    """
    try:
        reading = read_card(card_file.card)
    except CardFormatError as error:
        return None, [FileProblem(file, 0, error.path, str(error))], []
    fields = dict(reading.fields)
    if avatar is not None:
        fields["avatar"] = avatar
        reading.origins.pop("avatar", None)
    else:
        fields.setdefault("avatar", _icon_url(card_file.card))
    name = fields.get("name")
    if fallback_id and "id" not in fields and not (isinstance(name, str) and slugify(name)):
        fields["id"] = fallback_id
    try:
        character = Character.model_validate(fields, context=context)
    except ValidationError as error:
        problems = [
            FileProblem(file, 0, _json_path(reading, tuple(d["loc"])), _message(d))
            for d in error.errors(include_url=False)
        ]
        return None, problems, reading.warnings
    return character, [], reading.warnings


def _json_path(reading: CardReading, loc: tuple[str | int, ...]) -> str:
    """Where in the card a Troupe field's problem is: ``examples[1].ai`` → ``data.mes_example``."""
    if not loc:
        return ""
    origin = reading.origins.get(str(loc[0]))
    if origin is None:
        return format_loc(loc)
    if loc[0] == "examples":
        return origin  # one text in the card, split into exchanges here
    rest = format_loc(loc[1:])
    if not rest:
        return origin
    return origin + rest if rest.startswith("[") else f"{origin}.{rest}"


def _message(detail: Any) -> str:
    if detail["type"] == "missing":
        return "field required"
    if detail["type"] == "extra_forbidden":
        return "unknown Troupe field"
    message = str(detail["msg"]).removeprefix("Value error, ")
    return f"{message[:1].lower()}{message[1:]}, got {describe_value(detail['input'])}"


def _icon_url(card: dict[str, Any]) -> str | None:
    """A V3 card's https icon, as the avatar of a card that brings no picture."""
    data = card.get("data")
    assets = data.get("assets") if isinstance(data, dict) else None
    for asset in assets if isinstance(assets, list) else []:
        if isinstance(asset, dict) and asset.get("type") == "icon":
            uri = asset.get("uri")
            if isinstance(uri, str) and uri.startswith("https://"):
                return uri
    return None
