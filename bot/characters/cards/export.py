"""A Troupe character as a card SillyTavern reads: V2 or V3 JSON, or a PNG carrying it."""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from bot.characters.cards.examples import examples_text
from bot.characters.cards.png import blank_png, is_png, with_text_chunks
from bot.characters.cards.v1v2v3 import (
    BLANK_DESCRIPTION,
    OUTSIDE_DATA,
    SPEC_V2,
    SPEC_V3,
    TROUPE_EXTENSION,
    V1_FIELDS,
)
from bot.characters.schema import Character, slugify

Spec = Literal["v2", "v3"]
#: The PNG text chunks a card lives in: ``chara`` (V2) and ``ccv3`` (V3).
CARD_CHUNKS = ("chara", "ccv3")
#: Troupe fields no card field holds; exported in ``data.extensions.troupe`` when set.
_TROUPE_ONLY = frozenset(
    {
        "user_persona",
        "scene",
        "generation",
        "nsfw",
        "blocked_reply",
        "limit_reply",
        "lorebook",
        "world_books",
    }
)


def card_json(character: Character, *, spec: Spec = "v3") -> dict[str, Any]:
    """The card of ``character`` as a JSON object, with the V1 fields repeated at the root."""
    kept = dict(character.card)
    outside = kept.pop(OUTSIDE_DATA, {})
    blank = kept.pop("description", None)
    original_examples = kept.pop("mes_example", None)
    examples = [(e.user, e.ai) for e in character.examples]
    data: dict[str, Any] = {
        "name": character.name,
        "description": blank
        if isinstance(blank, str) and character.description == BLANK_DESCRIPTION
        else character.description,
        "personality": character.personality,
        "scenario": character.scenario,
        "first_mes": character.greeting,
        "mes_example": examples_text(examples, original_examples, char=character.name),
        "creator_notes": character.creator_notes,
        "system_prompt": character.rules,
        "post_history_instructions": kept.pop("post_history_instructions", ""),
        "alternate_greetings": list(character.alternate_greetings),
        "tags": list(character.tags),
        "creator": character.creator,
        "character_version": character.version,
        "extensions": _extensions(character, kept.pop("extensions", {})),
    }
    if spec == "v3" or character.group_only_greetings:
        # Required in V3; V2 has no such field, but its readers skip it and ours reads it.
        data["group_only_greetings"] = list(character.group_only_greetings)
    if character.nicknames:
        data["nickname"] = character.nicknames[0]
    data.update(kept)
    root = {key: data[key] for key in V1_FIELDS}
    root.update({k: v for k, v in outside.items() if k not in ("spec", "spec_version", "data")})
    header = (
        {"spec": SPEC_V3, "spec_version": "3.0"}
        if spec == "v3"
        else {"spec": SPEC_V2, "spec_version": "2.0"}
    )
    return {**header, "data": data, **root}


def card_png(character: Character, *, spec: Spec = "v3") -> tuple[bytes, bool]:
    """A PNG of the character's avatar carrying its card (``chara``, and ``ccv3`` for V3).

    The second value is ``False`` when the avatar was not a local PNG and a blank picture
    stands in for it.
    """
    image = None
    file = character.avatar_file
    if file is not None and file.is_file():
        image = file.read_bytes()
    has_avatar = image is not None and is_png(image)
    texts = {"chara": _encode(card_json(character, spec="v2"))}
    if spec == "v3":
        texts["ccv3"] = _encode(card_json(character, spec="v3"))
    picture = image if image is not None and has_avatar else blank_png()
    return with_text_chunks(picture, texts, removing=CARD_CHUNKS), has_avatar


def _encode(card: dict[str, Any]) -> str:
    text = json.dumps(card, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _extensions(character: Character, kept: dict[str, Any]) -> dict[str, Any]:
    troupe = character.model_dump(include=set(_TROUPE_ONLY), exclude_defaults=True, mode="json")
    if len(character.nicknames) > 1:
        troupe["nicknames"] = list(character.nicknames)
    if character.avatar is not None and character.avatar_file is None:
        troupe["avatar"] = character.avatar  # a URL; a local file is the PNG itself
    if character.id != slugify(character.name):
        troupe["id"] = character.id
    if "talkativeness" in kept or "talkativeness" in character.model_fields_set:
        # SillyTavern's own field, which it writes as text.
        kept = {**kept, "talkativeness": str(character.talkativeness)}
    return {**kept, TROUPE_EXTENSION: troupe} if troupe else dict(kept)
