"""The ``nudges`` table: settings, the state the schedule comes from, and the compare-and-set
that lets one process send each nudge (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.storage import ModelCall, NewMessage, NudgeSettings, Storage, open_storage

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


async def test_settings_are_stored_and_turning_on_starts_the_count(storage: Storage) -> None:
    conversation = await storage.conversation("t", "room", default_character="aria")
    assert await storage.nudges.plan(conversation.id) is None
    on = NudgeSettings(enabled=True, quiet_minutes=45, quiet_hours="", timezone="Asia/Tokyo")
    await storage.nudges.save(conversation.id, on, now=T0)
    plan = await storage.nudges.plan(conversation.id)
    assert plan is not None
    assert plan.settings == on
    assert plan.state.enabled_at == T0
    assert plan.last_activity is None
    assert not plan.owed
    # Changing a setting while on keeps when it was turned on.
    await storage.nudges.save(conversation.id, NudgeSettings(enabled=True), now=T0 + timedelta(1))
    plan = await storage.nudges.plan(conversation.id)
    assert plan is not None
    assert plan.state.enabled_at == T0
    assert [p.conversation.id for p in await storage.nudges.plans()] == [conversation.id]
    await storage.nudges.save(conversation.id, NudgeSettings(enabled=False), now=T0)
    assert await storage.nudges.plans() == []


async def test_a_plan_knows_the_newest_delivered_message_and_an_owed_turn(
    storage: Storage,
) -> None:
    conversation = await storage.conversation("t", "room", default_character="aria")
    await storage.nudges.save(conversation.id, NudgeSettings(enabled=True), now=T0)
    said = await storage.add_message(
        NewMessage(conversation.id, "user", "u1", "Alice", "hello"), owed=True
    )
    pending = await storage.add_reply(
        NewMessage(
            conversation.id, "assistant", "character:aria", "Aria", "hi", delivery="pending"
        ),
        ModelCall(conversation.id, "u1", "aria", "M2-her", 1, 1, 2, True, kind="nudge"),
    )
    [plan] = await storage.nudges.plans()
    assert plan.last_activity == said.created_at  # a pending reply was not said yet
    assert plan.owed
    await storage.mark_answered(conversation.id, said.id)
    await storage.set_delivered(pending, ["p1"])
    [plan] = await storage.nudges.plans()
    assert plan.last_activity == pending.created_at
    assert not plan.owed
    # The call's kind is kept for /usage.
    nudges = await storage.usage_totals(platform="t", kind="nudge")
    replies = await storage.usage_totals(platform="t", kind="reply")
    assert (nudges.calls, replies.calls) == (1, 0)


async def test_one_claim_wins_and_a_blocked_chat_is_left_alone(database_url: str) -> None:
    stores = [await open_storage(database_url) for _ in range(4)]
    try:
        conversation = await stores[0].conversation("t", "room", default_character="aria")
        await stores[0].nudges.save(conversation.id, NudgeSettings(enabled=True), now=T0)
        [seen] = await stores[0].nudges.plans()
        won = await asyncio.gather(
            *(
                store.nudges.claim(
                    conversation.id, seen.state, sent_at=T0, day="2030-05-01", sent_today=1
                )
                for store in stores
            )
        )
        assert sorted(won) == [False, False, False, True]
        [after] = await stores[0].nudges.plans()
        assert (after.state.last_nudge_at, after.state.day, after.state.sent_today) == (
            T0,
            "2030-05-01",
            1,
        )
        # A greeting skipped: handled, nothing sent.
        greeting = T0 + timedelta(hours=1)
        assert await stores[1].nudges.claim(
            conversation.id,
            after.state,
            sent_at=None,
            day="2030-05-01",
            sent_today=1,
            greeting_at=greeting,
        )
        [after] = await stores[0].nudges.plans()
        assert (after.state.last_nudge_at, after.state.last_greeting_at) == (T0, greeting)

        await stores[2].nudges.block(conversation.id, at=T0)
        assert await stores[0].nudges.plans() == []
        assert not await stores[3].nudges.claim(
            conversation.id, after.state, sent_at=T0, day="2030-05-01", sent_today=2
        )
        blocked = await stores[0].nudges.plan(conversation.id)
        assert blocked is not None
        assert blocked.state.blocked_at == T0
        assert not blocked.settings.enabled
        # Turning them on again forgets the refusal.
        await stores[0].nudges.save(conversation.id, NudgeSettings(enabled=True), now=T0)
        assert [p.state.blocked_at for p in await stores[0].nudges.plans()] == [None]
    finally:
        for store in stores:
            await store.close()


async def test_forgetting_a_user_erases_their_private_chats_opt_in(storage: Storage) -> None:
    theirs = await storage.conversation("t", "dm-u1", default_character="aria")
    room = await storage.conversation("t", "room", default_character="aria")
    other = await storage.conversation("u", "dm-u1", default_character="aria")
    for conversation, user in ((theirs, "u1"), (room, None), (other, "u1")):
        settings = NudgeSettings(enabled=True, user_id=user)
        await storage.nudges.save(conversation.id, settings, now=T0)
    report = await storage.forget_user("t", "u1")
    assert report.nudges == 1
    assert await storage.nudges.plan(theirs.id) is None
    left = sorted(p.conversation.id for p in await storage.nudges.plans())
    assert left == sorted([room.id, other.id])  # a channel's, and another platform's u1
