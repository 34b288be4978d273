"""Live reload: character files edited on disk take effect within seconds.

A broken edit never takes a character away: the last good version of a broken file stays in
use beside the good files' new versions, and the problems are reported (logged, and handed
to the error hooks for the owner to see). Problems found at start are told to each hook as
it is added.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.characters.budget import Budget
from bot.characters.library import CharacterLibrary
from bot.characters.loader import CHARACTER_GLOBS, CharacterLoadError, LoadReport, read_characters
from bot.characters.lore.files import FOLDER, book_files, book_id_of
from bot.characters.prompt import DEFAULT_BUDGET

log = logging.getLogger("bot.characters")

#: Told about a broken edit of the character files.
ErrorHook = Callable[[CharacterLoadError], Awaitable[None]]

#: What identifies a folder's state: each character file's name, modification time and size.
Signature = frozenset[tuple[str, int, int]]


def folder_signature(folder: Path) -> Signature:
    """A cheap fingerprint of the folder's character and world book files (none is read)."""
    entries = set()
    paths = [*(p for pattern in CHARACTER_GLOBS for p in folder.glob(pattern)), *book_files(folder)]
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue  # removed while listing
        entries.add((str(path.relative_to(folder)), stat.st_mtime_ns, stat.st_size))
    return frozenset(entries)


def broken_characters_notice(error: CharacterLoadError, *, shown: int = 10) -> str:
    """A short message for the owner about a broken edit, listing the first problems."""
    problems = [str(problem) for problem in error.problems]
    more = len(problems) - shown
    lines = problems[:shown] + ([f"… and {more} more (see the log)"] if more > 0 else [])
    return "Character files have problems; the last good versions stay in use:\n" + "\n".join(lines)


def keep_last_good(report: LoadReport, last: CharacterLibrary) -> CharacterLibrary:
    """``report``'s good characters and world books, and the last good version of each broken
    file's one (unless a good file now uses its id or name)."""
    broken = {problem.path for problem in report.problems}
    kept = list(report.library)
    for character in last:
        if character.source_path in broken and not (
            character.id in report.library or character.name in report.library
        ):
            kept.append(character)
    books = dict(report.library.books)
    broken_books = {book_id_of(path) for path in broken if path.parent.name == FOLDER}
    for book_id in broken_books - books.keys():
        if book_id in last.books:
            books[book_id] = last.books[book_id]
    return CharacterLibrary(kept, books=books)


class CharacterWatcher:
    """Polls a folder and hands every good new library to ``on_reload``."""

    def __init__(
        self,
        folder: Path,
        *,
        on_reload: Callable[[CharacterLibrary], None],
        interval: float = 2.0,
        library: CharacterLibrary | None = None,
        problems: CharacterLoadError | None = None,
        budget: Budget = DEFAULT_BUDGET,
    ) -> None:
        """``library`` is what is in use (the loaded part of the folder), ``problems`` what
        made the rest of it fail at start; ``budget`` the token budget characters must fit."""
        self._folder = folder
        self._on_reload = on_reload
        self._error_hooks: list[ErrorHook] = []
        self._interval = interval
        self._seen = folder_signature(folder)
        self._library = library
        self._budget = budget
        self._standing = problems
        #: Hooks added while start-up problems stand, not yet told of them.
        self._untold: list[ErrorHook] = []

    def add_error_hook(self, hook: ErrorHook) -> None:
        """Also tell ``hook`` when an edit is broken (say, to post in a moderators' channel),
        and of the problems found at start, if they still stand."""
        self._error_hooks.append(hook)
        if self._standing is not None:
            self._untold.append(hook)

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled."""
        # Telling may wait for a platform to connect: it must not hold the reloads up.
        async with asyncio.TaskGroup() as telling:
            while True:
                while self._untold and self._standing is not None:
                    telling.create_task(_tell(self._untold.pop(), self._standing))
                await asyncio.sleep(self._interval)
                await self.check()

    async def check(self) -> bool:
        """Reload if the folder changed; ``True`` when a new library was put in use."""
        signature = folder_signature(self._folder)
        if signature == self._seen:
            return False
        self._seen = signature
        report = await asyncio.to_thread(read_characters, self._folder, budget=self._budget)
        library = report.library
        self._standing = None
        self._untold.clear()
        if report.problems:
            error = report.error()
            log.error("character files have problems; keeping the last good ones:\n%s", error)
            for hook in self._error_hooks:
                await _tell(hook, error)
            if self._library is None or not len(library):
                return False
            library = keep_last_good(report, self._library)
            if list(library) == list(self._library) and library.books == self._library.books:
                return False  # only broken files changed: what is in use stays as it was
        self._library = library
        self._on_reload(library)
        log.info("reloaded %d characters from %s", len(library), self._folder)
        return True


async def _tell(hook: ErrorHook, error: CharacterLoadError) -> None:
    try:
        await hook(error)
    except Exception:
        log.exception("a character reload error hook failed")
