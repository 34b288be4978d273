"""A server's moderation policy from chat commands: change it, say it, list recent events.

Discord sets it from slash options, Telegram from words (``/moderation output silent``);
both read and store it here, for the server's admins, and say it in the same words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Protocol

from bot.conversation.commands.caller import Caller
from bot.conversation.manager import ConversationManager
from bot.conversation.moderation import ModerationAction
from bot.conversation.settings import ServerSettings
from bot.errors import BadCommandWords

#: How many flags within the window put a user on cool-down (0: never), on every platform.
COOLDOWN_AFTER = (0, 100)
#: The text form's usage, said when its words are wrong.
MODERATION_USAGE = (
    f"Usage: /moderation input|output {'|'.join(action.value for action in ModerationAction)}, "
    f"/moderation cooldown FLAGS ({COOLDOWN_AFTER[0]}-{COOLDOWN_AFTER[1]}, 0: never), "
    "or /moderation report here|off|CHAT_ID"
)
#: How far back a log filtered by chat looks across the platform.
LOG_SCAN = 500

#: A change to a server's settings.
SettingsChange = Callable[[ServerSettings], ServerSettings]


class Mentions(Protocol):
    """How a platform names chats, users and moments in a text."""

    def chat(self, chat_id: str) -> str | None:
        """The chat, or ``None`` where it goes without saying (a log of one chat)."""

    def user(self, user_id: str) -> str:
        """The user, without notifying them."""

    def time(self, when: datetime) -> str:
        """A moment."""


def change_policy(
    settings: ServerSettings,
    *,
    on_blocked_input: ModerationAction | None = None,
    on_blocked_output: ModerationAction | None = None,
    cooldown_after: int | None = None,
) -> ServerSettings:
    """``settings`` with the rules given changed (``None``: unchanged)."""
    policy = settings.moderation
    policy = dataclasses.replace(
        policy,
        on_blocked_input=on_blocked_input or policy.on_blocked_input,
        on_blocked_output=on_blocked_output or policy.on_blocked_output,
        cooldown_after=policy.cooldown_after if cooldown_after is None else cooldown_after,
    )
    return dataclasses.replace(settings, moderation=policy)


def report_to(settings: ServerSettings, chat_id: str | None) -> ServerSettings:
    """``settings`` with moderation events reported in ``chat_id`` (``None``: nowhere)."""
    return dataclasses.replace(settings, moderators_chat_id=chat_id)


def change_from_words(
    settings: ServerSettings, words: Sequence[str], *, here: str
) -> ServerSettings:
    """``settings`` with ``input|output ACTION``, ``cooldown FLAGS`` or
    ``report here|off|CHAT_ID`` applied
    (``here``: this chat's id); :class:`~bot.errors.BadCommandWords` with the usage if the
    words say neither."""
    lowered = [word.lower() for word in words]
    if len(lowered) == 2:
        what, value = lowered
        if what == "report" and value in ("here", "off"):
            return report_to(settings, here if value == "here" else None)
        if what == "report" and value.lstrip("-").isdigit():
            return report_to(settings, value)
        if what == "cooldown" and value.isdigit():
            flags = int(value)
            if COOLDOWN_AFTER[0] <= flags <= COOLDOWN_AFTER[1]:
                return change_policy(settings, cooldown_after=flags)
        if what in ("input", "output") and value in set(ModerationAction):
            action = ModerationAction(value)
            if what == "input":
                return change_policy(settings, on_blocked_input=action)
            return change_policy(settings, on_blocked_output=action)
    raise BadCommandWords(MODERATION_USAGE)


async def moderation_settings(
    manager: ConversationManager,
    caller: Caller,
    server_id: str,
    change: SettingsChange | None = None,
) -> ServerSettings:
    """The server's settings, after ``change`` if given (stored); for its admins."""
    await caller.require_admin()
    settings = await manager.policies.server_settings(caller.platform, server_id)
    if change is not None:
        settings = change(settings)
        await manager.policies.set_server_settings(caller.platform, server_id, settings)
    return settings


def describe_report_chat(settings: ServerSettings, mentions: Mentions) -> str:
    """Where moderation events are reported."""
    chat = settings.moderators_chat_id
    if not chat:
        return "Moderation events are not reported."
    return f"Moderation events go to {mentions.chat(chat) or 'this chat'}."


def describe_policy(settings: ServerSettings, mentions: Mentions) -> str:
    """The moderation rules and where events go, one per line."""
    policy = settings.moderation
    minutes = round(policy.cooldown_window.total_seconds() / 60)
    return "\n".join(
        [
            f"Blocked messages: {policy.on_blocked_input.value}. "
            f"Blocked replies: {policy.on_blocked_output.value}.",
            f"Cool-down: after {policy.cooldown_after} flags within {minutes} minutes."
            if policy.cooldown_after
            else "Cool-down: off.",
            describe_report_chat(settings, mentions),
        ]
    )


async def describe_events(
    manager: ConversationManager,
    caller: Caller,
    mentions: Mentions,
    *,
    limit: int,
    chat_id: str | None = None,
    among: Collection[str] | None = None,
) -> str:
    """The newest ``limit`` moderation events on the caller's platform, in ``chat_id`` or
    among the chats ``among``, without the content that was blocked; for admins."""
    await caller.require_admin()
    scan = limit if among is None else LOG_SCAN
    events = await manager.users.moderation_log(caller.platform, chat_id=chat_id, limit=scan)
    if among is not None:
        events = [event for event in events if event.chat_id in among]
    if not events:
        return "No moderation events here."
    lines = ["Recent events:"]
    for event in events[:limit]:
        what = "message" if event.direction == "input" else "reply"
        chat = mentions.chat(event.chat_id)
        where = f" in {chat}" if chat else ""
        lines.append(
            f"{mentions.time(event.created_at)}{where}: a {what} by "
            f"{mentions.user(event.author_id)} was flagged as {event.type_name}."
        )
    return "\n".join(lines)
