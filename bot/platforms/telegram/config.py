"""The Telegram adapter's settings, from the ``telegram`` section of
:class:`~bot.settings.Settings`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.settings import DEFAULT_TELEGRAM_API_URL, ConfigError, TelegramSettings

__all__ = ["ConfigError", "TelegramConfig"]


def _random_secret() -> str:
    """A webhook secret nobody can guess."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    """How to reach Telegram and how updates come in.

    Long polling unless ``webhook_url`` is set; in webhook mode Telegram must send
    ``webhook_secret`` in the ``X-Telegram-Bot-Api-Secret-Token`` header, and requests without
    it are refused.
    """

    token: str = field(repr=False)
    #: Bot API base URL ending in ``/bot``; the token is appended to it.
    api_base_url: str = DEFAULT_TELEGRAM_API_URL
    #: The public HTTPS URL Telegram posts updates to (webhook mode), if any.
    webhook_url: str | None = None
    webhook_secret: str = field(default_factory=_random_secret, repr=False)
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
    def from_settings(cls, settings: TelegramSettings) -> TelegramConfig | None:
        """The adapter's settings, or ``None`` when ``TELEGRAM_TOKEN`` is not set (the webhook
        secret is random unless ``TELEGRAM_WEBHOOK_SECRET`` is set)."""
        if settings.token is None:
            return None
        secret = settings.webhook_secret
        return cls(
            token=settings.token.get_secret_value(),
            api_base_url=settings.api_base_url,
            webhook_url=settings.webhook_url,
            webhook_secret=_random_secret() if secret is None else secret.get_secret_value(),
            listen_host=settings.listen_host,
            listen_port=settings.listen_port,
        )
