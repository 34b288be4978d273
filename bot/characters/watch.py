"""Live reload: character files edited on disk take effect within seconds.

A broken edit never takes a character away: the last good library stays in use and the
problems are reported (logged, and handed to ``on_error`` for the owner to see).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.characters.library import CharacterLibrary
from bot.characters.loader import CHARACTER_GLOBS, CharacterLoadError, load_characters

log = logging.getLogger("bot.characters")

#: Told about a broken edit of the character files.
ErrorHook = Callable[[CharacterLoadError], Awaitable[None]]

#: What identifies a folder's state: each character file's name, modification time and size.
Signature = frozenset[tuple[str, int, int]]


def folder_signature(folder: Path) -> Signature:
    """A cheap fingerprint of the folder's character files (no file is read)."""
    entries = set()
    for pattern in CHARACTER_GLOBS:
        for path in folder.glob(pattern):
            try:
                stat = path.stat()
            except OSError:
                continue  # removed while listing
            entries.add((path.name, stat.st_mtime_ns, stat.st_size))
    return frozenset(entries)


def broken_characters_notice(error: CharacterLoadError, *, shown: int = 10) -> str:
    """A short message for the owner about a broken edit, listing the first problems."""
    problems = [str(problem) for problem in error.problems]
    more = len(problems) - shown
    lines = problems[:shown] + ([f"… and {more} more (see the log)"] if more > 0 else [])
    return "Character files have problems; the last good versions stay in use:\n" + "\n".join(lines)


class CharacterWatcher:
    """Polls a folder and hands every good new library to ``on_reload``."""

    def __init__(
        self,
        folder: Path,
        *,
        on_reload: Callable[[CharacterLibrary], None],
        interval: float = 2.0,
    ) -> None:
        self._folder = folder
        self._on_reload = on_reload
        self._error_hooks: list[ErrorHook] = []
        self._interval = interval
        self._seen = folder_signature(folder)

    def add_error_hook(self, hook: ErrorHook) -> None:
        """Also tell ``hook`` when an edit is broken (say, to post in a moderators' channel)."""
        self._error_hooks.append(hook)

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.check()

    async def check(self) -> bool:
        """Reload if the folder changed; ``True`` when a new library was put in use."""
        signature = folder_signature(self._folder)
        if signature == self._seen:
            return False
        self._seen = signature
        try:
            library = await asyncio.to_thread(load_characters, self._folder)
        except CharacterLoadError as error:
            log.error("character files have problems; keeping the last good ones:\n%s", error)
            for hook in self._error_hooks:
                try:
                    await hook(error)
                except Exception:
                    log.exception("a character reload error hook failed")
            return False
        self._on_reload(library)
        log.info("reloaded %d characters from %s", len(library), self._folder)
        return True
