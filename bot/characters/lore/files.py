"""World books: lorebook files in the ``lorebooks/`` folder beside the characters.

A YAML file has the shape of a character's ``lorebook:`` field; a JSON file is a card's
``character_book`` (or a ``lorebook_v3`` export) or a SillyTavern world info file. The book's
id is the file's name. Problems name the file and the line (YAML) or the JSON path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bot.characters.lore.book import Lorebook, Remark, compile_book
from bot.characters.lore.formats import read_book_data
from bot.characters.lore.spec import LorebookSpec
from bot.yamlcheck import MAX_FILE_BYTES, FileProblem, format_loc, validate_yaml_file
from bot.yamlsource import YamlDocument

#: The world books' folder, inside the characters folder.
FOLDER = "lorebooks"
#: World book files in it.
BOOK_GLOBS = ("*.yaml", "*.yml", "*.json")


@dataclass(slots=True)
class WorldBooks:
    """The world books of one folder: the good ones by id, and what is wrong with the rest."""

    books: dict[str, Lorebook] = field(default_factory=dict)
    #: Book id -> its file, good or broken.
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[FileProblem] = field(default_factory=list)
    warnings: list[FileProblem] = field(default_factory=list)


def book_files(characters_folder: Path) -> list[Path]:
    """The world book files of ``characters_folder``, sorted."""
    folder = characters_folder / FOLDER
    return sorted({f for pattern in BOOK_GLOBS for f in folder.glob(pattern) if f.is_file()})


def read_world_books(characters_folder: Path) -> WorldBooks:
    """Every world book in ``characters_folder/lorebooks/``; never raises for a bad file."""
    found = WorldBooks()
    for path in book_files(characters_folder):
        book_id = book_id_of(path)
        found.files[book_id] = path
        book, problems, warnings = read_book_file(path, book_id)
        found.problems.extend(problems)
        found.warnings.extend(warnings)
        if book is not None:
            found.books[book_id] = book
    return found


def book_id_of(path: Path) -> str:
    """A world book's id: its file name without the extension."""
    return path.stem


def read_book_file(
    path: Path, book_id: str
) -> tuple[Lorebook | None, list[FileProblem], list[FileProblem]]:
    """The book in one file, its problems and its warnings."""
    if path.suffix.lower() == ".json":
        return _read_json(path, book_id)
    spec, document, problems = validate_yaml_file(
        path, LorebookSpec, expected="a lorebook (scan_depth:, entries:, …)"
    )
    if spec is None or document is None:
        return None, problems, []
    book, remarks = compile_book(spec, book_id)
    return book, [], remarks_at(path, remarks, document)


def remarks_at(
    path: Path, remarks: list[Remark], document: YamlDocument | None, prefix: tuple[str, ...] = ()
) -> list[FileProblem]:
    """``remarks`` as file problems, with their lines when the file is YAML."""
    problems = []
    for loc, message in remarks:
        full = (*prefix, *loc)
        line = document.line_of(full) if document is not None else 0
        problems.append(FileProblem(path, line, format_loc(full), message))
    return problems


def _read_json(
    path: Path, book_id: str
) -> tuple[Lorebook | None, list[FileProblem], list[FileProblem]]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None, [FileProblem(path, 0, "", "file too large")], []
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as error:
        return None, [FileProblem(path, 0, "", f"cannot read: {error.strerror or error}")], []
    except UnicodeDecodeError:
        return None, [FileProblem(path, 0, "", "not UTF-8 text")], []
    except json.JSONDecodeError as error:
        return None, [FileProblem(path, error.lineno, "", f"invalid JSON: {error.msg}")], []
    reading = read_book_data(data, book_id)
    return (
        reading.book,
        remarks_at(path, reading.problems, None),
        remarks_at(path, reading.warnings, None),
    )
