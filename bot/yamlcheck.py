"""Validating a YAML file against a pydantic model, with every problem's file, line and field.

Used for character files and for ``troupe.yaml``, so both report mistakes the same way::

    characters/aria.yaml:14: examples[2].ai: field required
    troupe.yaml:7: platforms.discord.trigger.anser_all: unknown field; did you mean 'answer_all'?
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.yamlsource import Loc, YamlDocument, YamlSyntaxError, parse_yaml

#: Files larger than this are refused unread.
MAX_FILE_BYTES = 1 << 20

_M = TypeVar("_M", bound=BaseModel)

#: Rewords one validation error for a particular model: ``(error, the file's data, the
#: standard message) -> the message to show``.
Explain = Callable[[ErrorDetails, Mapping[str, Any], str], str]


@dataclass(frozen=True, slots=True)
class FileProblem:
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


def validate_yaml_file(
    path: Path,
    model: type[_M],
    *,
    context: Mapping[str, Any] | None = None,
    renamed: Mapping[str, str] | None = None,
    explain: Explain | None = None,
    expected: str = "a mapping",
    schema_hint: str = "",
) -> tuple[_M | None, YamlDocument | None, list[FileProblem]]:
    """Parse ``path`` and validate it as ``model``; never raises for a bad file.

    Returns the instance (``None`` if anything is wrong), the parsed document (for the lines
    of its keys) and every problem, sorted by line. ``renamed`` maps top-level keys people
    carry over from elsewhere to a hint for when they show up unknown; ``schema_hint`` (say,
    "`troupe schema` lists every field") follows an unknown key with no close match.
    """

    def problem(line: int, loc: Loc, message: str) -> FileProblem:
        return FileProblem(path, line, format_loc(loc), message)

    try:
        document = parse_yaml(_read_text(path))
    except (YamlSyntaxError, _UnreadableFile) as error:
        return None, None, [problem(error.line, (), error.message)]

    problems = [problem(issue.line, issue.loc, issue.message) for issue in document.issues]
    data = document.data
    if not isinstance(data, dict):
        found = "an empty file" if data is None else describe_value(data)
        message = f"expected {expected}, got {found}"
        return None, document, [*problems, problem(document.line_of(()), (), message)]
    try:
        instance = model.model_validate(data, context=dict(context or {}))
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            # A bad key of a mapping is reported at the key itself, not at "<key>.[key]".
            loc = tuple(part for part in detail["loc"] if part != "[key]")
            message = _message(detail, model, renamed or {}, schema_hint)
            if explain is not None:
                message = explain(detail, data, message)
            problems.append(problem(document.line_of(loc), loc, message))
        instance = None
    problems.sort(key=lambda p: p.line)
    return (None if problems else instance), document, problems


def format_loc(loc: Loc) -> str:
    """``("examples", 2, "ai")`` → ``"examples[2].ai"``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe_value(value: Any) -> str:
    """A short description of a wrong value for an error message."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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


def _message(
    detail: ErrorDetails, root: type[BaseModel], renamed: Mapping[str, str], schema_hint: str
) -> str:
    kind = detail["type"]
    loc = tuple(detail["loc"])
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return _unknown_field(loc, root, renamed, schema_hint)
    message = detail["msg"]
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    return f"{message}, got {describe_value(detail['input'])}"


def _unknown_field(
    loc: Loc, root: type[BaseModel], renamed: Mapping[str, str], schema_hint: str
) -> str:
    key = str(loc[-1])
    parent = _model_at(root, loc[:-1])
    allowed = list(parent.model_fields) if parent is not None else []
    if len(loc) == 1 and key in renamed:
        return f"unknown field; {renamed[key]}"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    message = f"unknown field; did you mean {close[0]!r}?" if close else "unknown field"
    if 0 < len(allowed) <= 6:
        return f"{message} (allowed: {', '.join(allowed)})"
    return message if close or not schema_hint else f"{message} ({schema_hint})"


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc`` (through lists and dict values)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            # A key of a dict[str, Model] field: the value model carries on.
            continue
        model = _model_in(field.annotation)
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """Find the model inside ``Scene | None``, ``list[Example]``, ``dict[str, Server]``…"""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, dict, types.UnionType, typing.Union):
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None
