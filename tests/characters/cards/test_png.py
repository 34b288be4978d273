"""PNG text chunks: the three kinds, base64 or raw JSON, and damaged files."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import pytest

from bot.characters.cards.png import PngError, blank_png, text_chunks, with_text_chunks
from bot.characters.cards.v1v2v3 import CardFormatError, decode_card_text


def chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_with(*chunks: bytes) -> bytes:
    image = blank_png()
    end = image.rindex(b"IEND") - 4
    return image[:end] + b"".join(chunks) + image[end:]


def test_text_ztxt_and_itxt_are_read() -> None:
    image = png_with(
        chunk(b"tEXt", b"plain\0caf\xe9"),
        chunk(b"zTXt", b"packed\0\0" + zlib.compress(b"squeezed")),
        chunk(b"iTXt", b"intl\0\0\0en\0Intl\0" + "naïve ✓".encode()),
        chunk(b"iTXt", b"intlz\0\1\0\0\0" + zlib.compress("zipped ✓".encode())),
    )
    assert text_chunks(image) == {
        "plain": b"caf\xe9",
        "packed": b"squeezed",
        "intl": "naïve ✓".encode(),
        "intlz": "zipped ✓".encode(),
    }


def test_card_text_is_base64_or_raw_json() -> None:
    card = {"name": "Pip", "description": "ünïcode"}
    raw = json.dumps(card, ensure_ascii=False)
    assert decode_card_text(raw.encode()) == card
    assert decode_card_text(base64.b64encode(raw.encode())) == card
    with pytest.raises(CardFormatError, match="expected a JSON object, got list"):
        decode_card_text(b"[1]")
    with pytest.raises(CardFormatError, match="invalid JSON"):
        decode_card_text(base64.b64encode(b"{not json"))


def test_replacing_text_chunks_keeps_every_other_chunk() -> None:
    animation = chunk(b"acTL", struct.pack(">II", 1, 0))  # an APNG's chunk, copied as is
    image = png_with(animation, chunk(b"tEXt", b"chara\0old"), chunk(b"tEXt", b"ccv3\0old3"))
    replaced = with_text_chunks(image, {"chara": "new"}, removing=("ccv3",))
    assert text_chunks(replaced) == {"chara": b"new"}
    assert animation in replaced
    assert replaced.endswith(chunk(b"IEND", b""))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a", "not a PNG image"),
        (blank_png()[:-6], "truncated"),
        (blank_png()[:-12], "no IEND chunk"),
        (png_with(chunk(b"zTXt", b"chara\0\0garbage")), "compressed text chunk 'chara' is damaged"),
    ],
)
def test_damaged_pngs_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(PngError, match=message):
        text_chunks(data)
