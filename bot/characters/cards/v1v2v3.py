"""Card JSON (V1, V2 and V3) into the fields of a Troupe character.

* V1: the fields at the root (``name``, ``description``, ``first_mes``, …; the older
  ``char_name``/``char_persona``/``char_greeting``/``world_scenario``/``example_dialogue`` too).
* V2 (``spec: chara_card_v2``) and V3 (``spec: chara_card_v3``): the fields under ``data``, each
  falling back to the root when ``data`` lacks it. Every V2 field is read from a V3 card too.

Whatever Troupe does not use itself (``character_book``, ``extensions``, ``assets``,
``post_history_instructions``, dates, unknown fields, and root fields
outside ``data``) is kept verbatim under the character's ``card`` key, which export writes
back. Troupe's own fields that cards lack travel in ``data.extensions.troupe``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.characters.cards.examples import format_examples, parse_examples

SPEC_V2 = "chara_card_v2"
SPEC_V3 = "chara_card_v3"
#: The newest card spec version this code knows.
KNOWN_SPEC_VERSION = 3.0

#: Card field → Troupe field, for fields copied as they are.
CARD_TO_TROUPE = {
    "name": "name",
    "description": "description",
    "personality": "personality",
    "scenario": "scenario",
    "first_mes": "greeting",
    "alternate_greetings": "alternate_greetings",
    "group_only_greetings": "group_only_greetings",
    "system_prompt": "rules",
    "creator_notes": "creator_notes",
    "tags": "tags",
    "creator": "creator",
    "character_version": "version",
}
#: Pygmalion / TavernAI names of V1 fields.
LEGACY_V1_FIELDS = {
    "char_name": "name",
    "char_persona": "description",
    "char_greeting": "first_mes",
    "world_scenario": "scenario",
    "example_dialogue": "mes_example",
}
#: The fields a V1 card has at its root (exporters repeat them outside ``data``).
V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
#: Fields read into Troupe fields by special rules rather than copied.
_READ_SPECIALLY = frozenset({"mes_example", "nickname", "extensions"})
#: Kept fields whose value is the spec's default are not kept (export writes the default).
_DEFAULTS: dict[str, Any] = {"post_history_instructions": ""}
#: The extension that carries Troupe's own fields.
TROUPE_EXTENSION = "troupe"
#: The key under ``card`` for root fields outside ``data``.
OUTSIDE_DATA = "outside_data"
#: Stands in for a blank card description, which Troupe requires; export restores the blank.
BLANK_DESCRIPTION = "{{char}}"


class CardFormatError(ValueError):
    """The card is not card JSON at all; ``path`` is the JSON path of the problem."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


@dataclass(slots=True)
class CardReading:
    """A card read into Troupe character fields, not yet validated."""

    fields: dict[str, Any]
    #: Troupe field → the JSON path it came from, for error messages.
    origins: dict[str, str] = field(default_factory=dict)
    #: Things the writer should know (say, a newer spec version).
    warnings: list[str] = field(default_factory=list)


