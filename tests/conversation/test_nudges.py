"""Characters that speak first, on the engine: every rule on an injected clock, the real
scheduler loop, the fake M2-her on loopback and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.conversation import commands
from bot.conversation.commands import Caller
from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.conversation.nudges import NudgeDefaults
from bot.conversation.policy import ChatPolicy, Limits, PolicyTree
from bot.conversation.sink import DeliveryFailed, ReplySink
from bot.errors import BadCommandWords, NotAllowed
from bot.llm.fake import Error
from tests.conversation.conftest import KEY, Engine, EngineFactory, RecordingSink, said
from tests.conversation.nudging import Clock, ahead, settle, until

DM = ConversationKey("test", "dm-sam")
OTHER_ROOM = ConversationKey("test", "room-2")
DEFAULTS = NudgeDefaults(quiet_minutes=60, quiet_hours="off", timezone="UTC", max_per_day=3)


def settings(defaults: NudgeDefaults = DEFAULTS, **kwargs: Any) -> ManagerSettings:
    return ManagerSettings(default_character="aria", nudges=defaults, **kwargs)


@pytest.fixture
async def make(make_engine: EngineFactory) -> AsyncIterator[EngineFactory]:
    """Engines whose background work stops before their database closes."""
    made: list[Engine] = []

    async def engine(*args: Any, **kwargs: Any) -> Engine:
        made.append(await make_engine(*args, **kwargs))
        return made[-1]

    yield engine
    for each in made:
        await each.manager.aclose()


class Sinks:
    """The sinks a platform hands out, one per conversation, kept for the test to read."""

    def __init__(self, make: type[RecordingSink] = RecordingSink) -> None:
        self._make = make
        self.by_key: dict[ConversationKey, RecordingSink] = {}

    async def __call__(self, key: ConversationKey) -> ReplySink:
        return self.by_key.setdefault(key, self._make())

    def finished(self, key: ConversationKey = KEY) -> list[str]:
        sink = self.by_key.get(key)
        return sink.of("finish") if sink else []


async def started(make: EngineFactory) -> tuple[Clock, Engine, Sinks]:
    """An engine at noon (UTC), its platform connected."""
    clock = ahead(12)
    engine = await make(settings(), now=clock)
    sinks = Sinks()
    await connected(engine, sinks)
    return clock, engine, sinks


async def connected(engine: Engine, sinks: Sinks) -> None:
    engine.manager.resume_with("test", sinks)
    await settle(engine.manager)


async def nudges(manager: ConversationManager, *words: str, key: ConversationKey = KEY) -> str:
    """``/nudges WORDS`` by the chat's admin (a private chat's user for ``DM``)."""
    caller = Caller(key, "sam")
    changes = [[w for w in change.split()] for change in words]
    return await commands.nudges_command(manager, caller, *changes, private=key == DM)


async def test_a_character_opens_a_topic_after_the_quiet_period(
    make: EngineFactory,
) -> None:
    clock = ahead(12)
    engine = await make(settings(), now=clock)
    manager = engine.manager
    await manager.handle(said("Tell me about the lighthouse."), RecordingSink())
    sinks = Sinks()
    await connected(engine, sinks)
    answer = await nudges(manager, "on")
    assert "Characters may speak first here." in answer
    assert "After 60 minutes without a message, a character opens a topic." in answer

    clock.advance(minutes=59)
    await settle(manager)
    assert sinks.finished() == []

    requests = len(engine.fake.requests)
    clock.advance(minutes=1)
    await settle(manager)
    [topic] = sinks.finished()
    assert topic.startswith("Aria heard Sam")  # the fake answers the newest human line

    # In character, from the history, told what to do at the end of its `system` message:
    # nobody in the chat seems to have said it.
    body = engine.fake.requests[requests].body
    system, *rest = body["messages"]
    assert system["role"] == "system"
    assert system["name"] == "Aria"
    assert "\n\n[Now]\n" in system["content"]
    assert "Start a conversation now, in character" in system["content"]
    assert rest[-1]["role"] == "assistant"  # the history ends as it was: Aria's reply
    assert [m["content"] for m in rest if m["role"] == "user"] == ["Tell me about the lighthouse."]

    history = await engine.storage.history_window(
        (await manager.nudge_plan(KEY)).conversation.id, 5
    )
    assert [(m.role, m.character_id, m.delivery) for m in history][-1] == (
        "assistant",
        "aria",
        "delivered",
    )
    usage = await commands.describe_usage(manager, Caller(KEY, "sam"), chat_noun="chat")
    assert "This chat: " in usage
    assert "of which characters speaking first: " in usage
    assert " in 1 nudge (≈ $" in usage
    # Once spoken, the next topic waits for another quiet period.
    clock.advance(minutes=59)
    await settle(manager)
    assert len(sinks.finished()) == 1


async def test_nobody_asked_means_no_nudge(make: EngineFactory) -> None:
    clock = ahead(12)
    engine = await make(settings(), now=clock)
    await engine.manager.handle(said("Hello"), RecordingSink())
    sinks = Sinks()
    await connected(engine, sinks)
    clock.advance(days=3)
    await settle(engine.manager)
    assert sinks.by_key == {}
    assert "Characters do not speak first here (off)." in await nudges(engine.manager)


async def test_at_most_the_maximum_a_day_and_a_new_local_day_starts_again(
    make: EngineFactory,
) -> None:
    # 13:00 UTC is 22:00 in Tokyo: the local day ends at 15:00 UTC.
    clock = ahead(13)
    engine = await make(settings(), now=clock)
    manager = engine.manager
    sinks = Sinks()
    await connected(engine, sinks)
    await nudges(manager, "on", "quiet 10", "max 2", "timezone Asia/Tokyo")
    for _ in range(2):
        clock.advance(minutes=10)
        await settle(manager)
    assert len(sinks.finished()) == 2
    assert "At most 2 a day; 2 so far today." in await nudges(manager)

    clock.advance(minutes=90)  # 14:50 UTC, 23:50 in Tokyo: the day had enough
    await settle(manager)
    assert len(sinks.finished()) == 2
    clock.advance(minutes=10)  # midnight in Tokyo
    await settle(manager)
    assert len(sinks.finished()) == 3
    assert "At most 2 a day; 1 so far today." in await nudges(manager)


async def test_quiet_hours_across_midnight_in_the_chats_time_zone(
    make: EngineFactory,
) -> None:
    # 02:00 UTC in January is 21:00 in New York; quiet from 22:00 to 07:00 there (03:00 to
    # 12:00 UTC).
    clock = ahead(2, month_day=(1, 14))
    engine = await make(settings(), now=clock)
    manager = engine.manager
    sinks = Sinks()
    await connected(engine, sinks)
    await nudges(manager, "on", "quiet 90", "hours 22:00-07:00", "timezone America/New_York")
    assert "Quiet hours: 22:00-07:00 (America/New_York)." in await nudges(manager)

    clock.advance(minutes=90)  # 22:30 in New York
    await settle(manager)
    assert sinks.finished() == []
    clock.advance(hours=8, minutes=29)  # 06:59 the next morning
    await settle(manager)
    assert sinks.finished() == []
    clock.advance(minutes=1)  # 07:00
    await settle(manager)
    assert len(sinks.finished()) == 1


async def test_scheduled_greetings_in_the_chats_time_zone(make: EngineFactory) -> None:
    # 07:59 UTC in February is 08:59 in Berlin.
    clock = ahead(7, 59, month_day=(2, 10))
    engine = await make(settings(), now=clock)
    manager = engine.manager
    sinks = Sinks()
    await connected(engine, sinks)
    answer = await nudges(
        manager, "on", "quiet 0", "timezone Europe/Berlin", "schedule 0 9,21 * * *"
    )
    assert "Characters open no topics (greetings only)." in answer
    assert "Scheduled greetings: 0 9,21 * * *." in answer
    assert "Next: a greeting, " in answer
    assert " 09:00 (Europe/Berlin)." in answer

    requests = len(engine.fake.requests)
    clock.advance(minutes=1)
    await settle(manager)
    assert len(sinks.finished()) == 1
    system = engine.fake.requests[requests].body["messages"][0]["content"]
    assert "It is " in system
    assert ", 09:00 where this chat is. Greet the chat now" in system

    # 21:00 is inside the default quiet hours of a chat that sets them: skipped, not delayed.
    await nudges(manager, "hours 20:00-08:00")
    clock.advance(hours=12)
    await settle(manager)
    clock.advance(hours=2)
    await settle(manager)
    assert len(sinks.finished()) == 1
    clock.advance(hours=10)  # 09:00 the next day
    await settle(manager)
    assert len(sinks.finished()) == 2


async def test_a_private_chat_only_after_its_user_opted_in(make: EngineFactory) -> None:
    clock = ahead(12)
    engine = await make(settings(), now=clock)
    manager = engine.manager
    await manager.handle(said("Hi Aria", key=DM), RecordingSink())
    sinks = Sinks()
    await connected(engine, sinks)
    clock.advance(hours=5)
    await settle(manager)
    assert sinks.finished(DM) == []

    # The user, no admin, turns them on for their own chat; never more than the owner allows.
    with pytest.raises(BadCommandWords, match="'5' is not a whole number from 1 to 3"):
        await nudges(manager, "on", "max 5", key=DM)
    assert "Characters may speak first here." in await nudges(manager, "on", key=DM)
    clock.advance(minutes=60)
    await settle(manager)
    assert len(sinks.finished(DM)) == 1
    # Their nudges are theirs in /usage.
    usage = await manager.users.usage("test", author_id="sam", kind="nudge")
    assert usage.calls == 1

    await nudges(manager, "off", key=DM)
    clock.advance(days=1)
    await settle(manager)
    assert len(sinks.finished(DM)) == 1


async def test_in_a_channel_only_admins_change_nudges(make: EngineFactory) -> None:
    engine = await make(settings(), now=ahead(12))

    async def no() -> bool:
        return False

    member = Caller(KEY, "eve", no, "Admins only.")
    assert "(off)" in await commands.nudges_command(engine.manager, member, private=False)
    with pytest.raises(NotAllowed, match=r"Admins only\."):
        await commands.nudges_command(engine.manager, member, ["on"], private=False)
    with pytest.raises(BadCommandWords, match="schedule: minute: 99 is not between 0 and 59"):
        await nudges(engine.manager, "schedule 99 9 * * *")
    with pytest.raises(BadCommandWords, match="timezone: 'Mars/Olympus' is not a time zone"):
        await nudges(engine.manager, "timezone Mars/Olympus")
    # Nothing of a refused change was stored.
    assert (await engine.manager.nudge_plan(KEY)).settings.timezone is None


class RefusingSink(RecordingSink):
    """A chat whose user blocked the bot: the platform refuses every message for good."""

    async def finish(self, text: str) -> Sequence[str]:
        self.events.append(("finish", text))
        raise DeliveryFailed("the user blocked the bot", permanent=True)


async def test_a_chat_that_refuses_the_bot_gets_no_more_nudges(make: EngineFactory) -> None:
    clock = ahead(12)
    engine = await make(settings(), now=clock)
    manager = engine.manager
    sinks = Sinks(RefusingSink)
    await connected(engine, sinks)
    await nudges(manager, "on", key=DM)
    clock.advance(minutes=60)
    await settle(manager)
    assert len(sinks.finished(DM)) == 1
    assert sinks.by_key[DM].of("notice") == []  # nobody asked: no notice either

    plan = await manager.nudge_plan(DM)
    assert not plan.settings.enabled
    assert plan.state.blocked_at == clock.at
    assert "the chat refused the bot on" in await nudges(manager, key=DM)
    clock.advance(days=2)
    await settle(manager)
    assert len(sinks.finished(DM)) == 1

    # The user unblocked and asked again: nudges come back.
    await nudges(manager, "on", key=DM)
    assert (await manager.nudge_plan(DM)).state.blocked_at is None


async def test_a_restart_keeps_the_schedule(make: EngineFactory) -> None:
    clock = ahead(12)
    first = await make(settings(), now=clock)
    sinks = Sinks()
    await connected(first, sinks)
    await nudges(first.manager, "on", "max 2")
    clock.advance(minutes=60)
    await settle(first.manager)
    assert len(sinks.finished()) == 1
    await first.manager.aclose()

    # The next process computes the same schedule from the stored state.
    clock.advance(minutes=30)
    second = await make(settings(), now=clock)
    await connected(second, sinks)
    assert len(sinks.finished()) == 1
    clock.advance(minutes=30)
    await settle(second.manager)
    assert len(sinks.finished()) == 2
    clock.advance(hours=5)  # the day had its two
    await settle(second.manager)
    assert len(sinks.finished()) == 2
    await second.manager.aclose()


async def test_one_process_sends_each_nudge(make: EngineFactory) -> None:
    clock = ahead(12)
    engines = [await make(settings(shared_database=True), now=clock) for _ in range(3)]
    sinks = [Sinks() for _ in engines]
    for engine, sink in zip(engines, sinks, strict=True):
        await connected(engine, sink)
    await nudges(engines[0].manager, "on", "quiet 5", "max 10")
    for round_ in range(1, 4):
        clock.advance(minutes=5)
        await asyncio.gather(*(settle(engine.manager) for engine in engines))
        assert sum(len(s.finished()) for s in sinks) == round_
    for engine in engines:
        await engine.manager.aclose()


async def test_a_failing_nudge_does_not_stop_the_scheduler(make: EngineFactory) -> None:
    clock, engine, sinks = await started(make)
    manager = engine.manager
    await nudges(manager, "on")
    clock.advance(minutes=30)
    await nudges(manager, "on", key=OTHER_ROOM)
    engine.fake.enqueue(Error(2013))  # M2-her fails the first one (not retried)
    clock.advance(minutes=30)
    await settle(manager)
    room = sinks.by_key[KEY]
    assert room.of("finish") == []
    assert room.of("notice") == []  # nobody asked: the failure is not shown
    assert "1 so far today" in await nudges(manager)  # it counts: no retry storm

    clock.advance(minutes=30)  # the other room's turn, then the first one's again
    await settle(manager)
    assert len(sinks.finished(OTHER_ROOM)) == 1
    clock.advance(minutes=30)
    await settle(manager)
    assert len(sinks.finished()) == 1


async def test_budgets_hold_for_nudges_too(make: EngineFactory) -> None:
    # A clock at the real time: budgets count today's stored usage.
    clock = Clock(datetime.now(UTC))
    policy = PolicyTree(base=ChatPolicy(limits=Limits(chat_daily_tokens=1)))
    engine = await make(settings(policy=policy), now=clock)
    manager = engine.manager
    await manager.handle(said("Hello", author_is_admin=True), RecordingSink())
    sinks = Sinks()
    await connected(engine, sinks)
    await nudges(manager, "on", "quiet 1")
    requests = len(engine.fake.requests)
    clock.advance(minutes=1)
    await settle(manager)
    assert sinks.finished() == []
    assert len(engine.fake.requests) == requests  # not even asked


async def test_a_settings_change_wakes_the_scheduler(make: EngineFactory) -> None:
    clock, engine, sinks = await started(make)
    manager = engine.manager
    await nudges(manager, "on")
    await settle(manager)
    clock.advance(minutes=30)  # nobody wakes it: it sleeps towards 60 minutes
    await nudges(manager, "quiet 20")  # the change alone wakes it
    await until(lambda: bool(sinks.finished()), 5)


async def test_the_scheduler_sleeps_until_the_next_due_time(make: EngineFactory) -> None:
    # Live: a clock running with real time, 59.5 s after nudges went on (quiet 1 minute).
    offset = timedelta()

    def live() -> datetime:
        return datetime.now(UTC) + offset

    engine = await make(settings(), now=live)
    manager = engine.manager
    sinks = Sinks()
    await connected(engine, sinks)
    await nudges(manager, "on", "quiet 1")
    offset = timedelta(seconds=59.5)
    passes = manager.nudges.passes
    started = time.monotonic()
    manager.nudges.wake()
    await until(lambda: bool(sinks.finished()), 5)
    waited = time.monotonic() - started
    assert 0.4 <= waited < 2.0
    # It slept to the due time: a pass to find it, one to send it, one after it was sent.
    assert manager.nudges.passes - passes <= 4
