"""The stand-in's world: users, guilds, roles, members, channels, threads, messages, webhooks.

Every entity is a plain dataclass that knows its own Discord JSON shape (``to_payload``), so the
REST handlers and the gateway serialise the same object the same way, and tests inspect the very
objects the bot changed (``message.content``, ``message.edits``, ``message.pings``...).
"""

from __future__ import annotations

import enum
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .permissions import Overwrite, OverwriteType, Permission, compute_permissions
from .snowflake import DISCORD_EPOCH_MS

JSON = dict[str, Any]

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def iso_timestamp(at: datetime | None = None) -> str:
    """Discord's ISO-8601 timestamp format."""
    return (at or datetime.now(UTC)).isoformat()


def snowflake_time(snowflake: int) -> str:
    """The creation time encoded in a snowflake, as an ISO timestamp."""
    return iso_timestamp(datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, UTC))


class ChannelType(enum.IntEnum):
    """The channel kinds the stand-in models (values are Discord's)."""

    GUILD_TEXT = 0
    DM = 1
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12


class MessageType(enum.IntEnum):
    """The message kinds the stand-in produces (values are Discord's)."""

    DEFAULT = 0
    REPLY = 19
    CHAT_INPUT_COMMAND = 20


class MessageFlag(enum.IntFlag):
    """Message flags the stand-in sets or reads."""

    EPHEMERAL = 1 << 6
    LOADING = 1 << 7


NO_FLAGS = MessageFlag(0)


@dataclass(eq=False)
class User:
    """A Discord account: a person, another bot, or the bot under test (``bot=True``)."""

    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None
    #: The user blocked the bot or takes no DMs: the bot's DMs to them fail with 50007.
    dms_closed: bool = False

    @property
    def mention(self) -> str:
        """The ``<@id>`` form that pings this user."""
        return f"<@{self.id}>"

    def to_payload(self) -> JSON:
        """Discord's user object."""
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": self.avatar,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass(eq=False)
class Role:
    """A guild role; the role whose id equals the guild id is @everyone."""

    id: int
    guild_id: int
    name: str
    permissions: Permission
    position: int = 0
    bot_id: int | None = None

    @property
    def mention(self) -> str:
        """The ``<@&id>`` form that pings this role."""
        return f"<@&{self.id}>"

    def to_payload(self) -> JSON:
        """Discord's role object."""
        payload: JSON = {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(int(self.permissions)),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.bot_id is not None,
            "mentionable": False,
            "flags": 0,
            "icon": None,
            "unicode_emoji": None,
        }
        if self.bot_id is not None:
            payload["tags"] = {"bot_id": str(self.bot_id)}
        return payload


@dataclass(eq=False)
class Member:
    """A user's membership of a guild."""

    user: User
    guild: Guild
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_timestamp)

    def to_payload(self, *, with_user: bool = True) -> JSON:
        """Discord's guild member object (messages carry it without ``user``)."""
        payload: JSON = {
            "roles": [str(r) for r in self.role_ids],
            "joined_at": self.joined_at,
            "nick": self.nick,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "premium_since": None,
            "avatar": None,
            "communication_disabled_until": None,
        }
        if with_user:
            payload["user"] = self.user.to_payload()
        return payload


