"""Reading a card file of any kind: ``.png``/``.apng``, ``.json`` or ``.charx``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.characters.cards.charx import embedded_path, read_charx
from bot.characters.cards.export import CARD_CHUNKS
from bot.characters.cards.png import is_png, text_chunks, with_text_chunks
from bot.characters.cards.v1v2v3 import CardFormatError, decode_card_text

#: File name endings of character cards.
CARD_SUFFIXES = (".png", ".apng", ".json", ".charx")
#: Larger files are refused unread (a card with a big picture is a few MB).
MAX_CARD_BYTES = 64 << 20


@dataclass(slots=True)
class CardFile:
    """A card's JSON and the pictures that came with it."""

    card: dict[str, Any]
    #: The main picture (PNG without its card chunks, or the CHARX icon) and its extension.
    image: bytes | None = None
    image_ext: str = "png"
    #: Other files of a CHARX archive, by their path inside it.
    assets: dict[str, bytes] = field(default_factory=dict)


def is_card_path(path: Path) -> bool:
    """Whether ``path`` is named like a card (a JSON Schema file is not one)."""
    return path.suffix.lower() in CARD_SUFFIXES and not path.name.endswith(".schema.json")


def has_card(path: Path) -> bool:
    """Whether a file in a characters folder is a character: a PNG only if it carries a card
    (otherwise it is someone's avatar), a JSON file unless it is a JSON Schema."""
    if path.suffix.lower() not in (".png", ".apng"):
        return not path.name.endswith(".schema.json")
    try:
        return _card_chunk(text_chunks(path.read_bytes())) is not None
    except (OSError, ValueError):
        return True  # a broken PNG: loading it will say what is wrong


def read_card_file(path: Path) -> CardFile:
    """The card in ``path``. Raises :class:`OSError` or :class:`ValueError` with the reason."""
    size = path.stat().st_size
    if size > MAX_CARD_BYTES:
        raise CardFormatError(f"file too large ({size} bytes; at most {MAX_CARD_BYTES})")
    data = path.read_bytes()
    if is_png(data):
        text = _card_chunk(text_chunks(data))
        if text is None:
            raise CardFormatError("this PNG carries no character card (no 'ccv3' or 'chara' chunk)")
        image = with_text_chunks(data, {}, removing=CARD_CHUNKS)
        return CardFile(decode_card_text(text), image=image)
    if data.startswith(b"PK"):
        card_bytes, files = read_charx(data)
        card = decode_card_text(card_bytes)
        return _with_icon(CardFile(card, assets=files))
    return CardFile(decode_card_text(data))


def _card_chunk(texts: dict[str, bytes]) -> bytes | None:
    # A V3 card also carries a V2 copy in 'chara'; the V3 one is the whole card.
    return texts.get("ccv3") or texts.get("chara")


def _with_icon(card_file: CardFile) -> CardFile:
    """Take the main ``icon`` asset of a CHARX as the card's picture."""
    data = card_file.card.get("data")
    assets = data.get("assets") if isinstance(data, dict) else None
    if not isinstance(assets, list):
        return card_file
    icons = [a for a in assets if isinstance(a, dict) and a.get("type") == "icon"]
    icons.sort(key=lambda a: a.get("name") != "main")
    for icon in icons:
        inner = embedded_path(str(icon.get("uri", "")))
        if inner is not None and inner in card_file.assets:
            card_file.image = card_file.assets[inner]
            card_file.image_ext = str(icon.get("ext") or "png").lower()
            break
    return card_file
