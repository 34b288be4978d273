"""Loading character files, reporting every problem at once with file, line and field.

A writer who runs ``troupe check`` sees a list like::

    characters/aria.yaml:14: examples[2].ai: field required
    characters/aria.yaml:20: genration: unknown field; did you mean 'generation'?

covering YAML syntax errors, unknown keys, wrong types, out-of-range values, missing
fields, missing avatar files, and ids or names used by two characters.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.characters.library import CharacterLibrary, UnknownCharacter
from bot.characters.schema import SILLYTAVERN_FIELDS, Character, character_json_schema
from bot.characters.yamlsource import Loc, YamlDocument, YamlSyntaxError, parse_yaml

__all__ = [
    "CharacterLibrary",
    "CharacterLoadError",
    "CharacterProblem",
    "UnknownCharacter",
    "character_json_schema",
    "check_paths",
    "load_character",
    "load_characters",
]

#: File name patterns of character files inside a folder.
CHARACTER_GLOBS = ("*.yaml", "*.yml")
#: Character files larger than this are refused unread.
MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class CharacterProblem:
    """One problem in one file. ``line`` is 1-based (0 when the file itself is the problem)."""

    path: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class CharacterLoadError(Exception):
    """One or more character files are broken; ``problems`` lists all of them."""

    def __init__(self, problems: Sequence[CharacterProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def load_character(path: Path) -> Character:
    """Load and validate one character file. Raises :class:`CharacterLoadError`."""
    character, _, problems = _load_file(path)
    if problems or character is None:
        raise CharacterLoadError(problems)
    return character


def load_characters(*paths: Path) -> CharacterLibrary:
    """Load character files and folders (their ``*.yaml``/``*.yml``) into a library.

    Every file is read even after a broken one, and then every problem is raised at
    once. An id or name (letter case ignored) used by two characters is a problem too.
    """
    files, problems = _collect_files(paths)
    loaded: list[tuple[Character, YamlDocument]] = []
    for file in files:
        character, document, file_problems = _load_file(file)
        problems.extend(file_problems)
        if character is not None and document is not None:
            loaded.append((character, document))
    problems.extend(_duplicates(loaded))
    if problems:
        raise CharacterLoadError(problems)
    return CharacterLibrary(character for character, _ in loaded)


def check_paths(paths: Sequence[Path], out: TextIO) -> int:
    """``troupe check``: print every problem (or ``ok: N characters``); exit code 0 or 1."""
    try:
        library = load_characters(*paths)
    except CharacterLoadError as error:
        for problem in error.problems:
            print(problem, file=out)
        files = len({problem.path for problem in error.problems})
        print(f"{len(error.problems)} problem(s) in {files} file(s)", file=out)
        return 1
    count = f"{len(library)} character{'' if len(library) == 1 else 's'}"
    print(f"ok: {count} ({', '.join(library.ids())})", file=out)
    return 0


def _collect_files(paths: Sequence[Path]) -> tuple[list[Path], list[CharacterProblem]]:
    files: list[Path] = []
    problems: list[CharacterProblem] = []
    if not paths:
        problems.append(CharacterProblem(Path("."), 0, "", "no character files or folders given"))
    for path in paths:
        if path.is_dir():
            found = sorted({f for pattern in CHARACTER_GLOBS for f in path.glob(pattern)})
            if not found:
                message = "no character files (*.yaml, *.yml) in this folder"
                problems.append(CharacterProblem(path, 0, "", message))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(CharacterProblem(path, 0, "", "no such file or folder"))
    # The same file named twice (a folder and a file in it) is loaded once.
    unique: dict[Path, Path] = {}
    for file in files:
        unique.setdefault(file.resolve(), file)
    return list(unique.values()), problems


def _load_file(path: Path) -> tuple[Character | None, YamlDocument | None, list[CharacterProblem]]:
    """Parse and validate one file; never raises for a bad file, returns its problems."""

    def problem(line: int, loc: Loc, message: str) -> CharacterProblem:
        return CharacterProblem(path, line, format_loc(loc), message)

    try:
        text = _read_text(path)
        document = parse_yaml(text)
    except (YamlSyntaxError, _UnreadableFile) as error:
        return None, None, [problem(error.line, (), error.message)]

    problems = [problem(issue.line, issue.loc, issue.message) for issue in document.issues]
    data = document.data
    if not isinstance(data, dict):
        found = "an empty file" if data is None else _describe_value(data)
        message = f"expected a mapping of character fields (name:, description:, …), got {found}"
        return None, document, [*problems, problem(document.line_of(()), (), message)]

    try:
        character = Character.model_validate(data, context={"source_path": path})
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            loc = tuple(detail["loc"])
            message = _message(detail)
            if loc == ("id",) and "id" not in data:
                message += " (made from the file name; add an `id:` line)"
            problems.append(problem(document.line_of(loc), loc, message))
        character = None
    problems.sort(key=lambda p: p.line)
    return (None if problems else character), document, problems


class _UnreadableFile(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _UnreadableFile(0, f"file too large ({size} bytes; at most {MAX_FILE_BYTES})")
        raw = path.read_bytes()
    except OSError as error:
        raise _UnreadableFile(0, f"cannot read: {error.strerror or error}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise _UnreadableFile(line, "not UTF-8 text (save the file as UTF-8)") from None


def _duplicates(loaded: list[tuple[Character, YamlDocument]]) -> list[CharacterProblem]:
    """Ids and names share one namespace, since lookups accept either."""
    owners: dict[str, Path] = {}
    problems = []
    for character, document in loaded:
        path = character.source_path or Path("?")
        keys = {character.id.casefold(): "id", character.name.casefold(): "name"}
        for key, field in keys.items():
            owner = owners.get(key)
            if owner is not None and owner != path:
                value = character.id if field == "id" else character.name
                message = f"duplicate {field} {value!r}: already used by {owner}"
                problems.append(CharacterProblem(path, document.line_of((field,)), field, message))
        for key in keys:
            owners.setdefault(key, path)
    return problems


def format_loc(loc: Loc) -> str:
    """``("examples", 2, "ai")`` → ``"examples[2].ai"``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(detail: ErrorDetails) -> str:
    kind = detail["type"]
    loc = tuple(detail["loc"])
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return _unknown_field(loc)
    if kind == "string_pattern_mismatch" and loc == ("id",):
        return (
            "must be 1-64 lower-case letters, digits, '-' or '_', starting with a letter "
            f"or digit, got {detail['input']!r}"
        )
    message = detail["msg"]
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    return f"{message}, got {_describe_value(detail['input'])}"


def _unknown_field(loc: Loc) -> str:
    key = str(loc[-1])
    allowed = _fields_of(_model_at(loc[:-1]))
    if len(loc) == 1 and key in SILLYTAVERN_FIELDS:
        return f"unknown field; SillyTavern's {key!r} is called {SILLYTAVERN_FIELDS[key]!r} here"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    message = f"unknown field; did you mean {close[0]!r}?" if close else "unknown field"
    if 0 < len(allowed) <= 6:
        return f"{message} (allowed: {', '.join(allowed)})"
    return message if close else f"{message} (`troupe schema` lists every field)"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The schema model that validates the mapping at ``loc``."""
    model: type[BaseModel] | None = Character
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field else None
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """Find the model inside ``Scene | None``, ``list[ExampleExchange]`` and the like."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, types.UnionType, typing.Union):
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None


def _fields_of(model: type[BaseModel] | None) -> list[str]:
    return list(model.model_fields) if model is not None else []


def _describe_value(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