@dataclass(eq=False)
class Guild:
    """A server: roles, members and channels, owned by ``owner_id``."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)

    @property
    def everyone(self) -> Role:
        """The @everyone role."""
        return self.roles[self.id]

    def member(self, user: User | int) -> Member:
        """The membership of ``user``; ``KeyError`` when they are not in the guild."""
        return self.members[user if isinstance(user, int) else user.id]

    def permissions_for(self, user: User | int, channel: Channel | None = None) -> Permission:
        """``user``'s effective permissions in ``channel`` (guild-wide when ``None``)."""
        member = self.member(user)
        overwrites: list[Overwrite] = []
        if channel is not None:
            # Threads have no overwrites of their own: they follow the parent channel.
            overwrites = (channel.parent or channel).overwrites
        return compute_permissions(
            guild_id=self.id,
            owner_id=self.owner_id,
            member_id=member.user.id,
            everyone=self.everyone.permissions,
            role_ids=member.role_ids,
            role_permissions={r.id: r.permissions for r in self.roles.values()},
            overwrites=overwrites,
        )

    def to_payload(self) -> JSON:
        """The full GUILD_CREATE payload: channels, threads, roles and members included."""
        plain = [c for c in self.channels.values() if not c.is_thread]
        threads = [c for c in self.channels.values() if c.is_thread]
        return {
            "id": str(self.id),
            "name": self.name,
            "owner_id": str(self.owner_id),
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "features": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "application_id": None,
            "unavailable": False,
            "large": False,
            "lazy": True,
            # member_count == len(members) tells discord.py the guild is fully chunked.
            "member_count": len(self.members),
            "joined_at": snowflake_time(self.id),
            "roles": [r.to_payload() for r in self.roles.values()],
            "members": [m.to_payload() for m in self.members.values()],
            "channels": [c.to_payload(with_guild_id=False) for c in plain],
            "threads": [c.to_payload() for c in threads],
            "emojis": [],
            "stickers": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass(eq=False)
class Channel:
    """A text channel, a thread (``parent`` set) or a DM channel (``recipient`` set)."""

    id: int
    type: ChannelType
    name: str | None = None
    guild: Guild | None = None
    parent: Channel | None = None
    nsfw: bool = False
    topic: str | None = None
    overwrites: list[Overwrite] = field(default_factory=list)
    recipient: User | None = None
    owner_id: int | None = None
    position: int = 0
    messages: list[Message] = field(default_factory=list, repr=False)

    @property
    def is_thread(self) -> bool:
        """Whether this is a public or private thread."""
        return self.type in (ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD)

    @property
    def mention(self) -> str:
        """The ``<#id>`` form."""
        return f"<#{self.id}>"

    def overwrite_for(self, target: Role | User) -> Overwrite:
        """The overwrite for ``target``, created empty if the channel has none yet."""
        kind = OverwriteType.ROLE if isinstance(target, Role) else OverwriteType.MEMBER
        for overwrite in self.overwrites:
            if overwrite.id == target.id and overwrite.type == kind:
                return overwrite
        overwrite = Overwrite(id=target.id, type=kind)
        self.overwrites.append(overwrite)
        return overwrite

    def live_messages(self) -> list[Message]:
        """Messages not deleted, oldest first."""
        return [m for m in self.messages if not m.deleted]

    def to_payload(self, *, with_guild_id: bool = True) -> JSON:
        """Discord's channel object for this kind of channel."""
        last = self.messages[-1].id if self.messages else None
        payload: JSON = {
            "id": str(self.id),
            "type": int(self.type),
            "last_message_id": str(last) if last else None,
            "flags": 0,
        }
        if self.type == ChannelType.DM:
            assert self.recipient is not None
            payload["recipients"] = [self.recipient.to_payload()]
            return payload
        assert self.guild is not None
        payload.update(name=self.name, rate_limit_per_user=0, nsfw=self.nsfw)
        if with_guild_id:
            payload["guild_id"] = str(self.guild.id)
        if self.is_thread:
            assert self.parent is not None
            payload.update(
                parent_id=str(self.parent.id),
                owner_id=str(self.owner_id),
                message_count=len(self.messages),
                total_message_sent=len(self.messages),
                member_count=1,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": snowflake_time(self.id),
                    "locked": False,
                    "create_timestamp": snowflake_time(self.id),
                },
            )
        else:
            payload.update(
                position=self.position,
                parent_id=None,
                topic=self.topic,
                default_auto_archive_duration=1440,
                permission_overwrites=[o.to_payload() for o in self.overwrites],
            )
        return payload


@dataclass(frozen=True)
class Pings:
    """Who a message actually notifies, after ``allowed_mentions`` is applied."""

    users: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()
    everyone: bool = False

    def __bool__(self) -> bool:
        return bool(self.users or self.roles or self.everyone)


@dataclass(frozen=True)
class Edit:
    """One edit of a message: when it landed (event-loop clock) and the content it set."""

    at: float
    content: str


