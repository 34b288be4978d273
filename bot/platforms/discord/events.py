"""Discord messages in, engine turns out: MESSAGE_CREATE / UPDATE / DELETE.

Each message becomes a neutral :class:`~bot.conversation.incoming.Incoming`; the engine's
trigger policy decides whether a character answers. The adapter only supplies the facts
that need Discord: is it a DM, does it @mention the bot (or its role), does it reply to a
character, does it @mention someone else, is the author a bot or a webhook.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from typing import Any

import discord

from bot.conversation.incoming import ConversationKey, Incoming
from bot.conversation.keyed import KeyedLocks
from bot.conversation.manager import ConversationManager
from bot.conversation.turn import tell
from bot.platforms.discord.sink import DiscordReplies

log = logging.getLogger("bot.platforms.discord")

PLATFORM = "discord"
UNEXPECTED = "Something went wrong on our side; please try again."

#: Message types that carry something a person said.
_CHAT_TYPES = (discord.MessageType.default, discord.MessageType.reply)
_MENTION = re.compile(r"<@[!&]?(\d+)>")
_SPACES = re.compile(r"[ \t]{2,}")


def conversation_key(channel: object) -> ConversationKey:
    """The conversation of a channel: a thread is its own conversation within its parent."""
    if isinstance(channel, discord.Thread):
        return ConversationKey(PLATFORM, str(channel.parent_id), str(channel.id))
    return ConversationKey(PLATFORM, str(getattr(channel, "id", "")))


def interaction_key(interaction: discord.Interaction) -> ConversationKey:
    """The conversation a slash command or button was used in."""
    if interaction.channel is not None:
        return conversation_key(interaction.channel)
    return ConversationKey(PLATFORM, str(interaction.channel_id))


class MessageEvents:
    """Feeds one bot's messages to the engine; one task per message, drained on close."""

    def __init__(
        self, client: discord.Client, manager: ConversationManager, replies: DiscordReplies
    ) -> None:
        self._client = client
        self._manager = manager
        self._replies = replies
        self._tasks: set[asyncio.Task[None]] = set()
        #: Keeps one channel's events in the order Discord sent them.
        self._intake: KeyedLocks[int] = KeyedLocks()

    # -- gateway events -------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """A new message: hand it to the engine unless it is our own."""
        # Working out the facts may wait on Discord (is that webhook ours?); the channel's
        # messages still reach the engine, and its history, in the order they were sent.
        async with self._intake.hold(message.channel.id):
            if await self._is_ours(message) or message.type not in _CHAT_TYPES:
                return
            # A message that shows no text (an attachment alone, no message-content intent) is
            # no turn: the engine says so at once.
            incoming = await self.incoming(message)
            self._spawn(self._answer(incoming, message.channel))
            # Let the turn task take its place in the engine's queue before the next message.
            await asyncio.sleep(0)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """A user edited a message: the history the characters see follows, and the
        character's reply to it is written again if nothing came after that reply."""
        message = payload.message
        # In the channel's order: after the message itself has reached the engine.
        async with self._intake.hold(payload.channel_id):
            if "content" not in payload.data or await self._is_ours(message):
                return
            key = conversation_key(message.channel)
            sink = self._replies.sink(message.channel)
            await self._manager.edit_message(key, str(message.id), self._text(message), sink)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        """A message was deleted: it leaves the history."""
        await self._delete(payload.channel_id, [payload.message_id])

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        """Many messages were deleted at once."""
        await self._delete(payload.channel_id, sorted(payload.message_ids))

    async def drain(self, grace: float = 5.0) -> None:
        """Let turns in flight finish (up to ``grace`` seconds), then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- facts ----------------------------------------------------------------------------

    async def incoming(self, message: discord.Message) -> Incoming:
        """The neutral form of ``message`` with every fact the trigger policy needs."""
        me = self._me()
        key = conversation_key(message.channel)
        author = message.author
        replies_to_bot, reply_to = await self._replied(message.reference, key)
        return Incoming(
            key=key,
            author_id=str(author.id),
            author_name=author.display_name,
            text=self._text(message),
            is_direct=message.guild is None,
            mentions_bot=_mentions_bot(message, me),
            replies_to_bot=replies_to_bot,
            mentions_others=_mentions_others(message, me),
            author_is_bot=author.bot or message.webhook_id is not None,
            platform_message_id=str(message.id),
            reply_to_message_id=reply_to,
            server_id=str(message.guild.id) if message.guild is not None else None,
            channel_name=getattr(message.channel, "name", None),
        )

    def _text(self, message: discord.Message) -> str:
        """The content as people read it: the bot's own mention dropped, other mentions by
        name (the model should not see raw ``<@123>`` ids)."""
        me = self._me()
        names: dict[int, str] = {user.id: f"@{user.display_name}" for user in message.mentions}
        names.update({role.id: f"@{role.name}" for role in message.role_mentions})
        names[me.id] = ""
        for role in message.role_mentions:
            if _is_bot_role(role, me):
                names[role.id] = ""

        def name(match: re.Match[str]) -> str:
            return names.get(int(match.group(1)), match.group(0))

        return _SPACES.sub(" ", _MENTION.sub(name, message.content)).strip()

    async def _replied(
        self, reference: discord.MessageReference | None, key: ConversationKey
    ) -> tuple[bool, str | None]:
        """Whether the message replied to is ours, and the id the engine knows it by."""
        if reference is None or reference.message_id is None:
            return False, None
        replied_id = str(reference.message_id)
        resolved = reference.resolved
        if not isinstance(resolved, discord.Message):
            # Not included by Discord (too old, or deleted): our stored character messages.
            found = await self._manager.character_of_message(key, replied_id)
            return found is not None, replied_id
        # Every part of a long reply is stored with it, so any part finds its character.
        return await self._is_ours(resolved), replied_id

    async def _is_ours(self, message: discord.Message) -> bool:
        if message.author.id == self._me().id:
            return True
        if message.webhook_id is None:
            return False
        return await self._replies.webhooks.recognise(message.channel, message.webhook_id)

    # -- running turns --------------------------------------------------------------------

    async def _answer(self, incoming: Incoming, channel: discord.abc.Messageable) -> None:
        sink = self._replies.sink(channel)
        try:
            await self._manager.handle(incoming, sink)
        except Exception:
            # One bad event must never take the bot down or leave the channel silent.
            log.exception("could not handle message %s", incoming.platform_message_id)
            await tell(sink, UNEXPECTED)

    async def _delete(self, channel_id: int, message_ids: list[int]) -> None:
        channel = self._client.get_channel(channel_id)
        key = conversation_key(channel or discord.Object(channel_id))
        # The reply to a deleted last message is written again (where the channel is known).
        sink = self._replies.sink(channel) if isinstance(channel, discord.abc.Messageable) else None
        async with self._intake.hold(channel_id):
            for message_id in message_ids:
                await self._manager.delete_message(key, str(message_id), sink)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _me(self) -> discord.ClientUser:
        user = self._client.user
        assert user is not None, "events arrive only after login"
        return user


def _is_bot_role(role: discord.Role, me: discord.abc.Snowflake) -> bool:
    return role.tags is not None and role.tags.bot_id == me.id


def _mentions_bot(message: discord.Message, me: discord.ClientUser) -> bool:
    if any(user.id == me.id for user in message.mentions):
        return True
    return any(_is_bot_role(role, me) for role in message.role_mentions)


def _mentions_others(message: discord.Message, me: discord.ClientUser) -> bool:
    if message.mention_everyone:
        return True
    if any(user.id not in (me.id, message.author.id) for user in message.mentions):
        return True
    return any(not _is_bot_role(role, me) for role in message.role_mentions)
