"""The registry of everything the stand-in knows, and the factories tests build it with.

``World`` only stores and looks things up; it never talks to the network. The stand-in wraps it
and tells connected bots about changes (see ``server.DiscordStandIn``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from .model import Channel, ChannelType, Guild, Member, Message, Role, User, Webhook
from .permissions import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    NO_PERMISSIONS,
    Permission,
)
from .snowflake import SnowflakeFactory


class UnknownEntity(LookupError):
    """An id that names nothing in the stand-in (REST answers it with a 404)."""

    def __init__(self, kind: str, code: int, entity_id: object) -> None:
        super().__init__(f"Unknown {kind}: {entity_id}")
        self.kind = kind
        self.code = code


@dataclass
class Application:
    """The bot's application: its id, bot user, flags and registered commands."""

    id: int
    name: str
    bot: User
    flags: int = 0
    global_commands: list[dict[str, object]] = field(default_factory=list)
    guild_commands: dict[int, list[dict[str, object]]] = field(default_factory=dict)

    def to_payload(self) -> dict[str, object]:
        """Discord's application object as ``GET /applications/@me`` returns it."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": self.flags,
            "owner": self.bot.to_payload(),
            "team": None,
            "bot": self.bot.to_payload(),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": 0,
        }


class World:
    """Users, guilds, channels, messages and webhooks, indexed by id."""

    def __init__(self, *, bot_name: str = "Troupe", application_flags: int = 0) -> None:
        self.ids = SnowflakeFactory()
        bot = User(id=self.ids.next_id(), username=bot_name, bot=True)
        self.application = Application(
            id=self.ids.next_id(), name=bot_name, bot=bot, flags=application_flags
        )
        self.users: dict[int, User] = {bot.id: bot}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.webhooks: dict[int, Webhook] = {}

    @property
    def bot(self) -> User:
        """The bot user the tests' client logs in as."""
        return self.application.bot

    # -- factories -----------------------------------------------------------------------

    def create_user(
        self, username: str, *, global_name: str | None = None, bot: bool = False
    ) -> User:
        """A new account (not yet in any guild)."""
        user = User(id=self.ids.next_id(), username=username, global_name=global_name, bot=bot)
        self.users[user.id] = user
        return user

    def create_guild(
        self,
        name: str,
        *,
        owner: User | None = None,
        bot_permissions: Permission = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: Permission = DEFAULT_EVERYONE_PERMISSIONS,
        shard: tuple[int, int] | None = None,
    ) -> Guild:
        """A guild with @everyone, the bot as a member with its managed role, and an owner.

        ``shard=(k, n)`` picks an id that lands on shard ``k`` of ``n``.
        """
        guild_id = self.ids.next_id(shard=shard)
        owner = owner or self.create_user(f"{name.lower().replace(' ', '-')}-owner")
        guild = Guild(id=guild_id, name=name, owner_id=owner.id)
        guild.roles[guild_id] = Role(guild_id, guild_id, "@everyone", everyone_permissions)
        self.guilds[guild_id] = guild
        self.add_member(guild, owner)
        bot_role = self.create_role(guild, self.bot.username, bot_permissions, bot_id=self.bot.id)
        self.add_member(guild, self.bot, roles=[bot_role])
        return guild

    def create_role(
        self,
        guild: Guild,
        name: str,
        permissions: Permission = NO_PERMISSIONS,
        *,
        bot_id: int | None = None,
    ) -> Role:
        """A role in ``guild``, placed above the existing ones."""
        role = Role(
            self.ids.next_id(),
            guild.id,
            name,
            permissions,
            position=len(guild.roles),
            bot_id=bot_id,
        )
        guild.roles[role.id] = role
        return role

    def add_member(
        self, guild: Guild, user: User, *, roles: list[Role] | None = None, nick: str | None = None
    ) -> Member:
        """Put ``user`` in ``guild`` with ``roles`` (@everyone is implied)."""
        member = Member(user=user, guild=guild, role_ids=[r.id for r in roles or []], nick=nick)
        guild.members[user.id] = member
        return member

    def create_text_channel(
        self, guild: Guild, name: str, *, nsfw: bool = False, topic: str | None = None
    ) -> Channel:
        """A text channel; ``nsfw=True`` makes it age-restricted."""
        channel = Channel(
            id=self.ids.next_id(),
            type=ChannelType.GUILD_TEXT,
            name=name,
            guild=guild,
            nsfw=nsfw,
            topic=topic,
            position=len(guild.channels),
        )
        return self._register(channel)

    def create_thread(
        self, parent: Channel, name: str, *, owner: User | None = None, private: bool = False
    ) -> Channel:
        """A thread under ``parent``: its own conversation, with the parent's permissions."""
        assert parent.guild is not None, "threads live in guild channels"
        assert not parent.is_thread, "threads cannot nest"
        channel = Channel(
            id=self.ids.next_id(),
            type=ChannelType.PRIVATE_THREAD if private else ChannelType.PUBLIC_THREAD,
            name=name,
            guild=parent.guild,
            parent=parent,
            nsfw=parent.nsfw,
            owner_id=(owner or self.bot).id,
        )
        return self._register(channel)

    def open_dm(self, user: User) -> Channel:
        """The DM channel between the bot and ``user`` (the same one every time)."""
        for channel in self.channels.values():
            if channel.type == ChannelType.DM and channel.recipient is user:
                return channel
        return self._register(Channel(id=self.ids.next_id(), type=ChannelType.DM, recipient=user))

    def create_webhook(self, channel: Channel, name: str, *, created_by: User) -> Webhook:
        """A webhook in ``channel`` with a fresh secret token."""
        webhook = Webhook(
            id=self.ids.next_id(),
            token=secrets.token_urlsafe(48),
            channel=channel,
            name=name,
            created_by=created_by,
            application_id=self.application.id if created_by is self.bot else None,
        )
        self.webhooks[webhook.id] = webhook
        return webhook

    def store_message(self, message: Message) -> Message:
        """Index ``message`` and append it to its channel."""
        self.messages[message.id] = message
        message.channel.messages.append(message)
        return message

    def _register(self, channel: Channel) -> Channel:
        self.channels[channel.id] = channel
        if channel.guild is not None:
            channel.guild.channels[channel.id] = channel
        return channel

    # -- lookups (raise UnknownEntity, which REST turns into Discord's 404s) -----------------

    def guild(self, guild_id: int) -> Guild:
        """The guild with ``guild_id``."""
        try:
            return self.guilds[guild_id]
        except KeyError:
            raise UnknownEntity("Guild", 10004, guild_id) from None

    def channel(self, channel_id: int) -> Channel:
        """The channel or thread with ``channel_id``."""
        try:
            return self.channels[channel_id]
        except KeyError:
            raise UnknownEntity("Channel", 10003, channel_id) from None

    def message(self, channel: Channel, message_id: int) -> Message:
        """The live message ``message_id`` in ``channel``."""
        message = self.messages.get(message_id)
        if message is None or message.deleted or message.channel is not channel:
            raise UnknownEntity("Message", 10008, message_id)
        return message

    def user(self, user_id: int) -> User:
        """The user with ``user_id``."""
        try:
            return self.users[user_id]
        except KeyError:
            raise UnknownEntity("User", 10013, user_id) from None

    def webhook(self, webhook_id: int, token: str | None = None) -> Webhook:
        """The webhook ``webhook_id``, checking ``token`` when given."""
        webhook = self.webhooks.get(webhook_id)
        if webhook is None or (
            token is not None and not secrets.compare_digest(token, webhook.token)
        ):
            raise UnknownEntity("Webhook", 10015, webhook_id)
        return webhook
