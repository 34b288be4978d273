"""Loading character files, reporting every problem at once with file, line and field.

A writer who runs ``troupe check`` sees a list like::

    characters/aria.yaml:14: examples[2].ai: field required
    characters/aria.yaml:20: genration: unknown field; did you mean 'generation'?

covering YAML syntax errors, unknown keys, wrong types, out-of-range values, missing
fields, missing avatar files, and ids or names used by two characters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic_core import ErrorDetails

from bot.characters.budget import NEWEST_MESSAGE_TOKENS, Budget
from bot.characters.cards.files import has_card, is_card_path
from bot.characters.cards.load import load_card
from bot.characters.library import CharacterLibrary, UnknownCharacter
from bot.characters.lore.attach import attach_books
from bot.characters.lore.files import WorldBooks, read_world_books
from bot.characters.prompt import DEFAULT_BUDGET, constant_lore, fixed_tokens
from bot.characters.schema import SILLYTAVERN_FIELDS, Character, character_json_schema
from bot.errors import TroupeError
from bot.yamlcheck import FileProblem, validate_yaml_file
from bot.yamlsource import YamlDocument

__all__ = [
    "CharacterLibrary",
    "CharacterLoadError",
    "CharacterProblem",
    "LoadReport",
    "UnknownCharacter",
    "character_json_schema",
    "check_paths",
    "load_character",
    "load_characters",
    "read_characters",
]

#: File name patterns of character files inside a folder (a PNG counts if it holds a card).
CHARACTER_GLOBS = ("*.yaml", "*.yml", "*.png", "*.apng", "*.json", "*.charx")
#: What a folder without any of them is told: the patterns above, so the two cannot disagree.
NO_CHARACTER_FILES = f"no character files ({', '.join(CHARACTER_GLOBS)}) in this folder"


#: One problem in one character file (file, line, field path and message).
CharacterProblem = FileProblem


class CharacterLoadError(TroupeError):
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


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What reading character files gave: the good characters, and what is wrong.

    A file with a problem is left out of ``library``; ``warnings`` leave it in.
    """

    library: CharacterLibrary
    problems: list[CharacterProblem]
    warnings: list[CharacterProblem]

    def error(self) -> CharacterLoadError:
        """The problems as one error (to raise or to report)."""
        return CharacterLoadError(self.problems)


def read_characters(*paths: Path, budget: Budget = DEFAULT_BUDGET) -> LoadReport:
    """Read character files and folders (their ``*.yaml``/``*.yml``), keeping the good ones.

    Every file is read even after a broken one. An id or name (letter case ignored) used by
    two characters is a problem of the second file. A character whose fixed part leaves no
    room in ``budget`` for a reply and the newest message is a problem too (it could never
    answer); one past a quarter of the window is a warning.
    """
    files, problems = _collect_files(paths)
    warnings: list[CharacterProblem] = []
    # The world books of each folder that holds characters (lorebooks/ beside them).
    folders = [path for path in paths if path.is_dir()] + [file.parent for file in files]
    worlds: dict[Path, WorldBooks] = {}
    for folder in folders:
        if folder not in worlds:
            world = worlds[folder] = read_world_books(folder)
            problems.extend(world.problems)
            warnings.extend(world.warnings)
    loaded: list[tuple[Character, YamlDocument]] = []
    for file in files:
        character, document, file_problems = _load_file(file)
        problems.extend(file_problems)
        if character is not None and document is not None:
            book_problems, book_warnings = attach_books(character, document, worlds[file.parent])
            problems.extend(book_problems)
            warnings.extend(book_warnings)
            loaded.append((character, document))
    problems.extend(_duplicates(loaded))
    broken = {problem.path for problem in problems}
    good = []
    for character, _ in loaded:
        path = character.source_path or Path("?")
        if path in broken:
            continue
        verdict, problem = _fixed_part(character, path, budget)
        if verdict == "error":
            problems.append(problem)
        else:
            good.append(character)
            if verdict == "warning":
                warnings.append(problem)
            warnings.extend(_constant_lore_cut(character, path, budget))
    books = {book_id: book for world in worlds.values() for book_id, book in world.books.items()}
    return LoadReport(CharacterLibrary(good, books=books), problems, warnings)


