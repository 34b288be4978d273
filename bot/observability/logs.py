"""Logging for a running bot: text or JSON lines, a per-turn id, secrets masked.

>>> configure_logging(settings)              # doctest: +SKIP
>>> turn = new_turn_id()                      # when a platform message arrives
>>> logging.getLogger("bot").warning("...")   # every record in this task carries ``turn``

``TROUPE_LOG_FORMAT=json`` writes one JSON object per line (``time``, ``level``,
``logger``, ``message``, and ``turn_id`` / ``exc_info`` when there are any);
the default is readable text. The turn id lives in a :class:`~contextvars.ContextVar`, so
it follows a message through every ``await`` and into the tasks started from there.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from bot.settings import Settings

__all__ = [
    "JsonFormatter",
    "SecretMasker",
    "TextFormatter",
    "configure_logging",
    "current_turn_id",
    "new_turn_id",
]

MASK = "***"

#: ``Authorization: Bearer <token>`` and the like, whatever the token.
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
#: A Telegram bot token (``123456789:AA...``), as it appears in Bot API URLs.
_TELEGRAM_TOKEN = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}")

_turn_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "troupe_turn_id", default=None
)


def new_turn_id() -> str:
    """Start a turn: make a fresh 12-hex-digit id current and return it.

    It stays current in this task until the next call, and tasks created from here on
    inherit it; other tasks keep their own. Call it where a platform message arrives,
    in the task that handles that message.
    """
    # Only distinct, never secret: a random draw, not a system call per message.
    turn_id = f"{random.getrandbits(48):012x}"
    _turn_id.set(turn_id)
    return turn_id


def current_turn_id() -> str | None:
    """The id of the turn this code runs in, or ``None`` outside any turn."""
    return _turn_id.get()


class SecretMasker:
    """Replaces secrets with ``***``: the given values, and anything that looks like a
    bearer token or a Telegram bot token."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretMasker:
        """A masker for the secrets in ``settings``: the tokens and keys, and the password in
        ``DATABASE_URL``."""
        return cls([*settings.secrets(), *_url_passwords(settings.storage.database_url)])

    def mask(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _BEARER.sub(rf"\g<1>{MASK}", text)
        return _TELEGRAM_TOKEN.sub(MASK, text)

    def scrub(self, record: logging.LogRecord) -> None:
        """Mask ``record`` in place: its message with the arguments merged in, its
        exception text and its stack text."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # Arguments that don't fit the format: logging would print them raw to stderr.
            message = f"{record.msg} {record.args!r}"
        record.msg = self.mask(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set, so the masked text is what they print.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)


class _RecordFactory:
    """The log record factory :func:`configure_logging` installs.

    Every record is masked and stamped with the current turn id (``record.turn_id``) as
    it is made, in the caller's task, so every handler sees it masked, whichever logger
    it hangs on and whenever it was added. (So ``extra={"turn_id": ...}`` is refused.)
    """

    def __init__(self, base: Callable[..., logging.LogRecord], masker: SecretMasker) -> None:
        self.base = base
        self._masker = masker

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.base(*args, **kwargs)
        record.turn_id = current_turn_id()
        self._masker.scrub(record)
        return record


def _url_passwords(url: str) -> list[str]:
    """The password in a database URL, as written and decoded (either may be logged)."""
    try:
        password = urlsplit(url.strip()).password
    except ValueError:
        return []
    return [password, unquote(password)] if password else []


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [turn id]: message``, the turn part only inside a turn."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(turn)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Fill in the optional ``[turn …]`` part, then format as usual."""
        turn_id = getattr(record, "turn_id", None)
        record.turn = f" [turn {turn_id}]" if turn_id else ""
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as ``{"time", "level", "logger", "message"[, "turn_id", "exc_info",
        "stack_info"]}``; ``time`` is UTC ISO 8601 with milliseconds."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        turn_id = getattr(record, "turn_id", None)
        if turn_id:
            entry["turn_id"] = turn_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # ensure_ascii also escapes U+2028 and the like, which some readers split lines at.
        return json.dumps(entry, ensure_ascii=True)


class _TroupeHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` installs, told apart from anyone else's."""


def configure_logging(
    settings: Settings,
    *,
    stream: TextIO = sys.stderr,
    default_level: str = "WARNING",
) -> None:
    """Send every log record to ``stream`` in the configured format, and mask secrets in
    every record, whichever handler it goes to.

    ``TROUPE_LOG_LEVEL`` (``DEBUG`` … ``CRITICAL``, default ``default_level``) sets the
    root level; ``TROUPE_LOG_FORMAT`` is ``text`` (default) or ``json``. Calling it again
    replaces the handler it installed before and leaves other handlers alone.
    """
    level = logging.getLevelNamesMapping()[settings.logs.level or default_level.upper()]
    formatters: dict[str, type[logging.Formatter]] = {
        "text": TextFormatter,
        "json": JsonFormatter,
    }

    factory = logging.getLogRecordFactory()
    if isinstance(factory, _RecordFactory):
        factory = factory.base
    logging.setLogRecordFactory(_RecordFactory(factory, SecretMasker.from_settings(settings)))

    handler = _TroupeHandler(stream)
    handler.setFormatter(formatters[settings.logs.format]())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _TroupeHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
