"""What is kept about the people who talk to the characters: personas, usage, moderation
events, and erasing all of it on request."""

from __future__ import annotations

from dataclasses import dataclass

from bot.observability.cost import Prices
from bot.storage import CallKind, ForgetReport, ModerationEvent, Storage

__all__ = ["UsageReport", "UserData"]


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Tokens used and what they cost."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float


class UserData:
    """Users' personas, their usage and its cost, the moderation log, and forgetting a user."""

    def __init__(self, storage: Storage, prices: Prices) -> None:
        self._storage = storage
        self._prices = prices

    async def set_persona(self, platform: str, user_id: str, persona: str | None) -> None:
        """Set (or with ``None`` clear) who the user is in the story (sent as ``user_system``)."""
        await self._storage.set_persona(platform, user_id, persona)

    async def persona(self, platform: str, user_id: str) -> str | None:
        """The user's own persona, if set."""
        return await self._storage.get_persona(platform, user_id)

    async def forget(self, platform: str, user_id: str) -> ForgetReport:
        """Erase everything stored about the user on that platform."""
        return await self._storage.forget_user(platform, user_id)

    async def usage(
        self,
        platform: str,
        *,
        author_id: str | None = None,
        chat_id: str | None = None,
        server_id: str | None = None,
        kind: CallKind | None = None,
    ) -> UsageReport:
        """Tokens and estimated cost for a user, a chat and/or a server; of one ``kind`` of
        model call (replies, nudges, memory updates) if given, else of all."""
        totals = await self._storage.usage_totals(
            platform=platform, author_id=author_id, chat_id=chat_id, server_id=server_id, kind=kind
        )
        return UsageReport(
            totals.calls,
            totals.prompt_tokens,
            totals.completion_tokens,
            totals.total_tokens,
            self._prices.cost_usd(
                totals.prompt_tokens, totals.completion_tokens, totals.total_tokens
            ),
        )

    async def moderation_log(
        self, platform: str, *, chat_id: str | None = None, limit: int = 20
    ) -> list[ModerationEvent]:
        """The newest moderation events on a platform, or in one chat."""
        return await self._storage.moderation_events(
            platform=platform, chat_id=chat_id, limit=limit
        )
