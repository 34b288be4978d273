"""Scenes end to end: the director picks who answers, characters answer each other within the
budget, a human's newer message or typing ends the chain; fake M2-her over loopback."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bot.conversation.director import Director
from bot.conversation.manager import ManagerSettings
from bot.conversation.policy import ChatPolicy, Limits, PolicyTree
from bot.conversation.trigger import TriggerSettings
from bot.conversation.turn import TurnStatus
from bot.llm.fake import Reply
from tests.conversation.conftest import KEY, Engine, EngineFactory, RecordingSink, said
from tests.conversation.test_director import FixedChance
from tests.conversation.test_manager import history_of, wait_for_requests
from tests.conversation.test_recovery import Platform, owed


class Clock:
    """The engine's clock: real time (stored times are real) moved on by hand."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


async def scene(
    make_engine: EngineFactory,
    *,
    chance: float = 0.0,
    scene_turns: int = 2,
    pause: float = 0.0,
    **kwargs: object,
) -> Engine:
    """Aria with Bram and Mara; unnamed chained turns happen when ``chance`` is below 0.5
    (the shipped characters' talkativeness); ``pause`` seconds before each chained turn."""
    engine = await make_engine(director=Director(rng=FixedChance(chance)), **kwargs)
    await engine.manager.add_to_scene(KEY, "bram")
    await engine.manager.add_to_scene(KEY, "mara")
    rules = TriggerSettings(scene_turns=scene_turns, scene_pause_seconds=pause)
    await engine.manager.policies.set_chat_settings(KEY, rules)
    return engine


class FinishingSink(RecordingSink):
    """A RecordingSink that says when a reply finished."""

    def __init__(self) -> None:
        super().__init__()
        self.finished = asyncio.Event()

    async def finish(self, text: str) -> Sequence[str]:
        ids = await super().finish(text)
        self.finished.set()
        return ids


def speakers(engine: Engine) -> list[str]:
    """Who spoke in each model call: the name of its ``system`` message."""
    return [str(request.body["messages"][0]["name"]) for request in engine.fake.requests]


async def test_characters_answer_each_other_up_to_the_default_budget_of_two(
    make_engine: EngineFactory,
) -> None:
    engine = await scene(make_engine)
    sink = RecordingSink()
    outcome = await engine.manager.handle(said("Aria, good evening"), sink)
    assert outcome.status is TurnStatus.ANSWERED
    assert len(speakers(engine)) == 2
    assert speakers(engine)[0] == "Aria"
    assert speakers(engine)[1] != "Aria"
    assert len(sink.of("finish")) == 2  # both through the message's sink
    usage = await engine.storage.usage_totals(platform=KEY.platform, author_id="sam")
    assert usage.calls == 2  # the chained turn is paid by the human who started it


async def test_a_larger_budget_never_gives_one_character_two_turns_in_a_row(
    make_engine: EngineFactory,
) -> None:
    engine = await scene(make_engine, scene_turns=5)
    await engine.manager.handle(said("evening, all"), RecordingSink())
    names = speakers(engine)
    assert len(names) == 5
    assert all(a != b for a, b in itertools.pairwise(names))


async def test_a_budget_of_one_means_characters_do_not_answer_each_other(
    make_engine: EngineFactory,
) -> None:
    engine = await scene(make_engine, scene_turns=1)
    await engine.manager.handle(said("Aria, good evening"), RecordingSink())
    assert speakers(engine) == ["Aria"]


async def test_unnamed_and_untalkative_nobody_takes_it_up(make_engine: EngineFactory) -> None:
    engine = await scene(make_engine, chance=0.5)  # talkativeness 0.5: never below
    await engine.manager.handle(said("Aria, good evening"), RecordingSink())
    assert speakers(engine) == ["Aria"]


async def test_each_chained_turn_sees_the_scene_from_its_own_point_of_view(
    make_engine: EngineFactory,
) -> None:
    engine = await scene(make_engine, chance=0.9, scene_turns=3)  # only named ones answer
    await engine.manager.handle(said("Aria, what does Mara think?"), RecordingSink())
    # Aria's echo names Mara; Mara's echo names Aria.
    assert speakers(engine) == ["Aria", "Mara Quill", "Aria"]
    first = history_of(engine, 0)
    assert first == [("user", "Sam", "Aria, what does Mara think?")]
    mara = history_of(engine, 1)
    assert mara[0] == ("user", "Sam", "Aria, what does Mara think?")
    assert mara[1][:2] == ("user", "Aria")  # another character: a named user turn
    assert len(mara) == 2
    aria = history_of(engine, 2)
    assert [entry[:2] for entry in aria] == [
        ("user", "Sam"),
        ("assistant", "Aria"),  # her own line
        ("user", "Mara Quill"),
    ]
    assert aria[1][2] == mara[1][2]  # what Aria said, as she said it


async def test_the_director_picks_by_relevance_and_quiet_when_nobody_is_named(
    make_engine: EngineFactory,
) -> None:
    engine = await scene(make_engine, scene_turns=1)
    await engine.manager.handle(said("Aria, tell me about the detective"), RecordingSink())
    await engine.manager.handle(said("and what do you think?"), RecordingSink())
    # "detective" is Mara's nickname, twice in the recent lines; Aria just spoke.
    assert speakers(engine) == ["Aria", "Mara Quill"]


