"""The Telegram adapter's settings, read from the environment."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.config import ConfigError

__all__ = ["DEFAULT_API_BASE_URL", "ConfigError", "TelegramConfig"]

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
#: What Telegram allows in ``secret_token``.
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    """How to reach Telegram and how updates come in.

    Long polling unless ``webhook_url`` is set; in webhook mode Telegram must send
    ``webhook_secret`` in the ``X-Telegram-Bot-Api-Secret-Token`` header, and requests without
    it are refused.
    """

    token: str = field(repr=False)
    #: Bot API base URL ending in ``/bot``; the token is appended to it.
    api_base_url: str = DEFAULT_API_BASE_URL
    #: The public HTTPS URL Telegram posts updates to (webhook mode), if any.
    webhook_url: str | None = None
    webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    #: Where the webhook server listens (behind a reverse proxy, typically).
    listen_host: str = "0.0.0.0"
    listen_port: int = 8443
    #: Seconds a long poll waits for updates.
    poll_timeout: int = 30

    @property
    def file_base_url(self) -> str:
        """Base URL for file downloads on the same Bot API server."""
        return self.api_base_url.removesuffix("bot") + "file/bot"

    @property
    def webhook_path(self) -> str:
        """The path of ``webhook_url``, which the local server answers on."""
        return urlsplit(self.webhook_url or "").path.lstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TelegramConfig | None:
        """The settings from ``TELEGRAM_*`` variables, or ``None`` when no token is set.

        ``TELEGRAM_TOKEN`` (from @BotFather), ``TELEGRAM_API_BASE_URL`` (a self-hosted Bot
        API server), ``TELEGRAM_WEBHOOK_URL``, ``TELEGRAM_WEBHOOK_SECRET`` (random when unset),
        ``TELEGRAM_LISTEN_HOST`` and ``TELEGRAM_LISTEN_PORT``.
        """
        token = environ.get("TELEGRAM_TOKEN", "").strip()
        if not token:
            return None
        values: dict[str, object] = {"token": token}
        if base := environ.get("TELEGRAM_API_BASE_URL", "").strip():
            values["api_base_url"] = _api_base_url(base)
        if webhook := environ.get("TELEGRAM_WEBHOOK_URL", "").strip():
            if urlsplit(webhook).scheme not in ("http", "https"):
                raise ConfigError("TELEGRAM_WEBHOOK_URL must be an https:// URL")
            values["webhook_url"] = webhook
        if secret := environ.get("TELEGRAM_WEBHOOK_SECRET", "").strip():
            if not _SECRET.fullmatch(secret):
                raise ConfigError(
                    "TELEGRAM_WEBHOOK_SECRET may only use A-Z, a-z, 0-9, _ and - "
                    "(1 to 256 characters)"
                )
            values["webhook_secret"] = secret
        if host := environ.get("TELEGRAM_LISTEN_HOST", "").strip():
            values["listen_host"] = host
        if port := environ.get("TELEGRAM_LISTEN_PORT", "").strip():
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"TELEGRAM_LISTEN_PORT must be a port number, not {port!r}")
            values["listen_port"] = int(port)
        return cls(**values)  # type: ignore[arg-type]


def _api_base_url(url: str) -> str:
    """``http://host:8081`` or ``http://host:8081/bot`` → the form PTB wants (``.../bot``)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"TELEGRAM_API_BASE_URL must be an http(s) URL, not {url!r}")
    url = url.rstrip("/")
    return url if url.endswith("/bot") else url + "/bot"
