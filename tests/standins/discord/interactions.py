"""Interactions: slash commands, autocomplete and component clicks, and what the bot answered.

``build_command_data`` turns a test's ``"character set", {"name": "Alice"}`` into the nested
``data.options`` Discord sends, typed by the command definition the bot registered, so a command
the bot never synced cannot be invoked (just as in Discord). ``Interaction`` records every
callback, the original response and the follow-ups.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

from .model import JSON, Channel, Guild, Message, Role, User
from .permissions import Permission


class InteractionType(enum.IntEnum):
    """Interaction kinds (values are Discord's)."""

    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType(enum.IntEnum):
    """Interaction callback (response) kinds (values are Discord's)."""

    PONG = 1
    CHANNEL_MESSAGE_WITH_SOURCE = 4
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
    MODAL = 9


class OptionType(enum.IntEnum):
    """Application command option types (values are Discord's)."""

    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10


# Which callbacks each interaction kind may answer with.
ALLOWED_CALLBACKS: dict[InteractionType, frozenset[CallbackType]] = {
    InteractionType.APPLICATION_COMMAND: frozenset(
        {
            CallbackType.CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.MODAL,
        }
    ),
    InteractionType.MESSAGE_COMPONENT: frozenset(
        {
            CallbackType.CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.DEFERRED_UPDATE_MESSAGE,
            CallbackType.UPDATE_MESSAGE,
            CallbackType.MODAL,
        }
    ),
    InteractionType.AUTOCOMPLETE: frozenset({CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT}),
    InteractionType.MODAL_SUBMIT: frozenset(
        {
            CallbackType.CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.DEFERRED_UPDATE_MESSAGE,
            CallbackType.UPDATE_MESSAGE,
        }
    ),
}


class CommandNotAvailable(LookupError):
    """The command does not exist for this guild, or Discord would not let this member use it."""


@dataclass(eq=False)
class Interaction:
    """One interaction the stand-in sent, and everything the bot did with it."""

    id: int
    token: str
    type: InteractionType
    channel: Channel
    user: User
    data: JSON
    message: Message | None = None
    created_at: float = field(default_factory=time.monotonic)
    callbacks: list[JSON] = field(default_factory=list)
    original: Message | None = None
    followups: list[Message] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        """Whether the bot answered the interaction (any callback)."""
        return bool(self.callbacks)

    @property
    def callback_type(self) -> CallbackType | None:
        """The type of the bot's callback, ``None`` while unanswered."""
        return CallbackType(self.callbacks[0]["type"]) if self.callbacks else None

    @property
    def choices(self) -> list[JSON]:
        """The autocomplete choices the bot returned (empty while unanswered)."""
        if self.callback_type is not CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT:
            return []
        return list(self.callbacks[0].get("data", {}).get("choices", []))

    @property
    def modal(self) -> JSON | None:
        """The modal the bot opened, if it answered with one."""
        if self.callback_type is not CallbackType.MODAL:
            return None
        return dict(self.callbacks[0].get("data", {}))

    @property
    def replies(self) -> list[Message]:
        """The original response (if any) followed by the follow-ups."""
        return ([self.original] if self.original is not None else []) + self.followups

    def to_payload(self, application_id: int, bot: User) -> JSON:
        """The INTERACTION_CREATE payload, with the member's and the bot's channel permissions."""
        channel, guild = self.channel, self.channel.guild
        payload: JSON = {
            "id": str(self.id),
            "application_id": str(application_id),
            "type": int(self.type),
            "data": self.data,
            "channel_id": str(channel.id),
            "channel": channel.to_payload(),
            "token": self.token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if self.message is not None:
            payload["message"] = self.message.to_payload()
        if guild is None:
            payload.update(
                user=self.user.to_payload(),
                context=1,
                app_permissions="0",
                authorizing_integration_owners={"1": str(self.user.id)},
            )
            return payload
        member = guild.member(self.user).to_payload()
        member["permissions"] = str(int(guild.permissions_for(self.user, channel)))
        payload.update(
            guild_id=str(guild.id),
            guild_locale="en-US",
            member=member,
            context=0,
            app_permissions=str(int(guild.permissions_for(bot, channel))),
            authorizing_integration_owners={"0": str(guild.id)},
        )
        return payload


def check_command_gates(command: JSON, channel: Channel, user: User) -> None:
    """Raise ``CommandNotAvailable`` where Discord would not offer ``command`` to ``user``:
    outside DMs when it is guild-only, without its ``default_member_permissions``, or when it
    is age-restricted and the channel is not."""
    guild = channel.guild
    if guild is None:
        contexts = command.get("contexts")
        if command.get("dm_permission") is False or (contexts is not None and 1 not in contexts):
            raise CommandNotAvailable(f"/{command['name']} is not available in DMs")
        return
    required = command.get("default_member_permissions")
    if required is not None:
        have = guild.permissions_for(user)
        if int(required) == 0 or (
            int(required) & ~int(have) and not have & Permission.ADMINISTRATOR
        ):
            raise CommandNotAvailable(f"{user.username} may not use /{command['name']}")
    if command.get("nsfw") and not channel.nsfw:
        raise CommandNotAvailable(f"/{command['name']} is age-restricted")


def find_command(commands: list[JSON], name: str, command_type: int = 1) -> JSON:
    """The registered command called ``name`` among ``commands``."""
    for command in commands:
        if command["name"] == name and int(command.get("type", 1)) == command_type:
            return command
    raise CommandNotAvailable(f"no registered command named {name!r}")


def build_command_data(
    command: JSON,
    path: list[str],
    values: dict[str, Any],
    *,
    guild: Guild | None = None,
    focused: str | None = None,
) -> JSON:
    """Discord's ``data`` for invoking ``command`` along ``path`` (subcommands) with ``values``.

    Users, channels and roles given as option values travel as ids, with the entities under
    ``data.resolved`` (members too, in a guild). ``focused`` marks the option being typed
    (autocomplete).
    """
    resolved: JSON = {}
    options = _typed_options(
        _walk(list(command.get("options", [])), path), values, resolved, focused
    )
    # Discord nests at most two levels: a group holding subcommands, or a bare subcommand.
    kinds = [OptionType.SUB_COMMAND_GROUP, OptionType.SUB_COMMAND][-len(path) :] if path else []
    for name, kind in reversed(list(zip(path, kinds, strict=True))):
        options = [{"name": name, "type": int(kind), "options": options}]
    if guild is not None:
        for user_id in resolved.get("users", {}):
            if int(user_id) in guild.members:
                member = guild.members[int(user_id)].to_payload(with_user=False)
                resolved.setdefault("members", {})[user_id] = member
    data: JSON = {
        "id": str(command["id"]),
        "name": command["name"],
        "type": int(command.get("type", 1)),
        "options": options,
    }
    if command.get("guild_id"):
        data["guild_id"] = str(command["guild_id"])
    if resolved:
        data["resolved"] = resolved
    return data


def _walk(definitions: list[JSON], path: list[str]) -> list[JSON]:
    for name in path:
        match = [o for o in definitions if o["name"] == name]
        if not match or int(match[0]["type"]) not in (
            OptionType.SUB_COMMAND,
            OptionType.SUB_COMMAND_GROUP,
        ):
            raise CommandNotAvailable(f"the command has no subcommand {name!r}")
        definitions = list(match[0].get("options", []))
    return definitions


def _typed_options(
    definitions: list[JSON], values: dict[str, Any], resolved: JSON, focused: str | None
) -> list[JSON]:
    by_name = {o["name"]: o for o in definitions}
    options: list[JSON] = []
    for name, value in values.items():
        if name not in by_name:
            raise CommandNotAvailable(f"the command has no option {name!r}")
        kind = OptionType(int(by_name[name]["type"]))
        option: JSON = {"name": name, "type": int(kind), "value": _wire_value(value, resolved)}
        if name == focused:
            option["focused"] = True
        options.append(option)
    return options


def _wire_value(value: Any, resolved: JSON) -> Any:
    # Entity options travel as ids, with the entity itself under ``resolved``.
    if isinstance(value, User):
        resolved.setdefault("users", {})[str(value.id)] = value.to_payload()
        return str(value.id)
    if isinstance(value, Channel):
        payload = value.to_payload()
        payload["permissions"] = "0"
        resolved.setdefault("channels", {})[str(value.id)] = payload
        return str(value.id)
    if isinstance(value, Role):
        resolved.setdefault("roles", {})[str(value.id)] = value.to_payload()
        return str(value.id)
    return value
