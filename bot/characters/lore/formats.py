"""Books in card and SillyTavern formats, read into the YAML shape and checked there.

* a card's ``character_book`` (spec V2/V3; SillyTavern's settings under each entry's
  ``extensions``), also wrapped as ``{"spec": "lorebook_v3", "data": {…}}``;
* a SillyTavern world info file, ``{"entries": {"0": {"key": […], …}, …}}``.

Each entry field is read from where that format keeps it; a problem is reported at that
place (``entries[3].extensions.depth``), not at the YAML name it was read into.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bot.characters.lore.book import Lorebook, Remark, compile_book
from bot.characters.lore.spec import LorebookSpec
from bot.yamlcheck import describe_value
from bot.yamlsource import Loc

_Convert = Callable[[Any], Any] | None
#: (YAML field, where the format keeps it, how its value becomes the YAML one); the first
#: place that holds a value wins.
_Table = tuple[tuple[str, Loc, _Convert], ...]

_LOGIC = {0: "and_any", 1: "not_all", 2: "not_any", 3: "and_all"}
#: SillyTavern's numbered positions: before/after the character, at depth; the author's-note
#: and example-message positions have no place here and go after the character.
_POSITION = {0: "before_char", 1: "after_char", 4: "depth"}
_ROLE = {0: "system", 1: "user", 2: "assistant"}


def _numbered(names: Mapping[int, str], default: str | None = None) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return names.get(value, default if default is not None else value)
        return value

    return convert


def _negated(value: Any) -> Any:
    return not value if isinstance(value, bool) else value


_COMMON: _Table = (
    ("content", ("content",), None),
    ("name", ("name",), None),
    ("comment", ("comment",), None),
    ("constant", ("constant",), None),
    ("priority", ("priority",), None),
    ("use_regex", ("use_regex",), None),
)
_CARD_ENTRY: _Table = (
    *_COMMON,
    ("keys", ("keys",), None),
    ("secondary_keys", ("secondary_keys",), None),
    ("enabled", ("enabled",), None),
    ("insertion_order", ("insertion_order",), None),
    ("case_sensitive", ("case_sensitive",), None),
    ("case_sensitive", ("extensions", "case_sensitive"), None),
    ("match_whole_words", ("extensions", "match_whole_words"), None),
    ("selective_logic", ("selectiveLogic",), _numbered(_LOGIC)),
    ("selective_logic", ("extensions", "selectiveLogic"), _numbered(_LOGIC)),
    ("position", ("extensions", "position"), _numbered(_POSITION, "after_char")),
    ("position", ("position",), None),
    ("depth", ("extensions", "depth"), None),
    ("role", ("extensions", "role"), _numbered(_ROLE)),
    ("scan_depth", ("extensions", "scan_depth"), None),
    ("prevent_recursion", ("extensions", "prevent_recursion"), None),
    ("exclude_recursion", ("extensions", "exclude_recursion"), None),
)
_WORLD_INFO_ENTRY: _Table = (
    *_COMMON,
    ("keys", ("key",), None),
    ("secondary_keys", ("keysecondary",), None),
    ("enabled", ("disable",), _negated),
    ("insertion_order", ("order",), None),
    ("case_sensitive", ("caseSensitive",), None),
    ("match_whole_words", ("matchWholeWords",), None),
    ("selective_logic", ("selectiveLogic",), _numbered(_LOGIC)),
    ("position", ("position",), _numbered(_POSITION, "after_char")),
    ("depth", ("depth",), None),
    ("role", ("role",), _numbered(_ROLE)),
    ("scan_depth", ("scanDepth",), None),
    ("prevent_recursion", ("preventRecursion",), None),
    ("exclude_recursion", ("excludeRecursion",), None),
)
_BOOK: _Table = tuple(
    (name, (name,), None)
    for name in ("name", "description", "scan_depth", "token_budget", "recursive_scanning")
)


@dataclass(slots=True)
class BookReading:
    """A book read from any format: the book (``None`` if broken), what is wrong with it and
    warnings, each at its place in the data read."""

    book: Lorebook | None
    problems: list[Remark] = field(default_factory=list)
    warnings: list[Remark] = field(default_factory=list)


def read_book_data(data: Any, book_id: str) -> BookReading:
    """The book in ``data``: a card ``character_book`` (or ``lorebook_v3`` export) or a
    SillyTavern world info file."""
    if isinstance(data, dict) and isinstance(data.get("data"), dict) and "entries" not in data:
        inner = read_book_data(data["data"], book_id)
        return BookReading(
            inner.book,
            [(("data", *loc), message) for loc, message in inner.problems],
            [(("data", *loc), message) for loc, message in inner.warnings],
        )
    if not isinstance(data, dict):
        return BookReading(None, [((), f"expected a lorebook object, got {describe_value(data)}")])
    raw_entries = data.get("entries")
    if isinstance(raw_entries, dict):
        table, places = _WORLD_INFO_ENTRY, list(raw_entries.items())
    elif isinstance(raw_entries, list):
        table, places = _CARD_ENTRY, list(enumerate(raw_entries))
    else:
        found = "nothing" if raw_entries is None else describe_value(raw_entries)
        return BookReading(None, [(("entries",), f"expected a list of entries, got {found}")])
    fields, _ = _read(data, _BOOK)
    entries: list[dict[str, Any]] = []
    origins: list[tuple[str | int, dict[str, Loc]]] = []
    problems: list[Remark] = []
    for place, raw in places:
        if not isinstance(raw, dict):
            problems.append((("entries", place), f"expected an entry, got {describe_value(raw)}"))
            continue
        entry, origin = _read(raw, table)
        if table is _CARD_ENTRY and raw.get("selective") is False:
            entry.pop("secondary_keys", None)  # the card switched the filter off
        entries.append(entry)
        origins.append((place, origin))
    if problems:
        return BookReading(None, problems)
    try:
        spec = LorebookSpec.model_validate({**fields, "entries": entries})
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            loc = _origin_of(tuple(detail["loc"]), origins)
            problems.append((loc, _message(detail)))
        return BookReading(None, problems)
    book, remarks = compile_book(spec, book_id)
    return BookReading(book, [], [(_origin_of(loc, origins), text) for loc, text in remarks])


def _read(raw: Mapping[str, Any], table: _Table) -> tuple[dict[str, Any], dict[str, Loc]]:
    values: dict[str, Any] = {}
    origin: dict[str, Loc] = {}
    for name, loc, convert in table:
        if name in values:
            continue
        value: Any = raw
        for part in loc:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            continue
        values[name] = convert(value) if convert else value
        origin[name] = loc
    return values, origin


def _origin_of(loc: Loc, origins: list[tuple[str | int, dict[str, Loc]]]) -> Loc:
    """Where in the data read a problem at ``loc`` (in the YAML shape) is."""
    if len(loc) >= 3 and loc[0] == "entries" and isinstance(loc[1], int):
        place, origin = origins[loc[1]]
        return ("entries", place, *origin.get(str(loc[2]), (loc[2],)), *loc[3:])
    return loc


def _message(detail: Any) -> str:
    if detail["type"] == "missing":
        return "field required"
    message = str(detail["msg"]).removeprefix("Value error, ")
    return f"{message[:1].lower()}{message[1:]}, got {describe_value(detail['input'])}"
