"""Long-term memory end to end: the engine, the fake M2-her's summariser, a real database."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.characters.prompt import MEMORY_NAME
from bot.conversation import commands
from bot.conversation.commands import Caller
from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ManagerSettings
from bot.conversation.policy import ChatPolicy, Limits, MemoryPolicy, PolicyTree
from bot.conversation.turn import TurnStatus
from bot.llm.fake import Error, Reply
from bot.llm.fake.limiter import RateLimiter
from bot.storage import NewMessage
from tests.conversation.conftest import KEY, Engine, EngineFactory, RecordingSink, said

FIRST = "Evening! I'm a nurse at the county hospital, call me Sam."
FACTS = ["is a nurse at the county hospital", "wants to be called Sam"]


def small_window(limit: int, *, cache_seconds: float = 5.0, **policy: Any) -> ManagerSettings:
    """An engine whose turns load only ``limit`` messages, so history falls out quickly."""
    return ManagerSettings(
        default_character="aria",
        history_limit=limit,
        policy=PolicyTree(base=ChatPolicy(**policy)),
        cache_seconds=cache_seconds,
    )


def memory_message(body: dict[str, Any]) -> dict[str, Any] | None:
    return next((m for m in body["messages"] if m.get("name") == MEMORY_NAME), None)


async def chat(engine: Engine, *texts: str, author: str = "sam") -> None:
    for text in texts:
        outcome = await engine.manager.handle(said(text, author=author), RecordingSink())
        assert outcome.status is TurnStatus.ANSWERED


async def test_facts_of_the_first_turns_still_reach_the_model_at_turn_500(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(small_window(20))
    engine.fake.limiter = RateLimiter(rpm=10_000, tpm=100_000_000)  # 500 turns in seconds
    await chat(engine, FIRST, "The ward was busy today.")
    await chat(engine, *(f"Small talk, line {n}." for n in range(3, 500)))
    await engine.manager.recall.settled()
    await chat(engine, "Do you still know who I am?")

    body = engine.fake.requests[-1].body
    assert len(engine.fake.requests) == 500
    memory = memory_message(body)
    assert memory is not None
    assert memory["role"] == "group"
    text = memory["content"]
    # The fake's summary counts the lines it folded in and carries what Sam said of herself.
    count = int(text.split("\n", 1)[0].removeprefix("Lines remembered: "))
    assert 950 <= count < 1000  # every message but the newest that still fit the window
    assert f"Sam said: {FIRST}" in text
    assert "- Sam: is a nurse at the county hospital; wants to be called Sam" in text
    # Where it goes: after the character's part, before the history that is still whole.
    roles = [m["role"] for m in body["messages"]]
    at = body["messages"].index(memory)
    assert set(roles[:at]) <= {"system", "user_system", "group"}
    assert set(roles[at + 1 :]) <= {"user", "assistant", "sample_message_user", "sample_message_ai"}
    assert body["messages"][-1]["content"] == "Do you still know who I am?"
    # One update every few turns, not one per turn.
    assert len(engine.fake.memory_requests) < 500 / 3


async def test_a_slow_memory_update_never_delays_a_reply(make_engine: EngineFactory) -> None:
    engine = await make_engine(small_window(4))
    engine.fake.enqueue_memory(Reply(delay=3.0))
    await chat(engine, FIRST, "two", "three")
    assert engine.manager.recall.updating  # started by the third turn, still waiting
    started = time.monotonic()
    await chat(engine, "four", "five")
    took = time.monotonic() - started
    assert took < 1.5, f"two replies took {took:.2f} s behind a 3 s memory update"
    # Still running, and no second update for the conversation beside it.
    assert engine.manager.recall.updating
    assert len(engine.fake.memory_requests) == 1
    await engine.manager.recall.settled()
    items = await engine.manager.memory(KEY, "sam")
    assert items.summary is not None
    assert FIRST in items.summary


async def test_a_failed_or_unreadable_update_leaves_the_plain_window(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(small_window(4))
    engine.fake.enqueue_memory(Error(1008), Reply(text="I'd rather not summarise today."))
    await chat(engine, FIRST, "two", "three")
    await engine.manager.recall.settled()
    await chat(engine, "four")
    await engine.manager.recall.settled()
    assert len(engine.fake.memory_requests) == 2
    items = await engine.manager.memory(KEY, "sam")
    assert items.summary is None
    assert items.facts == []
    # The conversation carries on with its window alone.
    await chat(engine, "five")
    body = engine.fake.requests[-1].body
    assert memory_message(body) is None
    assert [m["content"] for m in body["messages"] if m["role"] == "user"][-2:] == ["four", "five"]
    metrics = engine.manager.metrics.render().decode()
    assert 'troupe_memory_updates_total{outcome="failed",platform="test"} 1.0' in metrics
    assert 'troupe_memory_updates_total{outcome="unreadable",platform="test"} 1.0' in metrics
    # The next update that works catches up from the start.
    await engine.manager.recall.settled()
    items = await engine.manager.memory(KEY, "sam")
    assert items.summary is not None
    assert FIRST in items.summary


async def test_reset_and_forget_erase_the_memory(make_engine: EngineFactory) -> None:
    engine = await make_engine(small_window(4))
    await chat(engine, FIRST, "two", "three", "four")
    await engine.manager.recall.settled()
    items = await engine.manager.memory(KEY, "sam")
    assert items.summary is not None
    assert [f.text for f in items.facts] == FACTS

    await engine.manager.reset(KEY)
    items = await engine.manager.memory(KEY, "sam")
    assert items.summary is None
    assert items.facts == []

    await chat(engine, FIRST, "two", "three", "four")
    await engine.manager.recall.settled()
    report = await engine.manager.users.forget("test", "sam")
    assert report.memories == 3  # two facts and the summary of the chat Sam spoke in
    items = await engine.manager.memory(KEY, "sam")
    assert items.summary is None
    assert items.facts == []


async def test_memory_costs_show_in_usage_and_the_metrics(make_engine: EngineFactory) -> None:
    engine = await make_engine(small_window(4))
    await chat(engine, FIRST, "two", "three")
    await engine.manager.recall.settled()
    usage = await commands.describe_usage(
        engine.manager, Caller(KEY, "sam"), chat_noun="conversation"
    )
    lines = usage.splitlines()
    assert lines[0].startswith("You: ")
    assert "in 4 replies" in lines[0]
    assert lines[-1].startswith("Keeping this conversation's memory: ")
    assert "in 1 memory update (≈ $" in lines[-1]
    memory_tokens = int(lines[-1].split(": ", 1)[1].split(" ")[0].replace(",", ""))
    assert memory_tokens > 0
    metrics = engine.manager.metrics.render().decode()
    assert 'troupe_memory_updates_total{outcome="updated",platform="test"} 1.0' in metrics
    assert 'troupe_memory_tokens_total{direction="in",platform="test"}' in metrics
    assert 'troupe_memory_cost_usd_total{platform="test"}' in metrics


async def test_no_update_once_the_daily_budget_is_spent(make_engine: EngineFactory) -> None:
    engine = await make_engine(small_window(2, limits=Limits(user_daily_tokens=1), cache_seconds=0))
    conversation = await engine.storage.conversation("test", KEY.chat_id, default_character="aria")
    for text in (FIRST, "two", "three"):
        await engine.storage.add_message(NewMessage(conversation.id, "user", "sam", "Sam", text))
    # Within the budget when it starts (nothing spent yet); the reply spends it.
    await chat(engine, "four")
    await engine.manager.recall.settled()
    assert engine.fake.memory_requests == []
    metrics = engine.manager.metrics.render().decode()
    assert 'troupe_memory_updates_total{outcome="over_budget",platform="test"} 1.0' in metrics


async def test_memory_can_be_turned_off(make_engine: EngineFactory) -> None:
    engine = await make_engine(small_window(4, memory=MemoryPolicy(enabled=False)))
    await chat(engine, FIRST, "two", "three", "four", "five")
    await engine.manager.recall.settled()
    assert engine.fake.memory_requests == []


async def test_facts_are_shared_across_chats_only_where_the_owner_allows(
    make_engine: EngineFactory,
) -> None:
    other = ConversationKey("test", "room-2")
    engine = await make_engine(small_window(4))
    await chat(engine, FIRST, "two", "three", "four")
    await engine.manager.recall.settled()
    assert (await engine.manager.memory(other, "sam")).facts == []

    shared = await make_engine(small_window(4, memory=MemoryPolicy(shared=True)))
    third = ConversationKey("test", "room-3")
    for key in (third, other):
        for text in ("Hi! My name is Samantha.", "two", "three", "four"):
            await shared.manager.handle(said(text, key=key), RecordingSink())
        await shared.manager.recall.settled()
    # Learned in room-3 and room-2, where sharing is on: both rooms know both... once each.
    facts = [f.text for f in (await shared.manager.memory(other, "sam")).facts]
    assert facts == ["is named Samantha"]
    # What room-1 learned while it did not share stays in room-1.
    assert FACTS[0] not in facts


async def test_two_updates_at_once_store_one(make_engine: EngineFactory) -> None:
    """Two processes on one database see the same fallen messages and update at once: the
    update stored is the one that still found the summary it started from."""
    off = MemoryPolicy(enabled=False)  # the turns start none: the test starts both
    first = await make_engine(small_window(4, memory=off))
    second = await make_engine(small_window(4, memory=off))
    await chat(first, FIRST, "two", "three")
    conversation = await first.storage.conversation("test", KEY.chat_id, default_character="aria")
    character = first.characters.get("aria")
    context = await first.storage.turn_context(
        conversation.id,
        limit=4,
        platform="test",
        author_id="sam",
        flags_since=conversation.created_at,
    )
    window, on = context.history, ChatPolicy()
    recall = first.manager.recall
    recalled = recall.recalled(await recall.fetch(conversation, character, on), character, window)
    first.fake.enqueue_memory(Reply(delay=0.3), Reply(delay=0.3))
    updates = [
        engine.manager.recall.after_turn(conversation, character, "sam", window, 2, recalled, on)
        for engine in (first, second)
    ]
    assert None not in updates
    await asyncio.gather(first.manager.recall.settled(), second.manager.recall.settled())
    assert len(first.fake.memory_requests) == 2
    outcomes = first.manager.metrics.render().decode() + second.manager.metrics.render().decode()
    assert 'troupe_memory_updates_total{outcome="lost",platform="test"} 1.0' in outcomes
    assert 'troupe_memory_updates_total{outcome="updated",platform="test"} 1.0' in outcomes
    items = await first.manager.memory(KEY, "sam")
    assert items.summary is not None
    assert items.summary.count(f"Sam said: {FIRST}") == 1
    assert [f.text for f in items.facts] == FACTS
