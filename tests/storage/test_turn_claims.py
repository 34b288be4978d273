"""Turn claims: how processes sharing one database take turns in a conversation."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

import asyncpg  # type: ignore[import-untyped]

from bot.conversation.claims import TurnClaims
from bot.storage import Storage, open_storage
from tests.databases import Postgres, empty_postgres

LEASE = timedelta(seconds=30)


async def test_one_owner_at_a_time_and_answered_through_carries_over(storage: Storage) -> None:
    conversation = await storage.conversation("t", "c", default_character="aria")
    assert await storage.claim_turn(conversation.id, "a", LEASE) == 0
    assert await storage.claim_turn(conversation.id, "b", LEASE) is None
    assert await storage.claim_turn(conversation.id, "a", LEASE) == 0  # its own again

    await storage.release_turn(conversation.id, "a", answered_through=7)
    assert await storage.claim_turn(conversation.id, "b", LEASE) == 7
    await storage.release_turn(conversation.id, "b", answered_through=3)  # never goes back
    assert await storage.claim_turn(conversation.id, "a", LEASE) == 7


async def test_an_expired_claim_can_be_taken_and_the_old_owner_notices(storage: Storage) -> None:
    conversation = await storage.conversation("t", "c", default_character="aria")
    assert await storage.claim_turn(conversation.id, "dead", timedelta(seconds=-1)) == 0
    assert await storage.claim_turn(conversation.id, "alive", LEASE) == 0
    assert not await storage.renew_turn(conversation.id, "dead", LEASE)
    assert await storage.renew_turn(conversation.id, "alive", LEASE)
    # A release by the old owner changes nothing.
    await storage.release_turn(conversation.id, "dead", answered_through=99)
    assert await storage.claim_turn(conversation.id, "third", LEASE) is None


async def test_concurrent_claims_have_exactly_one_winner(storage: Storage) -> None:
    conversation = await storage.conversation("t", "c", default_character="aria")
    results = await asyncio.gather(
        *(storage.claim_turn(conversation.id, f"owner-{n}", LEASE) for n in range(20))
    )
    assert sum(result is not None for result in results) == 1


async def test_claims_of_different_conversations_are_independent(storage: Storage) -> None:
    first = await storage.conversation("t", "c1", default_character="aria")
    second = await storage.conversation("t", "c2", default_character="aria")
    assert await storage.claim_turn(first.id, "a", LEASE) == 0
    assert await storage.claim_turn(second.id, "b", LEASE) == 0


async def test_a_release_is_announced_to_every_process_on_postgresql(
    storage: Storage, database_url: str
) -> None:
    heard: list[int] = []
    arrived = asyncio.Event()

    def hear(conversation_id: int) -> None:
        heard.append(conversation_id)
        arrived.set()

    announced = await storage.on_turn_released(hear)
    if storage.backend == "sqlite":
        assert announced is False  # SQLite has no notifications: waiters poll
        return
    assert announced is True
    other = await open_storage(database_url)  # another process's storage
    try:
        conversation = await other.conversation("t", "c", default_character="aria")
        await other.claim_turn(conversation.id, "b", LEASE)
        await other.release_turn(conversation.id, "b", answered_through=1)
        await asyncio.wait_for(arrived.wait(), 5)
        assert heard == [conversation.id]
    finally:
        await other.close()


async def test_a_waiting_turn_starts_as_soon_as_another_process_releases(
    storage: Storage, database_url: str
) -> None:
    # On PostgreSQL the waiter polls only every 5 s: the release notification must wake it.
    poll = 5.0 if storage.backend == "postgresql" else 0.05
    waiter = TurnClaims(storage, first_poll=poll, max_poll=poll, max_poll_notified=poll)
    other = await open_storage(database_url)
    holder = TurnClaims(other)
    try:
        conversation = await storage.conversation("t", "c", default_character="aria")
        order: list[str] = []

        async def wait_for_turn() -> float:
            async with waiter.hold(conversation.id) as claim:
                order.append("waiter")
                assert claim.answered_through == 4
                return time.monotonic()

        async with holder.hold(conversation.id) as held:
            waiting = asyncio.create_task(wait_for_turn())
            await asyncio.sleep(0.3)
            assert not waiting.done()  # never two turns at once
            order.append("holder")
            held.answered_through = 4
        released = time.monotonic()
        started = await asyncio.wait_for(waiting, 10)
        assert order == ["holder", "waiter"]
        assert started - released < 1.5
    finally:
        await other.close()


async def test_notifications_resume_after_the_connection_is_lost(postgres: Postgres) -> None:
    dsn = postgres.require()
    await empty_postgres(dsn)
    database_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    storage = await open_storage(database_url)
    heard: asyncio.Queue[int] = asyncio.Queue()
    assert await storage.on_turn_released(heard.put_nowait)
    admin = await asyncpg.connect(dsn)
    other = await open_storage(database_url)
    try:
        # What a database restart does to the listening connection.
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
        assert killed == 1
        conversation = await other.conversation("t", "c", default_character="aria")
        async with asyncio.timeout(10):
            while True:  # releases sent before the listener is back are lost: keep sending
                await other.claim_turn(conversation.id, "b", LEASE)
                await other.release_turn(conversation.id, "b", answered_through=1)
                with contextlib.suppress(TimeoutError):
                    assert await asyncio.wait_for(heard.get(), 0.2) == conversation.id
                    break
    finally:
        await admin.close()
        await other.close()
        await storage.close()
