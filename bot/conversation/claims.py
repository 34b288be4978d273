"""Taking turns with other processes that share the database (PostgreSQL deployments).

Inside one process a lock per conversation is enough; across processes each turn holds a
leased claim in the database, renewed while the turn runs. A process that dies mid-turn
loses its claim when the lease runs out, and the next turn answers what it left.

A turn waiting for a claim is woken the moment another process releases it (PostgreSQL's
``NOTIFY``); it also tries again now and then, which is all it does where the database has no
notifications, and covers a notification lost with its connection.

A release that fails (the database went away mid-turn) is tried again in the background until
the database is back, so the conversation's next turn waits for the database, not the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.conversation.keyed import InUse
from bot.storage import Storage, StorageError

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
        max_poll_notified: float = 1.0,
        release_wait: float = 1.0,
        on_late_release: Callable[[], None] = lambda: None,
    ) -> None:
        self._storage = storage
        self._lease = lease
        #: How long a turn waits for its claim's release before leaving it to the background.
        self._release_wait = release_wait
        #: Called when a release went through only after failing (the database is back).
        self._on_late_release = on_late_release
        self._releasing: set[asyncio.Task[None]] = set()
        self._first_poll = first_poll
        #: The longest pause between two tries: short without notifications, long with them.
        self._max_poll = max_poll
        self._max_poll_notified = max_poll_notified
        #: Per conversation waited for: an event set when its claim is released.
        self._releases: InUse[int, asyncio.Event] = InUse(asyncio.Event)
        #: Whether releases are announced to this process (``None``: not asked yet).
        self._notified: bool | None = None
        self._listen_lock = asyncio.Lock()
        #: Seconds spent waiting for claims, in total (for metrics).
        self.waited = 0.0

    @property
    def lease(self) -> timedelta:
        """How long a claim lasts unless renewed; a dead process's claim expires after it."""
        return self._lease

    @contextlib.asynccontextmanager
    async def hold(self, conversation_id: int) -> AsyncIterator[Claim]:
        """Wait for and hold the claim on ``conversation_id``'s turn."""
        owner = uuid.uuid4().hex
        delay = self._first_poll
        loop = asyncio.get_running_loop()
        started = loop.time()
        answered = await self._storage.claim_turn(conversation_id, owner, self._lease)
        while answered is None:
            notified = await self._listen()
            with self._releases.using(conversation_id) as released:
                # Tried again once watching, so that a release just now is not missed.
                answered = await self._storage.claim_turn(conversation_id, owner, self._lease)
                if answered is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(released.wait(), delay)
            delay = min(delay * 2, self._max_poll_notified if notified else self._max_poll)
        self.waited += loop.time() - started
        claim = Claim(answered)
        renewal = asyncio.create_task(self._keep_renewed(conversation_id, owner))
        try:
            yield claim
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            await self._release(conversation_id, owner, claim.answered_through)

    async def close(self) -> None:
        """Stop retrying releases (shutdown): their claims expire with their lease."""
        for task in list(self._releasing):
            task.cancel()
        await asyncio.gather(*self._releasing, return_exceptions=True)

    async def _release(self, conversation_id: int, owner: str, answered_through: int) -> None:
        # A task of its own: even a cancelled turn must hand the conversation back, and a
        # turn does not hang on a database that is gone.
        release = asyncio.create_task(
            self._release_until_done(conversation_id, owner, answered_through)
        )
        self._releasing.add(release)
        release.add_done_callback(self._releasing.discard)
        await asyncio.wait({release}, timeout=self._release_wait)

    async def _release_until_done(
        self, conversation_id: int, owner: str, answered_through: int
    ) -> None:
        delay = self._first_poll
        failed = False
        while True:
            try:
                await self._storage.release_turn(conversation_id, owner, answered_through)
            except StorageError as error:
                if not failed:
                    log.warning(
                        "could not release the turn claim on conversation %s, retrying: %s",
                        conversation_id,
                        error,
                    )
                failed = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_poll_notified)
                continue
            break
        if failed:
            self._on_late_release()

    async def _listen(self) -> bool:
        """Start hearing releases (once); whether the database announces them."""
        async with self._listen_lock:
            if self._notified is None:
                try:
                    self._notified = await self._storage.on_turn_released(self._heard)
                except StorageError as error:
                    log.warning("turn releases cannot be heard, polling instead: %s", error)
                    self._notified = False
            return self._notified

    def _heard(self, conversation_id: int) -> None:
        # Retired, so that turns that wait again from now on wait for the next release.
        released = self._releases.retire(conversation_id)
        if released is not None:
            released.set()

    async def _keep_renewed(self, conversation_id: int, owner: str) -> None:
        interval = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                renewed = await self._storage.renew_turn(conversation_id, owner, self._lease)
            except StorageError as error:
                log.warning("could not renew the turn claim on %s: %s", conversation_id, error)
                continue  # the lease outlasts a short outage
            if not renewed:
                log.warning("the turn claim on conversation %s expired mid-turn", conversation_id)
                return