async def test_a_newer_human_message_ends_the_chain(make_engine: EngineFactory) -> None:
    engine = await scene(make_engine)
    engine.fake.enqueue(Reply(delay=0.3))
    first_sink, second_sink = RecordingSink(), RecordingSink()
    first = asyncio.create_task(engine.manager.handle(said("Aria, hello"), first_sink))
    await wait_for_requests(engine, 1)
    second = asyncio.create_task(engine.manager.handle(said("Bram, and you?"), second_sink))
    await asyncio.gather(first, second)
    # Aria answers; nobody answers her, since Sam spoke again; Bram answers, then one more.
    assert speakers(engine)[:2] == ["Aria", "Bram Oakbarrel"]
    assert len(speakers(engine)) == 3
    assert len(first_sink.of("finish")) == 1
    assert history_of(engine, 1)[-1] == ("user", "Sam", "Bram, and you?")


async def test_a_human_typing_after_the_message_ends_the_chain(
    make_engine: EngineFactory,
) -> None:
    clock = Clock()
    engine = await scene(make_engine, now=clock)
    engine.manager.human_typing(KEY)  # typing the message itself: it does not count
    await engine.manager.handle(said("Aria, hello"), RecordingSink())
    assert len(speakers(engine)) == 2

    engine.fake.enqueue(Reply(delay=0.3))
    asked = asyncio.create_task(engine.manager.handle(said("Aria, again"), RecordingSink()))
    await wait_for_requests(engine, 3)
    engine.manager.human_typing(KEY)  # someone starts typing while Aria writes
    await asked
    assert len(speakers(engine)) == 3

    # The typing indicator is stale ten seconds later.
    clock.ahead = timedelta(seconds=11)
    await engine.manager.handle(said("Aria, once more"), RecordingSink())
    assert len(speakers(engine)) == 5


async def test_characters_pause_before_answering_each_other_and_typing_then_ends_the_chain(
    make_engine: EngineFactory,
) -> None:
    engine = await scene(make_engine, pause=1.0)
    sink = FinishingSink()
    handled = asyncio.create_task(engine.manager.handle(said("Aria, hello"), sink))
    await asyncio.wait_for(sink.finished.wait(), timeout=10)
    await asyncio.sleep(0.2)
    assert speakers(engine) == ["Aria"]  # nobody answers her yet: the pause
    engine.manager.human_typing(KEY)  # Sam starts typing within it
    assert (await handled).status is TurnStatus.ANSWERED
    assert speakers(engine) == ["Aria"]


async def test_chained_turns_stop_at_the_daily_token_budget(make_engine: EngineFactory) -> None:
    limits = Limits(user_daily_tokens=1)
    settings = ManagerSettings(
        default_character="aria",
        policy=PolicyTree(base=ChatPolicy(limits=limits)),
        cache_seconds=0,
    )
    engine = await scene(make_engine, settings=settings)
    sink = RecordingSink()
    await engine.manager.handle(said("Aria, hello"), sink)
    assert speakers(engine) == ["Aria"]  # the first answer spent the day's token
    assert sink.of("notice") == []  # the chain just ends; the next message is told


async def test_a_chain_cut_by_shutdown_is_not_owed(make_engine: EngineFactory) -> None:
    engine = await scene(make_engine)
    engine.fake.enqueue(Reply(), Reply(delay=5))
    handled = asyncio.create_task(engine.manager.handle(said("Aria, hello"), RecordingSink()))
    await wait_for_requests(engine, 2)  # the chained turn is under way
    await engine.manager.interrupt()
    assert (await handled).status is TurnStatus.ANSWERED
    # The human's message is answered; the rest of the chain is not resumed.
    assert await owed(engine.storage) == []


async def test_a_resumed_turn_answers_the_message_without_a_chain(
    make_engine: EngineFactory,
) -> None:
    before = await scene(make_engine)
    before.manager.stop_answering()
    outcome = await before.manager.handle(said("Mara, are you there?"), RecordingSink())
    assert outcome.status is TurnStatus.NOT_ANSWERED

    after = await make_engine(director=Director(rng=FixedChance(0.0)))
    platform = Platform()
    after.manager.resume_with(KEY.platform, platform.make_sink)
    await platform.first_finished()
    await asyncio.sleep(0.3)  # a chained turn would have started by now
    assert speakers(after) == ["Mara Quill"]
    assert await owed(after.storage) == []


async def test_no_chained_turn_starts_once_shutdown_began(make_engine: EngineFactory) -> None:
    engine = await scene(make_engine)
    engine.fake.enqueue(Reply(delay=0.3))
    handled = asyncio.create_task(engine.manager.handle(said("Aria, hello"), RecordingSink()))
    await wait_for_requests(engine, 1)
    engine.manager.stop_answering()
    assert (await handled).status is TurnStatus.ANSWERED  # the turn in flight finishes
    assert speakers(engine) == ["Aria"]
