"""The rules a chat runs under, resolved through the hierarchy global → platform → server →
chat (channel) → character.

Each layer of a :class:`PolicyTree` overrides some fields of some sections; whatever a layer
leaves out comes from the layer above. ``troupe.yaml`` builds the tree
(:mod:`bot.configfile`); settings an admin changes with a chat command are stored in the
database and win over the file for that chat or server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.conversation.moderation import ModerationPolicy
from bot.conversation.trigger import TriggerSettings

#: Section name → field name → value, as one layer overrides them.
Overrides = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Limits:
    """What protects the owner's wallet and the community. 0 turns a limit off."""

    #: Messages a user may send the characters per minute (per process).
    user_messages_per_minute: int = 0
    #: Tokens a user, a chat and a server may use per UTC day.
    user_daily_tokens: int = 0
    chat_daily_tokens: int = 0
    server_daily_tokens: int = 0
    #: Say the limit notice in character (the character's ``limit_reply``) instead of plainly.
    in_character_notice: bool = False


@dataclass(frozen=True, slots=True)
class MemoryPolicy:
    """What the characters remember beyond the window (``docs/design.md``, "Memory")."""

    #: Summarise what falls out of the window, and keep facts users state about themselves.
    enabled: bool = True
    #: Facts learned here reach the user's other conversations with the character that share
    #: too, and theirs reach this one. Off: a chat's memory stays in that chat.
    shared: bool = False


@dataclass(frozen=True, slots=True)
class ChatPolicy:
    """Everything that governs one chat with one character."""

    trigger: TriggerSettings = field(default_factory=TriggerSettings)
    moderation: ModerationPolicy = field(default_factory=ModerationPolicy)
    limits: Limits = field(default_factory=Limits)
    memory: MemoryPolicy = field(default_factory=MemoryPolicy)
    #: Where moderation events are reported, if the owner set it in the file.
    moderators_chat_id: str | None = None
    #: World books attached to the chat (by its admins), scanned after the character's own.
    lorebooks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a chat sits in the hierarchy."""

    platform: str
    server_id: str | None
    chat_id: str
    character_id: str


@dataclass(frozen=True)
class PolicyTree:
    """The global policy and every layer of overrides below it."""

    base: ChatPolicy = field(default_factory=ChatPolicy)
    platforms: Mapping[str, Overrides] = field(default_factory=dict)
    servers: Mapping[tuple[str, str], Overrides] = field(default_factory=dict)
    chats: Mapping[tuple[str, str], Overrides] = field(default_factory=dict)
    characters: Mapping[str, Overrides] = field(default_factory=dict)
    #: The characters a chat starts with (main first), by ``(platform, chat_id)``.
    chat_characters: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def resolve(self, scope: Scope) -> ChatPolicy:
        """The policy of ``scope``: each layer applied over the one above."""
        layers = [
            self.platforms.get(scope.platform),
            self.servers.get((scope.platform, scope.server_id)) if scope.server_id else None,
            self.chats.get((scope.platform, scope.chat_id)),
            self.characters.get(scope.character_id),
        ]
        policy = self.base
        for layer in layers:
            if layer:
                policy = apply_overrides(policy, layer)
        return policy


def apply_overrides(policy: ChatPolicy, overrides: Overrides) -> ChatPolicy:
    """``policy`` with the fields in ``overrides`` replaced."""
    changes: dict[str, Any] = {}
    for section, values in overrides.items():
        fields = dict(values)
        if section == "moderation":
            # File spellings: minutes instead of a timedelta; the moderators' chat lives here.
            if "cooldown_minutes" in fields:
                fields["cooldown_window"] = timedelta(minutes=fields.pop("cooldown_minutes"))
            if "moderators_chat" in fields:
                changes["moderators_chat_id"] = fields.pop("moderators_chat")
        changes[section] = dataclasses.replace(getattr(policy, section), **fields)
    return dataclasses.replace(policy, **changes)
