"""The stand-in's picture of Telegram: users, chats, messages, drafts and recorded calls.

Tests create users and chats through :class:`~tests.standins.telegram.TelegramStandIn` and
read these objects afterwards to assert what a person in the chat would see.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

JSON = dict[str, Any]
ChatType = Literal["private", "group", "supergroup"]


@dataclass(eq=False)
class User:
    """A Telegram account; the bot itself is one too (``is_bot=True``)."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    is_bot: bool = False
    language_code: str | None = "en"

    def to_api(self) -> JSON:
        """Return the Bot API ``User`` object."""
        data: JSON = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass(eq=False)
class Edit:
    """One state of a message: its text, entities and keyboard from ``at`` on."""

    text: str
    entities: list[JSON]
    reply_markup: JSON | None
    at: float


@dataclass(eq=False)
class Message:
    """A message in a chat, as the chat's members see it.

    ``history`` holds every state the message went through (the first is as sent); ``text``,
    ``entities`` and ``reply_markup`` are the current one. ``deleted`` messages stay in the
    chat's list so tests can see that they existed. A ``photo`` message shows ``text`` as its
    caption (empty: none).
    """

    message_id: int
    chat: Chat
    sender: User
    date: int
    text: str
    entities: list[JSON] = field(default_factory=list)
    reply_markup: JSON | None = None
    thread_id: int | None = None
    reply_to: Message | None = None
    service: JSON | None = None
    deleted: bool = False
    edit_date: int | None = None
    history: list[Edit] = field(default_factory=list)
    photo: bool = False

    @property
    def texts(self) -> list[str]:
        """Every text the message showed, first to last."""
        return [edit.text for edit in self.history]

    @property
    def buttons(self) -> list[JSON]:
        """The inline keyboard's buttons, row by row, flattened."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    def to_api(self, *, with_reply: bool = True) -> JSON:
        """Return the Bot API ``Message`` object."""
        data: JSON = {
            "message_id": self.message_id,
            "from": self.sender.to_api(),
            "chat": self.chat.to_api(),
            "date": self.date,
        }
        if self.thread_id is not None:
            data["message_thread_id"] = self.thread_id
            data["is_topic_message"] = True
        if self.service is not None:
            data.update(copy.deepcopy(self.service))
        elif self.photo:
            size = {"file_unique_id": f"p{self.message_id}", "width": 640, "height": 480}
            data["photo"] = [{"file_id": f"photo-{self.message_id}", **size}]
            if self.text:
                data["caption"] = self.text
        else:
            data["text"] = self.text
        if self.entities:
            data["caption_entities" if self.photo else "entities"] = copy.deepcopy(self.entities)
        if self.reply_markup is not None:
            data["reply_markup"] = copy.deepcopy(self.reply_markup)
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if with_reply and self.reply_to is not None:
            data["reply_to_message"] = self.reply_to.to_api(with_reply=False)
        return data


@dataclass(eq=False)
class Draft:
    """A streamed ``sendMessageDraft`` preview: every text sent under one ``draft_id``."""

    draft_id: int
    chat: Chat
    thread_id: int | None
    texts: list[str] = field(default_factory=list)
    entities: list[JSON] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text the preview shows now."""
        return self.texts[-1] if self.texts else ""


@dataclass(eq=False)
class Chat:
    """A private chat, group or supergroup (optionally a forum with topics).

    ``admins`` are user ids (the first is the creator); ``bot_is_admin`` also makes the bot
    see every message despite privacy mode. ``blocked`` marks a private chat whose user
    blocked the bot, or a group the bot was removed from.
    """

    id: int
    type: ChatType
    title: str | None = None
    user: User | None = None
    username: str | None = None
    is_forum: bool = False
    members: dict[int, User] = field(default_factory=dict)
    admins: list[int] = field(default_factory=list)
    bot_is_admin: bool = False
    blocked: bool = False
    topics: dict[int, str] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    drafts: dict[int, Draft] = field(default_factory=dict)

    @property
    def is_group(self) -> bool:
        """True for groups and supergroups."""
        return self.type != "private"

    def to_api(self) -> JSON:
        """Return the Bot API ``Chat`` object."""
        data: JSON = {"id": self.id, "type": self.type}
        if self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.username is not None:
                data["username"] = self.user.username
        else:
            data["title"] = self.title
            if self.username is not None:
                data["username"] = self.username
        if self.is_forum:
            data["is_forum"] = True
        return data

    def message(self, message_id: int) -> Message | None:
        """Return the message with this id, deleted or not, or None."""
        return next((m for m in self.messages if m.message_id == message_id), None)

    def visible(self, thread_id: int | None = None) -> list[Message]:
        """Messages not deleted and not service messages, optionally of one forum topic."""
        return [
            m
            for m in self.messages
            if not m.deleted
            and m.service is None
            and (thread_id is None or m.thread_id == thread_id)
        ]

    def bot_messages(self, thread_id: int | None = None) -> list[Message]:
        """Visible messages the bot sent, optionally in one forum topic."""
        return [m for m in self.visible(thread_id) if m.sender.is_bot]


@dataclass(eq=False)
class Call:
    """One Bot API request the bot made, and what the stand-in answered.

    ``params`` are decoded: numbers are ints, JSON-serialised fields (``entities``,
    ``reply_markup``, ``scope``, ...) are Python objects. ``at`` is seconds since the stand-in
    started (monotonic).
    """

    method: str
    params: JSON
    at: float
    status: int = 0
    result: Any = None
    description: str | None = None
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.status == 200


@dataclass
class WebhookDelivery:
    """One POST of an update to the bot's webhook and the HTTP status it got (0: no answer)."""

    update: JSON
    secret: str | None
    status: int
    at: float
