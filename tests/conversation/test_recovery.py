"""No turn is lost: owed turns are resumed after a restart, a stopped turn, or an outage;
exactly once, also across processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from bot.conversation.claims import TurnClaims
from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import INTERRUPTED, ManagerSettings
from bot.conversation.sink import ReplySink
from bot.conversation.turn import TurnStatus
from bot.llm.fake import Reply
from bot.storage import Storage, StorageError, open_storage
from tests.conversation.conftest import KEY, Engine, EngineFactory, RecordingSink, said
from tests.databases import cut_connections

WAIT = 10.0


@dataclass
class FinishingSink(RecordingSink):
    """A recording sink that says when its reply is on screen."""

    finished: asyncio.Event = field(default_factory=asyncio.Event)

    async def finish(self, text: str) -> Sequence[str]:
        ids = await super().finish(text)
        self.finished.set()
        return ids


@dataclass
class Platform:
    """The sink factory a platform registers: remembers the sinks it made."""

    sinks: list[FinishingSink] = field(default_factory=list)
    asked: list[ConversationKey] = field(default_factory=list)
    made: asyncio.Event = field(default_factory=asyncio.Event)

    async def make_sink(self, key: ConversationKey) -> ReplySink | None:
        self.asked.append(key)
        sink = FinishingSink()
        self.sinks.append(sink)
        self.made.set()
        return sink

    async def first_finished(self) -> FinishingSink:
        async with asyncio.timeout(WAIT):
            await self.made.wait()
            await self.sinks[0].finished.wait()
        return self.sinks[0]


async def owed(storage: Storage) -> list[int]:
    return [turn.conversation.id for turn in await storage.owed_turns(KEY.platform)]


async def eventually(check: Callable[[], Awaitable[bool] | bool]) -> None:
    """Wait until ``check`` holds."""
    async with asyncio.timeout(WAIT):
        while True:
            done = check()
            if done if isinstance(done, bool) else await done:
                return
            await asyncio.sleep(0.01)


async def nothing_owed(storage: Storage) -> None:
    """Wait until no turn is owed (a turn notes what it answered after its reply)."""

    async def none() -> bool:
        return not await owed(storage)

    await eventually(none)


async def test_a_message_stored_while_shutting_down_is_answered_after_a_restart(
    make_engine: EngineFactory,
) -> None:
    before = await make_engine()
    before.manager.stop_answering()
    outcome = await before.manager.handle(said("are you there?"), RecordingSink())
    assert outcome.status is TurnStatus.NOT_ANSWERED
    assert len(await owed(before.storage)) == 1

    after = await make_engine()  # the next start, on the same database
    platform = Platform()
    after.manager.resume_with(KEY.platform, platform.make_sink)
    sink = await platform.first_finished()

    assert platform.asked == [KEY]
    [reply] = sink.of("finish")
    assert "Sam: “are you there?”" in reply
    await nothing_owed(after.storage)
    conversation = await after.storage.conversation("test", "room-1", default_character="aria")
    history = await after.storage.history_window(conversation.id, 10)
    assert [(m.role, m.reply_to_id) for m in history] == [
        ("user", None),
        ("assistant", outcome.message_id),
    ]
    assert len(after.fake.requests) == 1


async def test_answered_and_ignored_messages_are_not_owed(engine: Engine) -> None:
    answered = await engine.manager.handle(said("hello"), RecordingSink())
    assert answered.status is TurnStatus.ANSWERED
    aside = said("just chatting", author="kim", is_direct=False)
    ignored = await engine.manager.handle(aside, RecordingSink())
    assert ignored.status is TurnStatus.IGNORED
    assert await owed(engine.storage) == []


async def test_owed_turns_older_than_the_age_are_given_up(make_engine: EngineFactory) -> None:
    before = await make_engine()
    before.manager.stop_answering()
    await before.manager.handle(said("long ago"), RecordingSink())

    later = datetime.now(UTC) + timedelta(minutes=16)
    after = await make_engine(
        ManagerSettings(default_character="aria", resume_max_age=timedelta(minutes=15)),
        now=lambda: later,
    )
    platform = Platform()
    after.manager.resume_with(KEY.platform, platform.make_sink)
    await nothing_owed(after.storage)
    assert platform.asked == []  # given up, not answered
    assert after.fake.requests == []


async def test_the_owed_turn_of_a_chat_that_is_gone_is_given_up(
    make_engine: EngineFactory,
) -> None:
    before = await make_engine()
    before.manager.stop_answering()
    await before.manager.handle(said("hello?"), RecordingSink())
    after = await make_engine()
    asked: list[ConversationKey] = []

    async def gone(key: ConversationKey) -> ReplySink | None:
        asked.append(key)
        return None

    after.manager.resume_with(KEY.platform, gone)
    await nothing_owed(after.storage)
    assert asked == [KEY]
    assert after.fake.requests == []


async def test_a_turn_running_at_the_deadline_is_stopped_told_and_resumed_later(
    make_engine: EngineFactory,
) -> None:
    before = await make_engine()
    before.fake.enqueue(Reply(delay=30))  # a model that hangs
    sink = RecordingSink()
    running = asyncio.create_task(before.manager.handle(said("tell me a story"), sink))
    queued = asyncio.create_task(before.manager.handle(said("and another"), RecordingSink()))
    await eventually(lambda: bool(before.fake.requests))

    before.manager.stop_answering()
    assert not await before.manager.drain(0.05)
    started = time.monotonic()
    assert await before.manager.interrupt()
    assert time.monotonic() - started < 1.5
    assert (await running).status is TurnStatus.NOT_ANSWERED
    assert (await queued).status is TurnStatus.NOT_ANSWERED  # not started after the deadline
    assert sink.of("notice") == [INTERRUPTED]
    assert len(await owed(before.storage)) == 1
    assert len(before.fake.requests) == 1

    after = await make_engine()
    platform = Platform()
    after.manager.resume_with(KEY.platform, platform.make_sink)
    [reply] = (await platform.first_finished()).of("finish")
    assert "Sam: “and another”" in reply  # one turn answers both
    await nothing_owed(after.storage)


# -- several processes on PostgreSQL ------------------------------------------------------


@pytest.fixture
def postgres_only(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("claims are shared through PostgreSQL")
    return database_url


async def test_two_processes_resume_an_owed_turn_exactly_once(
    make_engine: EngineFactory, postgres_only: str
) -> None:
    dead = await make_engine()
    dead.manager.stop_answering()
    await dead.manager.handle(said("anyone?"), RecordingSink())
    dead.fake.enqueue(Reply(chunk_delay=0.05), Reply(chunk_delay=0.05))

    first, second = await make_engine(), await make_engine()
    platforms = Platform(), Platform()
    first.manager.resume_with(KEY.platform, platforms[0].make_sink)
    second.manager.resume_with(KEY.platform, platforms[1].make_sink)
    await nothing_owed(first.storage)

    def finished() -> list[str]:
        return [text for p in platforms for sink in p.sinks for text in sink.of("finish")]

    await eventually(lambda: bool(finished()))  # a loaded machine may lag the database
    await asyncio.sleep(0.5)  # a second turn would have started by now
    finishes = finished()
    assert len(finishes) == 1
    assert len(first.fake.requests) == 1


async def test_a_database_outage_mid_turn_does_not_cost_the_lease(
    make_engine: EngineFactory, postgres_only: str
) -> None:
    engine = await make_engine()
    platform = Platform()
    engine.manager.resume_with(KEY.platform, platform.make_sink)
    engine.fake.enqueue(Reply(text="x" * 120, chunk_delay=0.05))
    sink = RecordingSink()
    turn = asyncio.create_task(engine.manager.handle(said("before the outage"), sink))
    await eventually(lambda: bool(sink.of("delta")))
    dsn = postgres_only.replace("postgresql+asyncpg://", "postgresql://", 1)
    assert await cut_connections(dsn) > 0
    with pytest.raises(StorageError):
        await turn  # storing the reply met the outage

    # The turn stays owed and is resumed as soon as the database is back, not after the
    # 30 s lease; a new message is not held up either.
    started = time.monotonic()
    [reply] = (await platform.first_finished()).of("finish")
    assert "Sam: “before the outage”" in reply
    outcome = await engine.manager.handle(said("after the outage"), RecordingSink())
    assert outcome.status is TurnStatus.ANSWERED
    assert time.monotonic() - started < 5


async def test_a_release_that_fails_is_retried_until_the_database_is_back(
    postgres_only: str,
) -> None:
    storage, other = await open_storage(postgres_only), await open_storage(postgres_only)
    try:
        conversation = await storage.conversation("t", "c", default_character="aria")
        late = asyncio.Event()
        claims = TurnClaims(storage, on_late_release=late.set)
        async with claims.hold(conversation.id) as claim:
            claim.answered_through = 7
            # Every pooled connection dies: the release's first try fails.
            await cut_connections(postgres_only.replace("+asyncpg", "", 1))
        async with asyncio.timeout(WAIT):
            await late.wait()
        async with TurnClaims(other).hold(conversation.id) as taken:
            assert taken.answered_through == 7
        await claims.close()
    finally:
        await storage.close()
        await other.close()
