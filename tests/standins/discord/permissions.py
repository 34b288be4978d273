"""Discord permission bits and the channel-permission algorithm the stand-in enforces.

The algorithm is Discord's own (developer docs, "Permissions → Permission Hierarchy"): the guild
owner and administrators get everything; otherwise the @everyone role and the member's roles are
OR-ed, then the channel's overwrites are applied in the order @everyone, roles (deny then allow),
member. A member who cannot view a channel has no permission in it at all. Threads use their
parent channel's overwrites.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Permission(enum.IntFlag):
    """The permission bits the stand-in knows about (values are Discord's)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38


NO_PERMISSIONS = Permission(0)
"""The empty permission set."""

ALL_PERMISSIONS = Permission((1 << 51) - 1)
"""Every bit: what the owner and administrators get."""

DEFAULT_EVERYONE_PERMISSIONS = (
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.ADD_REACTIONS
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.USE_EXTERNAL_EMOJIS
    | Permission.USE_APPLICATION_COMMANDS
    | Permission.CREATE_PUBLIC_THREADS
    | Permission.SEND_MESSAGES_IN_THREADS
)
"""What a new guild's @everyone role allows (close to Discord's defaults)."""

DEFAULT_BOT_PERMISSIONS = (
    DEFAULT_EVERYONE_PERMISSIONS | Permission.MANAGE_WEBHOOKS | Permission.MANAGE_MESSAGES
)
"""What the bot's own managed role allows unless a test says otherwise."""


class OverwriteType(enum.IntEnum):
    """Whom a permission overwrite targets (Discord's ``type`` field)."""

    ROLE = 0
    MEMBER = 1


@dataclass
class Overwrite:
    """A channel permission overwrite for one role or one member."""

    id: int
    type: OverwriteType
    allow: Permission = NO_PERMISSIONS
    deny: Permission = NO_PERMISSIONS

    def to_payload(self) -> dict[str, object]:
        """Discord's JSON shape; permission sets travel as decimal strings."""
        return {
            "id": str(self.id),
            "type": int(self.type),
            "allow": str(int(self.allow)),
            "deny": str(int(self.deny)),
        }


def compute_permissions(
    *,
    guild_id: int,
    owner_id: int,
    member_id: int,
    everyone: Permission,
    role_ids: Iterable[int],
    role_permissions: dict[int, Permission],
    overwrites: Iterable[Overwrite],
) -> Permission:
    """Return a member's effective permissions in a channel with ``overwrites``.

    ``everyone`` is the @everyone role's permissions (the role whose id is the guild id);
    ``role_permissions`` maps each of the guild's role ids to its permissions.
    """
    if member_id == owner_id:
        return ALL_PERMISSIONS
    role_ids = set(role_ids)
    base = everyone
    for role_id in role_ids:
        base |= role_permissions.get(role_id, NO_PERMISSIONS)
    if base & Permission.ADMINISTRATOR:
        return ALL_PERMISSIONS

    by_target = {(o.type, o.id): o for o in overwrites}
    result = base
    everyone_overwrite = by_target.get((OverwriteType.ROLE, guild_id))
    if everyone_overwrite is not None:
        result = (result & ~everyone_overwrite.deny) | everyone_overwrite.allow
    role_allow, role_deny = NO_PERMISSIONS, NO_PERMISSIONS
    for role_id in role_ids:
        role_overwrite = by_target.get((OverwriteType.ROLE, role_id))
        if role_overwrite is not None:
            role_allow |= role_overwrite.allow
            role_deny |= role_overwrite.deny
    result = (result & ~role_deny) | role_allow
    member_overwrite = by_target.get((OverwriteType.MEMBER, member_id))
    if member_overwrite is not None:
        result = (result & ~member_overwrite.deny) | member_overwrite.allow

    # Without VIEW_CHANNEL a member has no permission in the channel at all.
    if not result & Permission.VIEW_CHANNEL:
        return NO_PERMISSIONS
    return result
