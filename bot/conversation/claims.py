"""Taking turns with other processes that share the database (PostgreSQL deployments).

Inside one process a lock per conversation is enough; across processes each turn holds a
leased claim in the database, renewed while the turn runs. A process that dies mid-turn
loses its claim when the lease runs out, and the next turn answers what it left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from bot.storage import Storage

log = logging.getLogger("bot.conversation")


@dataclass(slots=True)
class Claim:
    """A held claim; set ``answered_through`` before it is released."""

    #: The newest message id answered by any process's finished turn.
    answered_through: int


class TurnClaims:
    """Hands out claims on conversations' turns, waiting while another process holds one."""

    def __init__(
        self,
        storage: Storage,
        *,
        lease: timedelta = timedelta(seconds=30),
        first_poll: float = 0.01,
        max_poll: float = 0.1,
    ) -> None:
        self._storage = storage
        self._lease = lease
        self._first_poll = first_poll
        self._max_poll = max_poll
        #: Seconds spent waiting for claims, in total (for metrics).
        self.waited = 0.0

    @contextlib.asynccontextmanager
    async def hold(self, conversation_id: int) -> AsyncIterator[Claim]:
        """Wait for and hold the claim on ``conversation_id``'s turn."""
        owner = uuid.uuid4().hex
        delay = self._first_poll
        loop = asyncio.get_running_loop()
        started = loop.time()
        while (
            answered := await self._storage.claim_turn(conversation_id, owner, self._lease)
        ) is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_poll)
        self.waited += loop.time() - started
        claim = Claim(answered)
        renewal = asyncio.create_task(self._keep_renewed(conversation_id, owner))
        try:
            yield claim
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            # Shielded: even a cancelled turn must hand the conversation back.
            await asyncio.shield(
                self._storage.release_turn(conversation_id, owner, claim.answered_through)
            )

    async def _keep_renewed(self, conversation_id: int, owner: str) -> None:
        interval = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            if not await self._storage.renew_turn(conversation_id, owner, self._lease):
                log.warning("the turn claim on conversation %s expired mid-turn", conversation_id)
                return
