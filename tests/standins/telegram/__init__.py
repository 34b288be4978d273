"""A Telegram Bot API stand-in on 127.0.0.1 for end-to-end tests of the Telegram adapter.

Start one with ``async with TelegramStandIn() as tg:``, point python-telegram-bot at
``tg.base_url``, script users and chats, and inspect ``tg.calls`` and the chats' messages.
The guide is ``docs/standins.md``.
"""

from .formatting import ParseError, parse_html, parse_markdown, parse_markdown_v2, utf16_len
from .methods import ApiError
from .model import Call, Chat, Draft, Edit, Message, User, WebhookDelivery
from .ratelimit import RateLimit
from .server import DEFAULT_TOKEN, TelegramStandIn
from .updates import SECRET_HEADER, WebhookInfo, free_loopback_port

__all__ = [
    "DEFAULT_TOKEN",
    "SECRET_HEADER",
    "ApiError",
    "Call",
    "Chat",
    "Draft",
    "Edit",
    "Message",
    "ParseError",
    "RateLimit",
    "TelegramStandIn",
    "User",
    "WebhookDelivery",
    "WebhookInfo",
    "free_loopback_port",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "utf16_len",
]
