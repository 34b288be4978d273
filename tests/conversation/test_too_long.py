"""M2-her says "context too long": the turn retries with less history, and only a long newest
message is the user's to shorten (the fake M2-her on loopback, a real database)."""

from __future__ import annotations

from typing import Any

from bot.characters.budget import NEWEST_MESSAGE_TOKENS, CharacterTooLong, PromptTooLong
from bot.characters.prompt import Budget, fixed_tokens
from bot.conversation.manager import ManagerSettings
from bot.conversation.turn import TurnStatus
from bot.llm.errors import ContextTooLong
from bot.llm.fake import Error
from bot.llm.tokens import estimate_message_tokens
from bot.llm.types import CONTEXT_WINDOW
from bot.storage import NewMessage
from tests.conversation.conftest import KEY, Engine, EngineFactory, RecordingSink, said

TOO_LONG = Error(2013, "invalid params, context window exceeds limit")
#: A newest message longer than the few lines every character leaves room for.
LONG_MESSAGE = "A long story, told at length. " * 60


def dialogue(engine: Engine, index: int) -> list[str]:
    """The history part of a recorded request, as its texts."""
    messages: list[dict[str, Any]] = engine.fake.requests[index].body["messages"]
    return [m["content"] for m in messages if m["role"] in ("user", "assistant")]


async def chat_a_while(engine: Engine, turns: int) -> None:
    for number in range(turns):
        await engine.manager.handle(said(f"message {number}"), RecordingSink())


def test_the_long_message_is_longer_than_the_room_every_character_leaves() -> None:
    assert estimate_message_tokens(LONG_MESSAGE) > NEWEST_MESSAGE_TOKENS
    assert estimate_message_tokens("and now?") <= NEWEST_MESSAGE_TOKENS


async def answered_on_the_retry(engine: Engine) -> tuple[list[str], list[str]]:
    """Say something short; it is answered without a notice. The refused request's history
    and the answered one's."""
    sink = RecordingSink()
    outcome = await engine.manager.handle(said("and now?"), sink)
    assert outcome.status is TurnStatus.ANSWERED
    assert sink.of("notice") == []
    return dialogue(engine, -2), dialogue(engine, -1)


async def test_a_refusal_for_length_is_retried_once_with_half_the_history(engine: Engine) -> None:
    await chat_a_while(engine, 6)
    engine.fake.enqueue(TOO_LONG)

    refused, retried = await answered_on_the_retry(engine)

    assert len(refused) == 13
    # The newest messages, a contiguous run, about half of what was refused.
    assert retried == refused[-len(retried) :]
    assert 2 <= len(retried) <= 8
    assert retried[-1] == "and now?"


async def test_still_too_long_with_a_short_message_blames_the_character_not_the_user(
    engine: Engine,
) -> None:
    await chat_a_while(engine, 2)
    engine.fake.enqueue(TOO_LONG, TOO_LONG)
    sink = RecordingSink()
    before = len(engine.fake.requests)

    outcome = await engine.manager.handle(said("and now?"), sink)

    assert outcome.status is TurnStatus.FAILED
    assert isinstance(outcome.error, ContextTooLong)
    assert len(engine.fake.requests) == before + 2  # one retry, no more
    assert sink.of("notice") == [CharacterTooLong.user_message]
    assert "shorter" not in CharacterTooLong.user_message
    assert sink.of("finish") == []


async def test_still_too_long_with_a_long_message_asks_for_a_shorter_one(engine: Engine) -> None:
    await chat_a_while(engine, 2)
    engine.fake.enqueue(TOO_LONG, TOO_LONG)
    sink = RecordingSink()

    outcome = await engine.manager.handle(said(LONG_MESSAGE), sink)

    assert outcome.status is TurnStatus.FAILED
    assert sink.of("notice") == [PromptTooLong.user_message]
    assert "please send something shorter" in PromptTooLong.user_message


async def test_a_budget_larger_than_the_models_window_recovers_on_the_retry(
    make_engine: EngineFactory,
) -> None:
    # The engine believes in twice M2-her's window; the fake counts the real one and
    # refuses the first request by itself, nothing scripted.
    budget = Budget(context_window=2 * CONTEXT_WINDOW)
    engine = await make_engine(ManagerSettings(default_character="aria", budget=budget))
    conversation = await engine.storage.conversation(
        KEY.platform, KEY.chat_id, default_character="aria"
    )
    page = "\u00e9" * 4000  # about 4,000 tokens
    for number in range(18):
        await engine.storage.add_message(
            NewMessage(
                conversation_id=conversation.id,
                role="user",
                author_id="sam",
                author_name="Sam",
                text=f"{number}: {page}",
            )
        )

    refused, answered = await answered_on_the_retry(engine)

    assert len(refused) == 19
    assert answered == refused[-len(answered) :]
    assert len(answered) < len(refused)


async def test_a_short_message_that_does_not_fit_beside_the_character_blames_the_character(
    make_engine: EngineFactory,
) -> None:
    # Room for Aria's fixed part and 5 tokens more: not even a short message fits, and no
    # request is sent. Before, the user was asked to send something shorter.
    probe = await make_engine()
    aria = probe.characters.get("aria")
    completion = aria.generation.max_completion_tokens or 512
    room = fixed_tokens(aria) + 5
    budget = Budget(context_window=room + completion + 1024, max_completion_tokens=completion)
    engine = await make_engine(ManagerSettings(default_character="aria", budget=budget))
    sink = RecordingSink()

    outcome = await engine.manager.handle(said("Is it raining out there?"), sink)

    assert outcome.status is TurnStatus.FAILED
    assert sink.of("notice") == [CharacterTooLong.user_message]
    assert engine.fake.requests == []