@dataclass(eq=False)
class Message:
    """A message as the stand-in stores it, with what tests want to check about it.

    ``edits`` lists every edit (the bot's PATCHes, a scripted user's edits) with
    ``time.monotonic()`` timestamps, the event loop's clock, for cadence checks;
    ``allowed_mentions`` is exactly what the sender asked for, and ``pings`` what would notify;
    ``created_at`` is ``time.monotonic()`` when it was posted (first visible text).
    """

    id: int
    channel: Channel
    author: User
    content: str = ""
    type: MessageType = MessageType.DEFAULT
    flags: MessageFlag = NO_FLAGS
    reference: Message | None = None
    reply_pings_author: bool = True
    mentions: list[User] = field(default_factory=list)
    mention_roles: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    allowed_mentions: JSON | None = None
    webhook_id: int | None = None
    avatar_url: str | None = None
    application_id: int | None = None
    interaction_metadata: JSON | None = None
    tts: bool = False
    timestamp: str = field(default_factory=iso_timestamp)
    edited_timestamp: str | None = None
    edits: list[Edit] = field(default_factory=list)
    deleted: bool = False
    created_at: float = field(default_factory=time.monotonic)

    @property
    def guild(self) -> Guild | None:
        """The guild of the message's channel (``None`` in DMs)."""
        return self.channel.guild

    @property
    def ephemeral(self) -> bool:
        """Whether only the interacting user sees it (never dispatched on the gateway)."""
        return bool(self.flags & MessageFlag.EPHEMERAL)

    @property
    def pings(self) -> Pings:
        """Who this message notifies, following Discord's ``allowed_mentions`` rules.

        Without ``allowed_mentions`` everything written in the content pings; with it, only
        the kinds listed in ``parse`` and the ids listed in ``users``/``roles`` do. A reply
        pings its author unless ``replied_user`` is false.
        """
        users_written = {int(u) for u in _USER_MENTION.findall(self.content)}
        roles_written = {int(r) for r in _ROLE_MENTION.findall(self.content)}
        everyone_written = "@everyone" in self.content or "@here" in self.content
        rules = self.allowed_mentions
        if rules is None:
            parse = {"users", "roles", "everyone"}
            listed_users: set[int] = set()
            listed_roles: set[int] = set()
            replied_user = self.reply_pings_author
        else:
            parse = set(rules.get("parse") or [])
            listed_users = {int(u) for u in rules.get("users") or []}
            listed_roles = {int(r) for r in rules.get("roles") or []}
            replied_user = bool(rules.get("replied_user", False))
        users = users_written if "users" in parse else users_written & listed_users
        if self.reference is not None and replied_user:
            users = users | {self.reference.author.id}
        roles = roles_written if "roles" in parse else roles_written & listed_roles
        return Pings(frozenset(users), frozenset(roles), everyone_written and "everyone" in parse)

    def to_payload(self, *, with_reference: bool = True) -> JSON:
        """Discord's message object as REST returns it and MESSAGE_CREATE carries it."""
        channel = self.channel
        guild = channel.guild
        author = self.author.to_payload()
        if self.webhook_id is not None and self.interaction_metadata is None:
            author["discriminator"] = "0000"
        payload: JSON = {
            "id": str(self.id),
            "channel_id": str(channel.id),
            "type": int(self.type),
            "author": author,
            "content": self.content,
            "timestamp": self.timestamp,
            "edited_timestamp": self.edited_timestamp,
            "tts": self.tts,
            "mention_everyone": self.mention_everyone,
            "mentions": [self._mention_payload(u) for u in self.mentions],
            "mention_roles": [str(r) for r in self.mention_roles],
            "attachments": [],
            "embeds": self.embeds,
            "components": self.components,
            "reactions": [],
            "pinned": False,
            "flags": int(self.flags),
        }
        if guild is not None:
            payload["guild_id"] = str(guild.id)
            if self.webhook_id is None and self.author.id in guild.members:
                payload["member"] = guild.members[self.author.id].to_payload(with_user=False)
        if self.webhook_id is not None:
            payload["webhook_id"] = str(self.webhook_id)
        if self.application_id is not None:
            payload["application_id"] = str(self.application_id)
        if self.interaction_metadata is not None:
            payload["interaction_metadata"] = self.interaction_metadata
        if self.reference is not None:
            ref = self.reference
            payload["message_reference"] = {
                "type": 0,
                "message_id": str(ref.id),
                "channel_id": str(ref.channel.id),
                "guild_id": str(guild.id) if guild is not None else None,
            }
            if with_reference:
                deleted = ref.deleted
                payload["referenced_message"] = (
                    None if deleted else ref.to_payload(with_reference=False)
                )
        return payload

    def _mention_payload(self, user: User) -> JSON:
        payload = user.to_payload()
        guild = self.channel.guild
        if guild is not None and user.id in guild.members:
            payload["member"] = guild.members[user.id].to_payload(with_user=False)
        return payload


@dataclass(eq=False)
class Webhook:
    """A channel webhook; ``created_by`` is the user (the bot) that made it."""

    id: int
    token: str
    channel: Channel
    name: str
    created_by: User
    application_id: int | None = None
    avatar: str | None = None

    def to_payload(self) -> JSON:
        """Discord's webhook object (incoming webhook, type 1)."""
        guild = self.channel.guild
        return {
            "id": str(self.id),
            "type": 1,
            "guild_id": str(guild.id) if guild else None,
            "channel_id": str(self.channel.id),
            "name": self.name,
            "avatar": self.avatar,
            "token": self.token,
            "application_id": str(self.application_id) if self.application_id else None,
            "user": self.created_by.to_payload(),
        }
