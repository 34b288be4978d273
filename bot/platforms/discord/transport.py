"""How one reply's messages reach a Discord channel: through our webhook (as the character,
with its name and avatar) or as the bot itself.

Both are :class:`~bot.platforms.streaming.MessageTransport`\\s; model output never pings
anyone (allowed mentions are off on every send and edit).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import discord
from discord.utils import MISSING

from bot.platforms.streaming import WriteRateLimited

log = logging.getLogger("bot.platforms.discord")

#: Discord's message length limit, in characters.
MESSAGE_LIMIT = 2000
#: Model output never notifies anyone: no @everyone, @here, roles or users.
NO_PINGS = discord.AllowedMentions.none()

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _rate_limited(
    call: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Turn discord.py's "slow down" into :class:`~bot.platforms.streaming.WriteRateLimited`.

    discord.py waits out ordinary 429s itself; it raises only when the wait would exceed
    ``max_ratelimit_timeout`` or after repeated 429s.
    """

    @functools.wraps(call)
    async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await call(*args, **kwargs)
        except discord.RateLimited as error:
            raise WriteRateLimited(error.retry_after) from error
        except discord.HTTPException as error:
            if error.status == 429:
                raise WriteRateLimited(_retry_after(error)) from error
            raise

    return guarded


def _retry_after(error: discord.HTTPException) -> float:
    try:
        return float(error.response.headers.get("Retry-After", 1.0))
    except (AttributeError, ValueError):
        return 1.0


class BotTransport:
    """Messages posted by the bot user in ``channel`` (a text channel, thread or DM)."""

    limit = MESSAGE_LIMIT

    def __init__(self, channel: discord.abc.Messageable) -> None:
        self._channel = channel

    def measure(self, text: str) -> int:
        """Discord counts characters (code points)."""
        return len(text)

    async def send(self, text: str) -> str:
        """Post ``text``; return the message id."""
        return await self.send_with(text, MISSING)

    @_rate_limited
    async def send_with(self, text: str, markup: discord.ui.View) -> str:
        """Post ``text`` with ``markup``'s buttons under it (``MISSING``: none); return the
        message id."""
        message = await self._channel.send(text, view=markup, allowed_mentions=NO_PINGS)
        return str(message.id)

    async def edit(self, message_id: str, text: str) -> None:
        """Replace a message's text (its buttons stay)."""
        await self.edit_with(message_id, text, MISSING)

    @_rate_limited
    async def edit_with(self, message_id: str, text: str, markup: discord.ui.View) -> None:
        """Replace a message's text and put ``markup``'s buttons under it (``MISSING``:
        leave its buttons as they are)."""
        await self._partial(message_id).edit(content=text, view=markup, allowed_mentions=NO_PINGS)

    @_rate_limited
    async def delete(self, message_id: str) -> None:
        """Delete a message (already gone counts as done)."""
        with contextlib.suppress(discord.NotFound):
            await self._partial(message_id).delete()

    @_rate_limited
    async def set_markup(self, message_id: str, markup: discord.ui.View | None) -> None:
        """Put ``markup``'s buttons under a message (``None`` takes them away)."""
        await self._partial(message_id).edit(view=markup)

    @_rate_limited
    async def typing(self) -> None:
        """Show "… is typing" for a few seconds (a refusal is not worth failing a reply)."""
        try:
            await self._channel.typing()
        except discord.HTTPException as error:
            if error.status == 429:
                raise
            log.debug("typing refused in %s: %s", getattr(self._channel, "id", "?"), error)

    def _partial(self, message_id: str) -> discord.PartialMessage:
        channel: Any = self._channel
        partial: discord.PartialMessage = channel.get_partial_message(int(message_id))
        return partial


class WebhookTransport(BotTransport):
    """Messages posted through our channel webhook, as ``username`` with ``avatar_url``.

    ``thread`` is set when the conversation is a thread of the webhook's channel. Typing
    still shows as the bot: webhooks cannot type.
    """

    def __init__(
        self,
        channel: discord.abc.Messageable,
        webhook: discord.Webhook,
        *,
        username: str,
        avatar_url: str | None,
        thread: discord.abc.Snowflake | None,
    ) -> None:
        super().__init__(channel)
        self._webhook = webhook
        self._username = username
        self._avatar_url = avatar_url or MISSING
        self._thread = thread or MISSING

    @property
    def webhook_id(self) -> int:
        """The webhook's id (its writes share one rate-limit bucket)."""
        return self._webhook.id

    @_rate_limited
    async def send_with(self, text: str, markup: discord.ui.View) -> str:
        """Post ``text`` as the character, with ``markup``'s buttons (our webhook belongs to
        the application, so its messages may carry buttons); return the message id."""
        message = await self._webhook.send(
            text,
            username=self._username,
            avatar_url=self._avatar_url,
            thread=self._thread,
            view=markup,
            allowed_mentions=NO_PINGS,
            wait=True,
        )
        return str(message.id)

    @_rate_limited
    async def edit_with(self, message_id: str, text: str, markup: discord.ui.View | None) -> None:
        """Replace a character message's text and put ``markup``'s buttons under it."""
        await self._webhook.edit_message(
            int(message_id),
            content=text,
            view=markup,
            thread=self._thread,
            allowed_mentions=NO_PINGS,
        )

    @_rate_limited
    async def set_markup(self, message_id: str, markup: discord.ui.View | None) -> None:
        """Put ``markup``'s buttons under a character message (``None`` takes them away)."""
        await self._webhook.edit_message(int(message_id), view=markup, thread=self._thread)

    @_rate_limited
    async def delete(self, message_id: str) -> None:
        """Delete a character message (already gone counts as done)."""
        with contextlib.suppress(discord.NotFound):
            await self._webhook.delete_message(int(message_id), thread=self._thread)
