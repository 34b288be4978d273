"""Delivery is the truth, and the model cannot flood a channel: the engine's side, on each
database, with the fake M2-her over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.conversation.manager import ManagerSettings
from bot.conversation.moderation import ModerationPolicy
from bot.conversation.notices import UNDELIVERED_NOTICE, NoticeRetry
from bot.conversation.policy import ChatPolicy, PolicyTree
from bot.conversation.runaway import CHARS_PER_TOKEN
from bot.conversation.sink import DeliveryFailed
from bot.conversation.turn import NO_REPLY, TurnStatus
from bot.llm.fake import Drop, Error, Reply
from bot.storage.database import open_database, parse_url
from bot.storage.models import MessageRow, ModelCallRow
from tests.conversation.conftest import KEY, Engine, EngineFactory, RecordingSink, said
from tests.observability.scrape import value

QUICK = NoticeRetry(first_delay=0.01, max_delay=0.05, give_up_after=5.0)


@dataclass
class RefusingSink(RecordingSink):
    """A sink whose platform refuses replies, and the first ``refused_notices`` notices."""

    permanent: bool = False
    refused_notices: int = 0
    notice_attempts: int = 0
    told: asyncio.Event = field(default_factory=asyncio.Event)

    async def finish(self, text: str) -> Sequence[str]:
        self.events.append(("finish", text))
        raise DeliveryFailed("the platform is down", permanent=self.permanent)

    async def notice(self, text: str) -> None:
        self.notice_attempts += 1
        if self.notice_attempts <= self.refused_notices:
            raise DeliveryFailed("still down", permanent=self.permanent)
        await super().notice(text)
        self.told.set()


async def _rows(database_url: str, table: Any, *columns: str) -> list[tuple[Any, ...]]:
    """Raw rows of ``table`` (for what the storage API does not return on purpose)."""
    database = open_database(parse_url(database_url))
    try:
        query = sa.select(*(table.c[name] for name in columns)).order_by(table.c.id)
        return await database.read(
            lambda connection: [tuple(row) for row in connection.execute(query)]
        )
    finally:
        await database.dispose()


def _user_turns(engine: Engine, index: int = -1) -> list[tuple[str, str]]:
    messages = engine.fake.requests[index].body["messages"]
    return [(m["role"], m["content"]) for m in messages if m["role"] in ("user", "assistant")]


# -- delivery -------------------------------------------------------------------------------


async def test_an_undelivered_reply_is_kept_out_of_prompts_counted_and_the_user_told_later(
    make_engine: EngineFactory, database_url: str
) -> None:
    engine = await make_engine(ManagerSettings(default_character="aria", notice_retry=QUICK))
    engine.fake.enqueue(Reply(text="A reply nobody saw."))
    sink = RefusingSink(refused_notices=2)
    outcome = await engine.manager.handle(said("hello?"), sink)

    assert outcome.status is TurnStatus.UNDELIVERED
    rows = await _rows(database_url, MessageRow.__table__, "role", "text", "delivery")
    assert rows == [
        ("user", "hello?", "delivered"),
        ("assistant", "A reply nobody saw.", "undelivered"),
    ]
    metrics = engine.manager.metrics.render()
    assert value(metrics, "troupe_replies_undelivered_total", platform="test") == 1
    async with asyncio.timeout(5):
        await sink.told.wait()  # once the platform takes messages again
    assert sink.of("notice") == [UNDELIVERED_NOTICE]
    assert sink.notice_attempts == 3

    await engine.manager.handle(said("are you there?"), RecordingSink())
    assert _user_turns(engine) == [("user", "hello?"), ("user", "are you there?")]


async def test_at_most_one_notice_is_owed_per_conversation_and_none_to_a_chat_gone_for_good(
    make_engine: EngineFactory,
) -> None:
    slow = NoticeRetry(first_delay=30.0, max_delay=60.0, give_up_after=900.0)
    engine = await make_engine(ManagerSettings(default_character="aria", notice_retry=slow))
    owed = engine.manager._owed_notices
    await engine.manager.handle(said("one"), RefusingSink())
    await engine.manager.handle(said("two"), RefusingSink())
    assert len(owed) == 1

    blocked = RefusingSink(permanent=True)
    other = said("hi", key=dataclass_key("room-2"))
    assert (await engine.manager.handle(other, blocked)).status is TurnStatus.UNDELIVERED
    assert len(owed) == 1  # nothing owed to a chat that refuses the bot

    await engine.manager.aclose()  # shutdown cancels what still waits
    assert len(owed) == 0


def dataclass_key(chat_id: str) -> Any:
    return type(KEY)(KEY.platform, chat_id)


async def test_a_delivered_reply_keeps_every_parts_platform_id(engine: Engine) -> None:
    @dataclass
    class SplittingSink(RecordingSink):
        async def finish(self, text: str) -> Sequence[str]:
            self.events.append(("finish", text))
            return ["p-first", "p-second", "p-third"]

    await engine.manager.handle(said("a long tale please"), SplittingSink())
    for part in ("p-first", "p-second", "p-third"):
        character = await engine.manager.character_of_message(KEY, part)
        assert character is not None, part
        assert character.id == "aria"
    assert await engine.manager.character_of_message(KEY, "p-fourth") is None
    assert await engine.manager.character_of_message(dataclass_key("elsewhere"), "p-second") is None


async def test_failing_notices_and_retractions_never_escape_a_turn(engine: Engine) -> None:
    @dataclass
    class BrokenSink(RecordingSink):
        async def retract(self, replacement: str | None = None) -> None:
            raise RuntimeError("the platform library exploded")

        async def notice(self, text: str) -> None:
            raise DeliveryFailed("no notices today")

    engine.fake.enqueue(Drop(after_chunks=2))  # part-streamed, then the connection drops
    outcome = await engine.manager.handle(said("hi"), BrokenSink())
    assert outcome.status is TurnStatus.FAILED


async def test_an_undelivered_greeting_is_not_history(engine: Engine) -> None:
    assert await engine.manager.greet(KEY, RefusingSink(), user_name="Sam") is False
    sink = RecordingSink()
    assert await engine.manager.greet(KEY, sink, user_name="Sam") is True
    assert len(sink.of("finish")) == 1


# -- the model cannot flood a channel ---------------------------------------------------------


async def test_a_runaway_reply_is_cut_closed_and_recorded_as_cut(
    engine: Engine, database_url: str
) -> None:
    flood = "The tide rises again. " * 1_000_000  # 22 MB; Aria asks for 512 tokens
    engine.fake.enqueue(Reply(text=flood, runaway=True, chunk_chars=4000))
    sink = RecordingSink()
    outcome = await engine.manager.handle(said("tell me about tides"), sink)

    cap = 512 * CHARS_PER_TOKEN
    assert outcome.status is TurnStatus.ANSWERED
    assert outcome.reply == flood[:cap]
    assert sink.of("finish") == [flood[:cap]]
    assert "".join(sink.of("delta")) == flood[:cap]
    # The client hung up: the rest of the body was never read.
    async with asyncio.timeout(5):
        while engine.fake.hang_ups == 0:  # noqa: ASYNC110 - the fake has no event for it
            await asyncio.sleep(0.01)
    rows = await _rows(database_url, ModelCallRow.__table__, "cut", "completion_tokens")
    assert len(rows) == 1
    assert rows[0][0] is True
    assert rows[0][1] > 0  # estimated: the stream's own report was never read
    metrics = engine.manager.metrics.render()
    assert value(metrics, "troupe_replies_cut_total", platform="test") == 1
    messages = await _rows(database_url, MessageRow.__table__, "text")
    assert messages[-1] == (flood[:cap],)


async def test_a_long_reply_within_its_allowance_is_not_cut(
    engine: Engine, database_url: str
) -> None:
    honest = "Tides. " * 500  # 3,500 characters: under 512 tokens x 8
    engine.fake.enqueue(Reply(text=honest, runaway=True, chunk_chars=400))
    outcome = await engine.manager.handle(said("tides?"), RecordingSink())
    assert outcome.reply == honest
    assert await _rows(database_url, ModelCallRow.__table__, "cut") == [(False,)]


async def test_an_empty_reply_is_never_shown_or_stored(engine: Engine, database_url: str) -> None:
    engine.fake.enqueue(Reply(text=" \n\u200b "))
    sink = RecordingSink()
    outcome = await engine.manager.handle(said("hello?"), sink)

    assert outcome.status is TurnStatus.EMPTY_REPLY
    assert sink.of("finish") == []
    assert sink.of("retract") == [None]  # whatever was shown while streaming goes
    assert sink.of("notice") == [NO_REPLY]
    assert await _rows(database_url, MessageRow.__table__, "role") == [("user",)]
    totals = await engine.storage.usage_totals(platform="test")
    assert totals.calls == 1  # the call is accounted for


async def test_a_message_without_visible_text_is_no_turn(engine: Engine, database_url: str) -> None:
    for text in ("", "   \n\t", "\u200b\u200d\u2060\ufeff", "\u00ad\u200e"):
        sink = RecordingSink()
        outcome = await engine.manager.handle(said(text), sink)
        assert outcome.status is TurnStatus.NO_TEXT, repr(text)
        assert sink.events == []
    assert engine.fake.requests == []
    assert await _rows(database_url, MessageRow.__table__, "id") == []
    outcome = await engine.manager.handle(said("\u200bhi"), RecordingSink())
    assert outcome.status is TurnStatus.ANSWERED


async def test_the_cooldown_notice_is_remembered_for_its_window_only(
    make_engine: EngineFactory,
) -> None:
    clock = [datetime.now(UTC)]
    policy = ModerationPolicy(cooldown_after=1, cooldown_window=timedelta(minutes=10))
    tree = PolicyTree(ChatPolicy(moderation=policy))
    engine = await make_engine(
        ManagerSettings(default_character="aria", policy=tree), now=lambda: clock[0]
    )
    engine.fake.enqueue(Error(1026))
    await engine.manager.handle(said("bad"), RecordingSink())
    sink = RecordingSink()
    await engine.manager.handle(said("hello?"), sink)
    await engine.manager.handle(said("hello??"), sink)
    assert sink.of("notice") == [policy.cooldown_notice()]
    told = engine.manager._runner._cooldown_told
    assert told.get(("test", "sam")) is not None

    clock[0] += timedelta(minutes=11)  # the flag has aged out: the memory of it goes too
    assert told.get(("test", "sam")) is None