def decode_card_text(raw: bytes) -> dict[str, Any]:
    """A card from its UTF-8 JSON text, or from base64 of it (as PNG chunks carry it)."""
    stripped = raw.strip()
    if not stripped.startswith((b"{", b"[")):
        try:
            stripped = base64.b64decode(stripped, validate=False).strip()
        except (binascii.Error, ValueError):
            raise CardFormatError("neither JSON nor base64-encoded JSON") from None
    try:
        card = json.loads(stripped.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise CardFormatError("card text is not UTF-8") from None
    except json.JSONDecodeError as error:
        raise CardFormatError(f"invalid JSON: {error.msg} (line {error.lineno})") from None
    if not isinstance(card, dict):
        raise CardFormatError(f"expected a JSON object, got {type(card).__name__}")
    return card


def read_card(card: Mapping[str, Any]) -> CardReading:
    """The Troupe fields of ``card`` (any spec), with what came from where."""
    spec = card.get("spec")
    data = card.get("data")
    reading = CardReading(fields={})
    if spec is not None and not isinstance(data, dict):
        raise CardFormatError(f"a {spec!r} card needs a 'data' object", "data")
    if isinstance(data, dict):
        reading.warnings.extend(_version_warnings(spec, card.get("spec_version")))
        values, paths, outside = _with_root_fallback(data, card)
    else:
        values, paths, outside = _legacy_v1(card)
    kept: dict[str, Any] = {}
    reader = _Reader(values, paths, reading, kept)
    reader.copy_mapped()
    reader.examples()
    reader.nickname()
    reader.extensions()
    for key, value in values.items():
        if key in CARD_TO_TROUPE or key in _READ_SPECIALLY:
            continue
        if key in _DEFAULTS and value == _DEFAULTS[key]:
            continue
        kept[key] = value
    description = reading.fields.get("description")
    if isinstance(description, str) and not description.strip():
        kept["description"] = description
        reading.fields["description"] = BLANK_DESCRIPTION
    if outside:
        kept[OUTSIDE_DATA] = outside
    if kept:
        reading.fields["card"] = kept
    return reading


def _version_warnings(spec: Any, version: Any) -> list[str]:
    warnings = []
    if spec not in (SPEC_V2, SPEC_V3):
        warnings.append(f"unknown spec {spec!r}; read as {SPEC_V3}")
    try:
        number = float(version) if version is not None else None
    except (TypeError, ValueError):
        number = None
    if number is not None and number > KNOWN_SPEC_VERSION:
        warnings.append(
            f"spec_version {version} is newer than {KNOWN_SPEC_VERSION}: imported the fields "
            "Troupe knows, kept the rest for export"
        )
    return warnings


def _with_root_fallback(
    data: Mapping[str, Any], card: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    values = dict(data)
    paths = {key: f"data.{key}" for key in data}
    outside: dict[str, Any] = {}
    for key, value in card.items():
        if key in ("spec", "spec_version", "data"):
            continue
        if key in V1_FIELDS and key not in values:
            values[key] = value
            paths[key] = key
        elif not (key in V1_FIELDS and values.get(key) == value):
            outside[key] = value  # kept unless export would write it back the same
    return values, paths, outside


def _legacy_v1(card: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    values: dict[str, Any] = {}
    paths: dict[str, str] = {}
    outside: dict[str, Any] = {}
    for key, value in card.items():
        modern = LEGACY_V1_FIELDS.get(key, key)
        if key in LEGACY_V1_FIELDS and modern in card:
            outside[key] = value  # both spellings: the modern one wins, the old one is kept
        elif modern in V1_FIELDS or modern in CARD_TO_TROUPE or modern in _READ_SPECIALLY:
            values[modern] = value
            paths[modern] = key
        else:
            outside[key] = value
    return values, paths, outside


@dataclass(slots=True)
class _Reader:
    """Reads the card's values (with the JSON path of each) into ``reading`` and ``kept``."""

    values: Mapping[str, Any]
    paths: Mapping[str, str]
    reading: CardReading
    kept: dict[str, Any]

    def copy_mapped(self) -> None:
        for card_key, troupe_key in CARD_TO_TROUPE.items():
            if self.values.get(card_key) is not None:
                self._set(troupe_key, self.values[card_key], self.paths[card_key])

    def examples(self) -> None:
        text = self.values.get("mes_example")
        if text is None:
            return
        if not isinstance(text, str):
            self._set("examples", text, self.paths["mes_example"])  # validation says why
            return
        name = self.values.get("name")
        examples = parse_examples(text, char=name if isinstance(name, str) else "{{char}}")
        self._set("examples", examples, self.paths["mes_example"])
        if format_examples([(e["user"], e["ai"]) for e in examples]) != text:
            self.kept["mes_example"] = text  # the parse is lossy: keep the card's own text

    def nickname(self) -> None:
        nickname = self.values.get("nickname")
        if nickname is not None and nickname != "":
            value = [nickname] if isinstance(nickname, str) else nickname
            self._set("nicknames", value, self.paths["nickname"])

    def extensions(self) -> None:
        extensions = self.values.get("extensions")
        if extensions is None:
            return
        path = self.paths["extensions"]
        if not isinstance(extensions, dict):
            raise CardFormatError(f"expected an object, got {type(extensions).__name__}", path)
        others = {key: value for key, value in extensions.items() if key != TROUPE_EXTENSION}
        if others:
            self.kept["extensions"] = others
        self._talkativeness(extensions.get("talkativeness"), f"{path}.talkativeness")
        troupe = extensions.get(TROUPE_EXTENSION)
        if troupe is None:
            return
        path = f"{path}.{TROUPE_EXTENSION}"
        if not isinstance(troupe, dict):
            raise CardFormatError(f"expected an object, got {type(troupe).__name__}", path)
        for key, value in troupe.items():
            # The card's own field wins, except that the full list of nicknames does.
            if key not in self.reading.fields or key == "nicknames":
                self._set(key, value, f"{path}.{key}")

    def _talkativeness(self, value: Any, path: str) -> None:
        # SillyTavern keeps a character's talkativeness (0-1) as text; one it cannot read
        # stays only in the kept extensions, as SillyTavern itself would fall back.
        if isinstance(value, bool):
            return
        try:
            talkativeness = float(value)
        except (TypeError, ValueError):
            return
        if 0 <= talkativeness <= 1:
            self._set("talkativeness", talkativeness, path)

    def _set(self, field_name: str, value: Any, path: str) -> None:
        self.reading.fields[field_name] = value
        self.reading.origins[field_name] = path
