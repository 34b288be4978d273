"""A Discord gateway + REST stand-in on 127.0.0.1 for running discord.py unmodified in tests.

Start with ``DiscordStandIn`` (server.py); the guide is ``docs/standins.md``.
"""

from .gateway import CloseCode, GatewaySession, Intent
from .interactions import CallbackType, CommandNotAvailable, Interaction, InteractionType
from .model import (
    Channel,
    ChannelType,
    Edit,
    Guild,
    Member,
    Message,
    MessageFlag,
    Pings,
    Role,
    User,
    Webhook,
)
from .permissions import (
    ALL_PERMISSIONS,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    Overwrite,
    Permission,
)
from .pointing import LeftLoopback, loopback_only_trace, point_discord_py_at
from .rest import Call
from .server import DiscordStandIn
from .snowflake import shard_for

__all__ = [
    "ALL_PERMISSIONS",
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "Call",
    "CallbackType",
    "Channel",
    "ChannelType",
    "CloseCode",
    "CommandNotAvailable",
    "DiscordStandIn",
    "Edit",
    "GatewaySession",
    "Guild",
    "Intent",
    "Interaction",
    "InteractionType",
    "LeftLoopback",
    "Member",
    "Message",
    "MessageFlag",
    "Overwrite",
    "Permission",
    "Pings",
    "Role",
    "User",
    "Webhook",
    "loopback_only_trace",
    "point_discord_py_at",
    "shard_for",
]
