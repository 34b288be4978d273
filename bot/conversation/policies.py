"""Which rules a chat runs under: ``troupe.yaml``'s policy tree, then what admins set.

Admins' settings are stored per chat (trigger rules) and per server (moderation) through
:meth:`~bot.storage.Storage.set_settings`, and cached for a few seconds: other processes on
the same database may change them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bot.conversation.cache import TimedCache
from bot.conversation.incoming import ConversationKey
from bot.conversation.policy import ChatPolicy, PolicyTree, Scope
from bot.conversation.settings import (
    ChatStored,
    ServerSettings,
    chat_from_json,
    chat_to_json,
    server_from_json,
    server_to_json,
)
from bot.conversation.trigger import TriggerSettings
from bot.storage import Conversation, SettingsScope, Storage

__all__ = ["ChatPolicies"]

#: Finds (or starts) the conversation at a key.
ConversationLookup = Callable[[ConversationKey], Awaitable[Conversation]]

_Settings = TypeVar("_Settings", ChatStored, ServerSettings)


class ChatPolicies:
    """Resolves the policy of a chat and stores what its admins change."""

    def __init__(
        self,
        storage: Storage,
        tree: PolicyTree,
        *,
        conversation: ConversationLookup,
        cache_seconds: float,
    ) -> None:
        self._storage = storage
        self._tree = tree
        self._conversation = conversation
        # What admins stored with chat commands (None: nothing, the policy tree applies).
        self._chat_overrides: TimedCache[tuple[str, str], ChatStored | None] = TimedCache(
            cache_seconds
        )
        self._server_overrides: TimedCache[tuple[str, str], ServerSettings | None] = TimedCache(
            cache_seconds
        )

    async def resolve(
        self, conversation: Conversation, character_id: str | None = None
    ) -> ChatPolicy:
        """The policy a turn in ``conversation`` runs under (file, then admins' settings),
        for ``character_id`` if given, else for the conversation's main character."""
        scope = Scope(
            conversation.platform,
            conversation.server_id,
            conversation.chat_id,
            character_id or conversation.character_id,
        )
        policy = self._tree.resolve(scope)
        chat = await self._chat_override(conversation.platform, conversation.chat_id)
        if chat is not None and chat.trigger is not None:
            policy = dataclasses.replace(policy, trigger=chat.trigger)
        if chat is not None and chat.lorebooks:
            policy = dataclasses.replace(policy, lorebooks=chat.lorebooks)
        if conversation.server_id is not None:
            server = await self._server_override(conversation.platform, conversation.server_id)
            if server is not None:
                policy = dataclasses.replace(
                    policy,
                    moderation=server.moderation,
                    moderators_chat_id=server.moderators_chat_id or policy.moderators_chat_id,
                )
        return policy

    async def chat_settings(self, key: ConversationKey) -> TriggerSettings:
        """The chat's trigger rules: what its admins set, else ``troupe.yaml``'s."""
        return (await self.resolve(await self._conversation(key))).trigger

    async def set_chat_settings(self, key: ConversationKey, settings: TriggerSettings) -> None:
        """Store the chat's trigger rules (a thread or topic follows its chat)."""
        stored = await self._chat_override(key.platform, key.chat_id) or ChatStored()
        await self._store_chat(key, dataclasses.replace(stored, trigger=settings))

    async def chat_lorebooks(self, key: ConversationKey) -> tuple[str, ...]:
        """The world books the chat's admins attached to it (a thread follows its chat)."""
        stored = await self._chat_override(key.platform, key.chat_id)
        return stored.lorebooks if stored is not None else ()

    async def set_chat_lorebooks(self, key: ConversationKey, lorebooks: tuple[str, ...]) -> None:
        """Store the world books attached to the chat."""
        stored = await self._chat_override(key.platform, key.chat_id) or ChatStored()
        await self._store_chat(key, dataclasses.replace(stored, lorebooks=lorebooks))

    async def _store_chat(self, key: ConversationKey, stored: ChatStored) -> None:
        await self._storage.set_settings(key.platform, "chat", key.chat_id, chat_to_json(stored))
        self._chat_overrides.put((key.platform, key.chat_id), stored)

    async def server_settings(self, platform: str, server_id: str) -> ServerSettings:
        """The server's moderation settings: what its admins set, else ``troupe.yaml``'s."""
        stored = await self._server_override(platform, server_id)
        if stored is not None:
            return stored
        policy = self._tree.resolve(Scope(platform, server_id, chat_id="", character_id=""))
        return ServerSettings(policy.moderation, policy.moderators_chat_id)

    async def set_server_settings(
        self, platform: str, server_id: str, settings: ServerSettings
    ) -> None:
        """Store the server's moderation settings."""
        await self._storage.set_settings(platform, "server", server_id, server_to_json(settings))
        self._server_overrides.put((platform, server_id), settings)

    async def moderators_chats(self, platform: str) -> list[str]:
        """Every moderators' chat set on ``platform``, by admins or in ``troupe.yaml``."""
        chats: set[str] = set()
        for server_id in {sid for p, sid in self._tree.servers if p == platform}:
            chat = self._tree.resolve(Scope(platform, server_id, "", "")).moderators_chat_id
            if chat:
                chats.add(chat)
        for data in (await self._storage.all_settings(platform, "server")).values():
            chat = server_from_json(data).moderators_chat_id
            if chat:
                chats.add(chat)
        return sorted(chats)

    async def _chat_override(self, platform: str, chat_id: str) -> ChatStored | None:
        return await self._stored(self._chat_overrides, platform, "chat", chat_id, chat_from_json)

    async def _server_override(self, platform: str, server_id: str) -> ServerSettings | None:
        return await self._stored(
            self._server_overrides, platform, "server", server_id, server_from_json
        )

    async def _stored(
        self,
        cache: TimedCache[tuple[str, str], _Settings | None],
        platform: str,
        scope: SettingsScope,
        scope_id: str,
        parse: Callable[[dict[str, Any]], _Settings],
    ) -> _Settings | None:
        cached = cache.get((platform, scope_id))
        if cached is not None:
            return cached[0]
        data = await self._storage.get_settings(platform, scope, scope_id)
        return cache.put((platform, scope_id), parse(data) if data else None)
