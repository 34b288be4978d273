"""PNG (and APNG) text chunks: where character cards hide inside their image.

Only the standard library: a PNG is a signature and a list of chunks (length, type, data,
CRC); cards live in ``tEXt``, ``zTXt`` or ``iTXt`` chunks. Image data is never decoded.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Collection, Iterator, Mapping

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
#: A card's text is small; a chunk that inflates past this is refused (a zip bomb).
_MAX_TEXT_BYTES = 16 << 20


class PngError(ValueError):
    """The bytes are not a readable PNG."""


def is_png(data: bytes) -> bool:
    """Whether ``data`` starts like a PNG."""
    return data.startswith(SIGNATURE)


def text_chunks(data: bytes) -> dict[str, bytes]:
    """Every text chunk's keyword and text, inflated, as stored: Latin-1 in ``tEXt`` and
    ``zTXt``, UTF-8 in ``iTXt`` (card writers put ASCII base64 or UTF-8 JSON in all three).
    The first of a repeated keyword wins."""
    texts: dict[str, bytes] = {}
    for kind, body in _chunks(data):
        if kind in _TEXT_TYPES:
            keyword, text = _decode_text(kind, body)
            texts.setdefault(keyword, text)
    return texts


def with_text_chunks(
    data: bytes, texts: Mapping[str, str], *, removing: Collection[str] = ()
) -> bytes:
    """``data`` without its text chunks named in ``texts`` or ``removing``, plus ``texts``.

    The new ``tEXt`` chunks go right before ``IEND``; the rest is copied byte for byte.
    """
    out = bytearray(SIGNATURE)
    for kind, body in _chunks(data):
        if kind in _TEXT_TYPES and (_keyword(body) in texts or _keyword(body) in removing):
            continue
        if kind == b"IEND":
            for keyword, text in texts.items():
                out += _chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1"))
        out += _chunk(kind, body)
    return bytes(out)


def blank_png(width: int = 1, height: int = 1) -> bytes:
    """A plain grey picture, for a card whose character has no PNG avatar."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    return (
        SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def _chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    if not is_png(data):
        raise PngError("not a PNG image (no PNG signature)")
    offset = len(SIGNATURE)
    while offset < len(data):
        if offset + 8 > len(data):
            raise PngError(f"truncated chunk header at byte {offset}")
        length, kind = struct.unpack_from(">I4s", data, offset)
        end = offset + 12 + length
        if end > len(data):
            raise PngError(f"chunk {kind.decode('latin-1')!r} at byte {offset} is truncated")
        yield kind, data[offset + 8 : offset + 8 + length]
        offset = end
        if kind == b"IEND":
            return
    raise PngError("no IEND chunk: the file is cut short")


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _keyword(body: bytes) -> str:
    return body.split(b"\0", 1)[0].decode("latin-1")


def _decode_text(kind: bytes, body: bytes) -> tuple[str, bytes]:
    keyword, _, rest = body.partition(b"\0")
    name = keyword.decode("latin-1")
    if kind == b"tEXt":
        return name, rest
    if kind == b"zTXt":
        return name, _inflate(name, rest[1:])
    # iTXt: compression flag, method, language tag\0, translated keyword\0, UTF-8 text.
    if len(rest) < 2:
        raise PngError(f"iTXt chunk {name!r} is truncated")
    compressed = rest[0] == 1
    _, _, after_language = rest[2:].partition(b"\0")
    _, _, text = after_language.partition(b"\0")
    return name, _inflate(name, text) if compressed else text


def _inflate(name: str, data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, _MAX_TEXT_BYTES)
    except zlib.error as error:
        raise PngError(f"compressed text chunk {name!r} is damaged: {error}") from None
    if inflater.unconsumed_tail:
        raise PngError(f"compressed text chunk {name!r} is larger than {_MAX_TEXT_BYTES} bytes")
    return raw
