"""The Telegram adapter: python-telegram-bot on top of the conversation engine.

python-telegram-bot is imported only inside this package. ``troupe run`` starts
:func:`run_telegram` when ``TELEGRAM_TOKEN`` is set; tests and embedders use
:class:`TelegramBot` directly.
"""

from bot.platforms.telegram.app import TelegramBot, privacy_notice, run_telegram
from bot.platforms.telegram.config import ConfigError, TelegramConfig

__all__ = ["ConfigError", "TelegramBot", "TelegramConfig", "privacy_notice", "run_telegram"]
