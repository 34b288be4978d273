"""The conversation manager end to end: fake M2-her over loopback, a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ManagerSettings
from bot.conversation.policy import ChatPolicy, PolicyTree
from bot.conversation.turn import TurnStatus
from bot.llm.errors import (
    AuthenticationError,
    ContextTooLong,
    InsufficientBalance,
    M2HerError,
    RateLimited,
    RequestTimeout,
    ServerError,
    StreamInterrupted,
    UsageWindowExceeded,
)
from bot.llm.fake import Drop, Error, HttpError, Reply, StreamVariant
from tests.conversation.conftest import KEY, Engine, EngineFactory, RecordingSink, said


def request_messages(engine: Engine, index: int = -1) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = engine.fake.requests[index].body["messages"]
    return messages


def history_of(engine: Engine, index: int = -1) -> list[tuple[str, str | None, str | None]]:
    """The dialogue part of a recorded request: (role, name, content) after the fixed part."""
    return [
        (m["role"], m.get("name"), m.get("content"))
        for m in request_messages(engine, index)
        if m["role"] in ("user", "assistant")
    ]


async def stored(engine: Engine, key: ConversationKey = KEY) -> list[tuple[str, str]]:
    conversation = await engine.storage.conversation(
        key.platform, key.chat_id, key.thread_id, default_character="aria"
    )
    return [(m.role, m.text) for m in await engine.storage.history_window(conversation.id, 1000)]


async def wait_for_requests(engine: Engine, count: int) -> None:
    async with asyncio.timeout(5):
        while len(engine.fake.requests) < count:  # noqa: ASYNC110 - the fake has no event
            await asyncio.sleep(0.005)


# -- a plain turn ---------------------------------------------------------------------------


async def test_a_turn_streams_into_the_sink_and_stores_the_reply(engine: Engine) -> None:
    sink = RecordingSink()
    outcome = await engine.manager.handle(said("Hello Aria, any books on tides?"), sink)

    assert outcome.status is TurnStatus.ANSWERED
    assert sink.events[0] == ("begin", "aria")
    deltas = sink.of("delta")
    assert len(deltas) >= 2, "the reply should arrive in several pieces"
    assert sink.of("finish") == ["".join(deltas)]
    assert outcome.reply == "".join(deltas)
    assert "Aria heard Sam: “Hello Aria, any books on tides?”" in outcome.reply
    assert await stored(engine) == [
        ("user", "Hello Aria, any books on tides?"),
        ("assistant", outcome.reply),
    ]
    assert history_of(engine) == [("user", "Sam", "Hello Aria, any books on tides?")]


async def test_the_reply_remembers_its_platform_message_and_usage(engine: Engine) -> None:
    # The documented stream reports only total_tokens; the "rich" variant reports all.
    await engine.manager.handle(said("hi"), RecordingSink())
    engine.fake.stream_variant = StreamVariant.RICH
    await engine.manager.handle(said("hi again"), RecordingSink())

    conversation = await engine.storage.conversation("test", "room-1", default_character="aria")
    reply = (await engine.storage.history_window(conversation.id, 10))[-1]
    assert reply.platform_message_id is not None
    assert reply.prompt_tokens
    assert reply.completion_tokens
    totals = await engine.storage.usage_totals(platform="test", author_id="sam")
    assert totals.calls == 2
    assert totals.prompt_tokens == reply.prompt_tokens
    assert totals.total_tokens > reply.prompt_tokens + reply.completion_tokens


async def test_the_users_message_is_stored_before_the_model_is_called(engine: Engine) -> None:
    engine.fake.enqueue(Reply(delay=0.5))
    turn = asyncio.create_task(engine.manager.handle(said("are you there?"), RecordingSink()))
    await wait_for_requests(engine, 1)
    assert await stored(engine) == [("user", "are you there?")]
    await turn


async def test_unaddressed_messages_are_stored_and_later_seen_as_context(engine: Engine) -> None:
    sink = RecordingSink()
    ignored = await engine.manager.handle(
        said("the rain is loud tonight", author="ann", is_direct=False), sink
    )
    assert ignored.status is TurnStatus.IGNORED
    assert engine.fake.requests == []
    assert sink.events == []

    await engine.manager.handle(said("Aria, what do you think?", is_direct=False), sink)
    assert history_of(engine) == [
        ("user", "Ann", "the rain is loud tonight"),
        ("user", "Sam", "Aria, what do you think?"),
    ]


async def test_each_human_keeps_their_own_name(engine: Engine) -> None:
    await engine.manager.handle(said("I'm first", author="ann"), RecordingSink())
    await engine.manager.handle(said("I'm second", author="bo", name="system"), RecordingSink())
    names = [(role, name) for role, name, _ in history_of(engine)]
    assert names == [("user", "Ann"), ("assistant", "Aria"), ("user", "system")]
    # A user called "system" is still only a `user` message: one system message in total.
    assert [m["role"] for m in request_messages(engine)].count("system") == 1


# -- failures -------------------------------------------------------------------------------

FAILURES = [
    pytest.param([Error(1002)] * 4, RateLimited, id="rate-limited"),
    pytest.param([Error(1008)], InsufficientBalance, id="out-of-balance"),
    pytest.param([Error(1004)], AuthenticationError, id="bad-key"),
    pytest.param([Error(2056)], UsageWindowExceeded, id="usage-window"),
    pytest.param([HttpError(502)] * 4, ServerError, id="bad-gateway"),
    pytest.param([Error(1024)] * 4, ServerError, id="internal-error"),
    pytest.param([Error(1001)] * 2, RequestTimeout, id="upstream-timeout"),
    pytest.param([Error(2049)], AuthenticationError, id="invalid-key"),
    pytest.param([Error(1041)] * 4, RateLimited, id="connection-limit"),
    pytest.param([Drop(after_chunks=2)], StreamInterrupted, id="dropped-mid-stream"),
]


@pytest.mark.parametrize(("script", "error_type"), FAILURES)
async def test_a_failed_call_tells_the_user_and_keeps_history(
    engine: Engine, script: list[Any], error_type: type[M2HerError]
) -> None:
    await engine.manager.handle(said("first"), RecordingSink())
    engine.fake.enqueue(*script)
    sink = RecordingSink()

    outcome = await engine.manager.handle(said("second"), sink)

    assert outcome.status is TurnStatus.FAILED
    assert isinstance(outcome.error, error_type)
    assert sink.of("notice") == [outcome.error.user_message]
    assert sink.of("finish") == []
    if sink.of("delta"):  # part of the reply was shown: it must be withdrawn
        assert sink.of("retract") == [None]
    history = await stored(engine)
    assert [role for role, _ in history] == ["user", "assistant", "user"]
    assert history[-1] == ("user", "second")

    # The next message works, and the failed turn's message is still in its context.
    recovered = await engine.manager.handle(said("third"), RecordingSink())
    assert recovered.status is TurnStatus.ANSWERED
    assert [content for _, _, content in history_of(engine)][-2:] == ["second", "third"]


async def test_a_message_too_long_for_the_budget_is_refused_without_a_call(
    engine: Engine,
) -> None:
    sink = RecordingSink()
    outcome = await engine.manager.handle(said("word " * 200_000), sink)
    assert outcome.status is TurnStatus.FAILED
    assert isinstance(outcome.error, ContextTooLong)
    assert sink.of("notice") == [outcome.error.user_message]
    assert engine.fake.requests == []

    # The oversized message stays stored but is trimmed away from the next prompt.
    assert (await engine.manager.handle(said("sorry, short one"), sink)).status is (
        TurnStatus.ANSWERED
    )
    assert history_of(engine) == [("user", "Sam", "sorry, short one")]


# -- moderation -----------------------------------------------------------------------------


async def test_blocked_input_is_recorded_noticed_and_kept_out_of_later_prompts(
    engine: Engine,
) -> None:
    engine.fake.enqueue(Error(1026, input_sensitive_type=5))
    sink = RecordingSink()
    outcome = await engine.manager.handle(said("something abusive"), sink)

    assert outcome.status is TurnStatus.BLOCKED_INPUT
    assert sink.of("notice") == [outcome.error.user_message] if outcome.error else False
    events = await engine.storage.moderation_events(platform="test")
    assert [(e.direction, e.sensitive_type, e.type_name, e.author_id) for e in events] == [
        ("input", 5, "abuse", "sam")
    ]
    assert events[0].message_id == outcome.message_id

    await engine.manager.handle(said("let's talk about books"), RecordingSink())
    assert history_of(engine) == [("user", "Sam", "let's talk about books")]


async def test_a_mild_input_flag_still_answers_but_is_recorded_and_excluded(
    engine: Engine,
) -> None:
    engine.fake.enqueue(Reply(input_sensitive_type=6))
    sink = RecordingSink()
    outcome = await engine.manager.handle(said("a borderline line"), sink)

    assert outcome.status is TurnStatus.ANSWERED
    assert sink.of("finish") == [outcome.reply]
    events = await engine.storage.moderation_events(platform="test")
    assert [(e.direction, e.sensitive_type) for e in events] == [("input", 6)]

    await engine.manager.handle(said("next"), RecordingSink())
    contents = [content for _, _, content in history_of(engine)]
    assert "a borderline line" not in contents
    assert contents[-1] == "next"


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(Error(1027, after_chunks=2, output_sensitive_type=2), id="mid-stream-1027"),
        pytest.param(Reply(output_sensitive_type=2), id="flag-with-status-0"),
    ],
)
async def test_flagged_output_is_never_delivered(engine: Engine, script: Any) -> None:
    engine.fake.enqueue(script)
    sink = RecordingSink()
    outcome = await engine.manager.handle(said("tell me a story"), sink)

    assert outcome.status is TurnStatus.BLOCKED_OUTPUT
    assert sink.of("finish") == []
    aria = engine.characters.get("aria")
    assert sink.of("retract") == [aria.render(aria.blocked_reply, user="Sam")]
    events = await engine.storage.moderation_events(platform="test")
    assert [(e.direction, e.sensitive_type, e.type_name) for e in events] == [
        ("output", 2, "pornography")
    ]
    assert [role for role, _ in await stored(engine)] == ["user"]


async def test_a_silent_policy_posts_nothing_but_still_records(
    make_engine: EngineFactory,
) -> None:
    from bot.conversation.moderation import ModerationAction, ModerationPolicy

    policy = ModerationPolicy(
        on_blocked_input=ModerationAction.SILENT, on_blocked_output=ModerationAction.SILENT
    )
    tree = PolicyTree(ChatPolicy(moderation=policy))
    engine = await make_engine(ManagerSettings(default_character="aria", policy=tree))
    engine.fake.enqueue(Error(1027, after_chunks=1), Error(1026))
    sink = RecordingSink()
    await engine.manager.handle(said("one"), sink)
    await engine.manager.handle(said("two"), sink)
    assert sink.of("notice") == []
    assert sink.of("retract") == [None, None]
    assert len(await engine.storage.moderation_events(platform="test")) == 2


async def test_repeat_offenders_cool_down_and_are_told_once(make_engine: EngineFactory) -> None:
    from bot.conversation.moderation import ModerationPolicy

    policy = ModerationPolicy(cooldown_after=2)
    tree = PolicyTree(ChatPolicy(moderation=policy))
    engine = await make_engine(ManagerSettings(default_character="aria", policy=tree))
    engine.fake.enqueue(Error(1026), Error(1026))
    await engine.manager.handle(said("bad one"), RecordingSink())
    await engine.manager.handle(said("bad two"), RecordingSink())
    calls = len(engine.fake.requests)

    sink = RecordingSink()
    first = await engine.manager.handle(said("hello again"), sink)
    second = await engine.manager.handle(said("hello?"), sink)
    assert (first.status, second.status) == (TurnStatus.COOLDOWN, TurnStatus.COOLDOWN)
    assert sink.of("notice") == [policy.cooldown_notice()]
    assert len(engine.fake.requests) == calls

    other = await engine.manager.handle(said("hi", author="ann"), RecordingSink())
    assert other.status is TurnStatus.ANSWERED


# -- concurrency ----------------------------------------------------------------------------


async def test_many_conversations_at_once_lose_and_reorder_nothing(engine: Engine) -> None:
    keys = [ConversationKey("test", f"room-{n}") for n in range(40)]

    async def talk(key: ConversationKey) -> None:
        for turn in range(3):
            await engine.manager.handle(
                said(f"{key.chat_id} says {turn}", key=key), RecordingSink()
            )

    await asyncio.gather(*(talk(key) for key in keys))

    for key in keys:
        history = await stored(engine, key)
        assert [role for role, _ in history] == ["user", "assistant"] * 3
        for turn in range(3):
            user_text = history[2 * turn][1]
            assert user_text == f"{key.chat_id} says {turn}"
            assert f"“{user_text}”" in history[2 * turn + 1][1]


async def test_a_burst_is_answered_in_one_next_turn_in_order(engine: Engine) -> None:
    engine.fake.enqueue(Reply(delay=0.3))
    first = asyncio.create_task(engine.manager.handle(said("m0"), RecordingSink()))
    await wait_for_requests(engine, 1)
    burst = [
        asyncio.create_task(engine.manager.handle(said(f"m{n}"), RecordingSink()))
        for n in range(1, 5)
    ]
    outcomes = [await first, *await asyncio.gather(*burst)]

    assert [o.status for o in outcomes] == [
        TurnStatus.ANSWERED,
        TurnStatus.ANSWERED,
        *[TurnStatus.ANSWERED_BY_BATCH] * 3,
    ]
    assert len(engine.fake.requests) == 2
    contents = [content for _, _, content in history_of(engine)]
    assert contents[-4:] == ["m1", "m2", "m3", "m4"]
    assert [text for role, text in await stored(engine) if role == "user"] == [
        "m0",
        "m1",
        "m2",
        "m3",
        "m4",
    ]


# -- commands and persistence ---------------------------------------------------------------


async def test_history_and_bindings_survive_a_restart(make_engine: EngineFactory) -> None:
    before = await make_engine()
    await before.manager.set_character(KEY, "bram")
    await before.manager.handle(said("An ale, please."), RecordingSink())
    await before.storage.close()

    after = await make_engine()
    assert (await after.manager.character_for(KEY)).id == "bram"
    await after.manager.handle(said("And some bread."), RecordingSink())
    roles = [(role, name) for role, name, _ in history_of(after)]
    assert roles == [("user", "Sam"), ("assistant", "Bram Oakbarrel"), ("user", "Sam")]


async def test_switching_character_turns_the_old_ones_lines_into_named_user_turns(
    engine: Engine,
) -> None:
    await engine.manager.handle(said("hello"), RecordingSink())
    await engine.manager.set_character(KEY, "Bram Oakbarrel")
    await engine.manager.handle(said("who was that?"), RecordingSink())
    assert [(role, name) for role, name, _ in history_of(engine)] == [
        ("user", "Sam"),
        ("user", "Aria"),
        ("user", "Sam"),
    ]
    system = request_messages(engine)[0]
    assert (system["role"], system["name"]) == ("system", "Bram Oakbarrel")


async def test_an_unknown_character_suggests_the_closest(engine: Engine) -> None:
    with pytest.raises(KeyError, match="aria"):
        await engine.manager.set_character(KEY, "arya")


async def test_reset_forgets_the_conversation(engine: Engine) -> None:
    await engine.manager.handle(said("remember this"), RecordingSink())
    assert await engine.manager.reset(KEY) == 2
    await engine.manager.handle(said("fresh start"), RecordingSink())
    assert history_of(engine) == [("user", "Sam", "fresh start")]


async def test_a_users_persona_is_sent_as_user_system(engine: Engine) -> None:
    await engine.manager.users.set_persona("test", "sam", "A lighthouse keeper who hates boats.")
    await engine.manager.handle(said("hi"), RecordingSink())
    user_system = [m for m in request_messages(engine) if m["role"] == "user_system"]
    assert user_system == [
        {"role": "user_system", "name": "Sam", "content": "A lighthouse keeper who hates boats."}
    ]
    await engine.manager.users.set_persona("test", "sam", None)
    assert await engine.manager.users.persona("test", "sam") is None


async def test_forget_erases_the_user_and_only_the_user(engine: Engine) -> None:
    await engine.manager.users.set_persona("test", "sam", "a spy")
    engine.fake.enqueue(Error(1026))
    await engine.manager.handle(said("blocked words"), RecordingSink())
    await engine.manager.handle(said("hi"), RecordingSink())
    await engine.manager.handle(said("me too", author="ann"), RecordingSink())

    report = await engine.manager.users.forget("test", "sam")

    # Sam's two messages and the reply written for Sam's turn; Ann's exchange stays.
    assert (report.messages, report.personas, report.moderation_events) == (3, 1, 1)
    history = await stored(engine)
    assert [role for role, _ in history] == ["user", "assistant"]
    assert history[0] == ("user", "me too")
    assert await engine.manager.users.persona("test", "sam") is None
    assert await engine.storage.moderation_events(author_id="sam") == []


async def test_a_new_conversation_is_greeted_once(engine: Engine) -> None:
    sink = RecordingSink()
    assert await engine.manager.greet(KEY, sink, user_name="Sam")
    aria = engine.characters.get("aria")
    assert sink.of("finish") == [aria.render(aria.greeting, user="Sam")]
    assert not await engine.manager.greet(KEY, RecordingSink(), user_name="Sam")
    await engine.manager.handle(said("hello"), RecordingSink())
    assert history_of(engine)[0][0] == "assistant"


async def test_a_new_conversation_opens_with_the_greeting_the_chooser_picks(
    make_engine: EngineFactory,
) -> None:
    offered: list[list[str]] = []

    def last(greetings: Sequence[str]) -> str:
        offered.append(list(greetings))
        return greetings[-1]

    engine = await make_engine(choose_greeting=last)
    sink = RecordingSink()
    assert await engine.manager.greet(KEY, sink, user_name="Sam")
    aria = engine.characters.get("aria")
    assert offered == [[aria.greeting, *aria.alternate_greetings]]
    alternate = aria.render(aria.alternate_greetings[-1], user="Sam")
    assert sink.of("finish") == [alternate]
    assert await stored(engine) == [("assistant", alternate)]
    await engine.manager.handle(said("hello"), RecordingSink())
    assert history_of(engine)[0] == ("assistant", "Aria", alternate)