def load_characters(*paths: Path, budget: Budget = DEFAULT_BUDGET) -> CharacterLibrary:
    """Like :func:`read_characters`, but every problem is raised at once
    (:class:`CharacterLoadError`) unless there is none."""
    report = read_characters(*paths, budget=budget)
    if report.problems:
        raise report.error()
    return report.library


def check_paths(paths: Sequence[Path], out: TextIO, *, budget: Budget = DEFAULT_BUDGET) -> int:
    """``troupe check``: print every problem and warning (or ``ok: N characters``); exit code
    1 when there is a problem, else 0."""
    report = read_characters(*paths, budget=budget)
    for warning in report.warnings:
        print(f"warning: {warning}", file=out)
    if report.problems:
        for problem in report.problems:
            print(problem, file=out)
        files = len({problem.path for problem in report.problems})
        print(f"{len(report.problems)} problem(s) in {files} file(s)", file=out)
        return 1
    library = report.library
    count = f"{len(library)} character{'' if len(library) == 1 else 's'}"
    print(f"ok: {count} ({', '.join(library.ids())})", file=out)
    return 0


def _fixed_part(character: Character, path: Path, budget: Budget) -> tuple[str, CharacterProblem]:
    """The budget verdict on ``character``'s fixed part, and the problem that says it."""
    tokens = fixed_tokens(character)
    completion = character.generation.max_completion_tokens or budget.max_completion_tokens
    verdict = budget.fixed_part_verdict(tokens, completion)
    window = budget.context_window
    parts = "persona, user persona, scene, examples and constant lore"
    if not any(entry.constant for book in character.lorebooks for entry in book.entries):
        parts = "persona, user persona, scene and examples"
    what = f"{parts} come to about {tokens:,} tokens"
    if verdict == "error":
        spare = budget.prompt_limit(completion) - NEWEST_MESSAGE_TOKENS
        message = (
            f"too long: {what}; with the reply ({completion:,}), the newest message "
            f"({NEWEST_MESSAGE_TOKENS:,}) and a margin ({budget.safety_margin:,}) that is over "
            f"the {window:,}-token window: cut at least {tokens - spare:,} tokens"
        )
    else:
        message = (
            f"long: {what}, over a quarter of the {window:,}-token window, so little "
            "history fits and the conversation forgets fast"
        )
    return verdict, CharacterProblem(path, 0, "", message)


def _constant_lore_cut(character: Character, path: Path, budget: Budget) -> list[CharacterProblem]:
    """A warning for each constant lore entry its budget never lets in."""
    return [
        CharacterProblem(
            path,
            0,
            "",
            f"constant lore entry {found.entry.label!r} of book {found.entry.book!r} "
            f"(about {found.tokens:,} tokens) does not fit its lore budget: it is never sent",
        )
        for found in constant_lore(character, budget=budget).cut
    ]


def _collect_files(paths: Sequence[Path]) -> tuple[list[Path], list[CharacterProblem]]:
    files: list[Path] = []
    problems: list[CharacterProblem] = []
    if not paths:
        problems.append(CharacterProblem(Path("."), 0, "", "no character files or folders given"))
    for path in paths:
        if path.is_dir():
            found = sorted(
                {f for pattern in CHARACTER_GLOBS for f in path.glob(pattern) if has_card(f)}
            )
            if not found:
                problems.append(CharacterProblem(path, 0, "", NO_CHARACTER_FILES))
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


def _load_file(path: Path) -> tuple[Character | None, YamlDocument | None, list[FileProblem]]:
    """Parse and validate one file; never raises for a bad file, returns its problems."""
    if is_card_path(path):
        return load_card(path)
    return validate_yaml_file(
        path,
        Character,
        context={"source_path": path},
        renamed={
            key: f"SillyTavern's {key!r} is called {name!r} here"
            for key, name in SILLYTAVERN_FIELDS.items()
        },
        explain=_explain_id,
        expected="a mapping of character fields (name:, description:, …)",
        schema_hint="`troupe schema` lists every field",
    )


def _explain_id(detail: ErrorDetails, data: Mapping[str, Any], message: str) -> str:
    """Ids follow the file name unless given, which a bad one should say."""
    if tuple(detail["loc"]) != ("id",):
        return message
    if detail["type"] == "string_pattern_mismatch":
        message = (
            "must be 1-64 lower-case letters, digits, '-' or '_', starting with a letter "
            f"or digit, got {detail['input']!r}"
        )
    if "id" not in data:
        message += " (made from the file name; add an `id:` line)"
    return message


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
