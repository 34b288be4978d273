"""Running Troupe on Telegram: the python-telegram-bot ``Application``, polling or webhook.

:class:`TelegramBot` builds the application on the engine's manager, registers the command
menus (``setMyCommands`` for private chats, groups and group admins), says plainly when privacy
mode hides ordinary group messages, and receives updates by long polling or, when a public URL
is configured, through a webhook that refuses requests without the secret token.
:func:`run_telegram` is what ``troupe run`` starts when ``TELEGRAM_TOKEN`` is set.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from types import TracebackType
from typing import Any, Self

from telegram import (
    Bot,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    Update,
    User,
)
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder

from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ConversationManager
from bot.conversation.services import PlatformServices
from bot.observability.delivery import DeliveryMonitor
from bot.observability.logs import SecretMasker
from bot.platforms.streaming import Rate
from bot.platforms.telegram.admins import Admins
from bot.platforms.telegram.commands import ADMIN_COMMANDS, COMMANDS, Commands
from bot.platforms.telegram.config import ConfigError, TelegramConfig
from bot.platforms.telegram.handlers import PLATFORM, Updates
from bot.platforms.telegram.moderation import ModerationReporter
from bot.platforms.telegram.request import TelegramRequest
from bot.platforms.telegram.sink import GROUP_RATE, TelegramReplies, TelegramSink
from bot.platforms.telegram.transport import ChatTarget
from bot.settings import Settings

__all__ = ["ALLOWED_UPDATES", "TelegramBot", "privacy_notice", "run_telegram"]

log = logging.getLogger("bot.platforms.telegram")

#: The updates the bot asks Telegram for.
ALLOWED_UPDATES = (
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.CALLBACK_QUERY,
    Update.MY_CHAT_MEMBER,
)

TelegramApplication = Application[Any, Any, Any, Any, Any, Any]


def privacy_notice(me: User) -> str | None:
    """What to tell the operator when privacy mode hides ordinary group messages."""
    if me.can_read_all_group_messages:
        return None
    return (
        f"Privacy mode is on for @{me.username}: in groups where it is not an admin, the bot "
        "only sees commands, replies to its messages and @mentions, so characters will not "
        "answer to their name or follow up. To change it, open @BotFather, send /setprivacy, "
        "choose the bot and pick Disable, then remove the bot from each group and add it back "
        "(or make it a group admin)."
    )


class TelegramBot:
    """The Telegram side of Troupe: start it, and it answers until stopped.

    ``private_interval`` / ``group_interval`` are the least seconds between two updates of a
    streaming reply (the final text goes out at once, within Telegram's limits);
    ``group_rate`` how many messages a group takes; ``typing_interval`` how often "typing…" is
    renewed. ``delivery`` hears how each Bot API call ended (see
    :class:`~bot.platforms.telegram.request.TelegramRequest`).
    """

    def __init__(
        self,
        manager: ConversationManager,
        config: TelegramConfig,
        *,
        private_interval: float = 1.0,
        group_interval: float = 3.0,
        group_rate: Rate = GROUP_RATE,
        typing_interval: float = 4.5,
        delivery: DeliveryMonitor | None = None,
    ) -> None:
        _hide_in_logs(config.token, config.webhook_secret)  # before PTB logs its URLs
        self.config = config
        #: How the Bot API calls end (the long polls aside), for ``/healthz``.
        self.delivery = delivery or DeliveryMonitor(PLATFORM)
        self.application: TelegramApplication = (
            ApplicationBuilder()
            .token(config.token)
            .base_url(config.api_base_url)
            .base_file_url(config.file_base_url)
            .request(TelegramRequest(self.delivery))
            .build()
        )
        self.replies = TelegramReplies(
            self.application.bot,
            manager,
            private_interval=private_interval,
            group_interval=group_interval,
            group_rate=group_rate,
            typing_interval=typing_interval,
        )
        self.admins = Admins(self.application.bot)
        updates = Updates(self.replies, self.admins)
        self.application.add_handlers(Commands(self.replies, self.admins).handlers())
        self.application.add_handlers(updates.handlers())
        self.application.add_error_handler(updates.on_error)
        self._stop_reporting = manager.add_moderation_hook(ModerationReporter(self.replies))

    @property
    def bot(self) -> Bot:
        """The PTB ``Bot``."""
        bot: Bot = self.application.bot
        return bot

    async def start(self) -> None:
        """Check the token, announce the commands, and start receiving updates."""
        app = self.application
        try:
            await app.initialize()
        except InvalidToken:
            # PTB's message contains the token; this one must not.
            raise ConfigError(
                "Telegram rejected TELEGRAM_TOKEN; check it with @BotFather"
            ) from None
        await self._announce()
        updater = app.updater
        if updater is None:
            raise RuntimeError("the application was built without an updater")
        config = self.config
        if config.webhook_url:
            await updater.start_webhook(
                listen=config.listen_host,
                port=config.listen_port,
                url_path=config.webhook_path,
                webhook_url=config.webhook_url,
                secret_token=config.webhook_secret,
                allowed_updates=list(ALLOWED_UPDATES),
            )
            mode = f"a webhook at {config.webhook_url}"
        else:
            await updater.start_polling(
                timeout=config.poll_timeout, allowed_updates=list(ALLOWED_UPDATES)
            )
            mode = "long polling"
        await app.start()
        log.info("Telegram: @%s is running with %s", self.bot.username, mode)
        self.replies.manager.resume_with(PLATFORM, self.resumed_sink)

    async def resumed_sink(self, key: ConversationKey) -> TelegramSink:
        """A sink for a turn resumed in ``key``'s chat or topic (a blocked bot finds out
        when it posts)."""
        chat_id = int(key.chat_id)
        target = ChatTarget(chat_id, int(key.thread_id) if key.thread_id else None)
        # Private chats have positive ids, groups negative ones.
        return self.replies.sink(key, target, private=chat_id > 0)

    async def stop(self) -> None:
        """Stop receiving updates and finish the replies in flight."""
        app = self.application
        self._stop_reporting()
        self._stop_reporting = lambda: None  # stopping twice is harmless
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _announce(self) -> None:
        bot = self.bot
        await bot.set_my_commands(COMMANDS, scope=BotCommandScopeAllPrivateChats())
        await bot.set_my_commands(COMMANDS, scope=BotCommandScopeAllGroupChats())
        await bot.set_my_commands(ADMIN_COMMANDS, scope=BotCommandScopeAllChatAdministrators())
        notice = privacy_notice(bot.bot)
        if notice:
            log.warning(notice)


async def run_telegram(services: PlatformServices, settings: Settings) -> None:
    """Run the Telegram bot on ``services`` until cancelled (``troupe run``)."""
    config = TelegramConfig.from_settings(settings.telegram)
    if config is None:
        raise ConfigError("TELEGRAM_TOKEN is not set")
    async with TelegramBot(services.manager, config, delivery=services.delivery) as telegram:
        hook = partial(_report_broken_characters, telegram.replies, services.manager)
        services.on_broken_characters(hook)
        await asyncio.Event().wait()


async def _report_broken_characters(
    replies: TelegramReplies, manager: ConversationManager, text: str
) -> None:
    """A broken character edit: tell every moderators' chat (the log has it too)."""
    for chat_id in await manager.policies.moderators_chats(PLATFORM):
        try:
            await replies.notice(ChatTarget(int(chat_id)), text, private=False)
        except (ValueError, TelegramError) as failure:
            log.warning("could not tell the moderators' chat %s: %s", chat_id, failure)


class _MaskSecrets(logging.Filter):
    """Masks the bot token and the webhook secret in log records: httpx logs request URLs,
    which contain the token, and PTB's debug log shows ``setWebhook``'s secret. ``troupe run``
    masks every record anyway; this covers a :class:`TelegramBot` run without it."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secrets
        self._masker = SecretMasker(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        self._masker.scrub(record)
        return True


#: Loggers that may see the secrets (a filter on a logger does not cover its children).
_SECRET_LOGGERS = (
    "httpx",
    "telegram",
    "telegram.Bot",
    "telegram.ext",
    "telegram.ext.Application",
    "telegram.ext.ExtBot",
    "telegram.ext.Updater",
    "telegram.request.BaseRequest",
    "telegram.request.HTTPXRequest",
    "bot.platforms.telegram",
)


def _hide_in_logs(*secrets: str) -> None:
    for name in _SECRET_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _MaskSecrets) and f.secrets == secrets for f in logger.filters):
            logger.addFilter(_MaskSecrets(secrets))
