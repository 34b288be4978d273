"""Admin-chosen settings per chat (trigger rules) and per server (moderation), as JSON.

Stored through :meth:`~bot.storage.Storage.set_settings`; read back leniently: an unknown
or mistyped key (say, from an older version) falls back to its default instead of failing
the chat.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from bot.conversation.moderation import ModerationAction, ModerationPolicy
from bot.conversation.trigger import TriggerSettings

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Settings of one Discord server or Telegram group."""

    moderation: ModerationPolicy = field(default_factory=ModerationPolicy)
    #: Where moderation events are reported (a channel or chat id), if anywhere.
    moderators_chat_id: str | None = None
    #: A role that may use admin commands besides those with Manage Server.
    admin_role_id: str | None = None


def trigger_to_json(settings: TriggerSettings) -> dict[str, Any]:
    """Chat trigger settings as a JSON object."""
    return dataclasses.asdict(settings)


def trigger_from_json(data: dict[str, Any]) -> TriggerSettings:
    """Chat trigger settings from JSON; bad or unknown keys fall back to defaults."""
    return _lenient(TriggerSettings, data)


@dataclass(frozen=True, slots=True)
class ChatStored:
    """What a chat's admins stored: trigger rules (``None``: never set) and world books."""

    trigger: TriggerSettings | None = None
    lorebooks: tuple[str, ...] = ()


def chat_to_json(stored: ChatStored) -> dict[str, Any]:
    """A chat's stored settings as one JSON object (the trigger rules' keys, ``lorebooks``)."""
    data = trigger_to_json(stored.trigger) if stored.trigger is not None else {}
    if stored.lorebooks:
        data["lorebooks"] = list(stored.lorebooks)
    return data


def chat_from_json(data: dict[str, Any]) -> ChatStored:
    """A chat's stored settings; trigger rules count as set when any of their keys is."""
    names = {item.name for item in dataclasses.fields(TriggerSettings)}
    trigger = trigger_from_json(data) if names & data.keys() else None
    books = data.get("lorebooks")
    lorebooks = tuple(b for b in books if isinstance(b, str)) if isinstance(books, list) else ()
    return ChatStored(trigger, lorebooks)


def server_to_json(settings: ServerSettings) -> dict[str, Any]:
    """Server settings as a JSON object."""
    policy = settings.moderation
    return {
        "moderation": {
            "on_blocked_input": str(policy.on_blocked_input),
            "on_blocked_output": str(policy.on_blocked_output),
            "cooldown_after": policy.cooldown_after,
            "cooldown_window_s": policy.cooldown_window.total_seconds(),
        },
        "moderators_chat_id": settings.moderators_chat_id,
        "admin_role_id": settings.admin_role_id,
    }


def server_from_json(data: dict[str, Any]) -> ServerSettings:
    """Server settings from JSON; bad or unknown keys fall back to defaults."""
    raw = data.get("moderation")
    raw = raw if isinstance(raw, dict) else {}
    values: dict[str, Any] = {}
    for key in ("on_blocked_input", "on_blocked_output"):
        with contextlib.suppress(KeyError, ValueError):
            values[key] = ModerationAction(raw[key])
    if isinstance(raw.get("cooldown_window_s"), int | float):
        values["cooldown_window"] = timedelta(seconds=raw["cooldown_window_s"])
    if isinstance(raw.get("cooldown_after"), int):
        values["cooldown_after"] = raw["cooldown_after"]
    return ServerSettings(
        moderation=ModerationPolicy(**values),
        moderators_chat_id=_text_or_none(data.get("moderators_chat_id")),
        admin_role_id=_text_or_none(data.get("admin_role_id")),
    )


def _lenient(kind: type[_T], data: dict[str, Any]) -> _T:
    defaults = kind()
    values = {}
    for item in dataclasses.fields(kind):  # type: ignore[arg-type]
        value = data.get(item.name)
        default = getattr(defaults, item.name)
        # bool is an int; keep each value to its default's exact type (ints may widen).
        if type(value) is type(default) or (isinstance(default, float) and type(value) is int):
            values[item.name] = value
    return kind(**values)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
