"""The neutral shape of a chat message, as every platform adapter hands it to the engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Where a conversation lives. A Discord thread or a Telegram topic is its own conversation."""

    platform: str
    chat_id: str
    thread_id: str = ""

    def __str__(self) -> str:
        thread = f"/{self.thread_id}" if self.thread_id else ""
        return f"{self.platform}:{self.chat_id}{thread}"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message from a human (or another bot), with the facts the trigger policy needs.

    Adapters fill in what only the platform knows (is it a DM, does it @mention the bot, does
    it reply to a character's message); the engine works out the rest (does it say a
    character's name).
    """

    key: ConversationKey
    author_id: str
    author_name: str
    text: str
    is_direct: bool = False
    mentions_bot: bool = False
    replies_to_bot: bool = False
    mentions_others: bool = False
    author_is_bot: bool = False
    #: The author may administer this chat (Manage Server, a group admin); limits spare them.
    author_is_admin: bool = False
    platform_message_id: str | None = None
    #: The platform id of the message this one replies to, if any.
    reply_to_message_id: str | None = None
    #: The Discord server or Telegram group (``None`` in direct messages); its moderation
    #: settings apply.
    server_id: str | None = None
    #: The channel or group title, used as the ``group`` scene name when a character has none.
    channel_name: str | None = None
