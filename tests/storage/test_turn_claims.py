"""Turn claims: how processes sharing one database take turns in a conversation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.storage import Storage

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
