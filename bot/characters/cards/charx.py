"""CHARX: a zip holding ``card.json`` and the assets it names as ``embeded://path``."""

from __future__ import annotations

import io
import zipfile

#: The spec's spelling (sic): ``embeded://``, not ``embedded://``.
EMBEDDED_SCHEME = "embeded://"
#: Refuse archives that would inflate past this (a zip bomb), or hold absurdly many files.
_MAX_TOTAL_BYTES = 256 << 20
_MAX_MEMBERS = 10_000


class CharxError(ValueError):
    """The bytes are not a usable CHARX archive."""


def read_charx(data: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The ``card.json`` bytes and every other member by its path inside the archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise CharxError(f"not a CHARX (zip) file: {error}") from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > _MAX_MEMBERS:
            raise CharxError(f"too many files in the archive ({len(members)})")
        if sum(info.file_size for info in members) > _MAX_TOTAL_BYTES:
            raise CharxError(f"the archive unpacks to more than {_MAX_TOTAL_BYTES} bytes")
        files = {info.filename: archive.read(info) for info in members}
    card = files.pop("card.json", None)
    if card is None:
        raise CharxError("no card.json at the root of the archive")
    return card, files


def embedded_path(uri: str) -> str | None:
    """The archive path an ``embeded://`` URI points at, or ``None`` for another kind of URI."""
    return uri[len(EMBEDDED_SCHEME) :] if uri.startswith(EMBEDDED_SCHEME) else None
