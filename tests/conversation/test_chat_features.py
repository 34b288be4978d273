"""Scenes, per-chat and per-server settings, edits, usage and the moderation hook."""

from __future__ import annotations

import asyncio

import pytest

from bot.characters.schema import Character
from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ManagerSettings
from bot.conversation.moderation import ModerationAction, ModerationPolicy
from bot.conversation.settings import ServerSettings, server_from_json, server_to_json
from bot.conversation.trigger import TriggerSettings
from bot.conversation.turn import ModerationReport, TurnStatus
from bot.llm.fake import Error, StreamVariant
from tests.conversation.conftest import KEY, Engine, EngineFactory, RecordingSink, said
from tests.conversation.test_manager import history_of, request_messages
from tests.observability.scrape import value


def system_name(engine: Engine) -> str:
    return str(request_messages(engine)[0]["name"])


async def one_answer_per_message(engine: Engine) -> None:
    """Characters of this chat's scene do not answer each other (``scene_turns`` 1)."""
    await engine.manager.policies.set_chat_settings(KEY, TriggerSettings(scene_turns=1))


async def test_in_a_scene_the_named_character_answers(engine: Engine) -> None:
    await one_answer_per_message(engine)
    await engine.manager.add_to_scene(KEY, "bram")
    assert [c.id for c in await engine.manager.scene(KEY)] == ["aria", "bram"]

    await engine.manager.handle(said("Bram, an ale please", is_direct=False), RecordingSink())
    assert system_name(engine) == "Bram Oakbarrel"
    await engine.manager.handle(
        said("hey there", mentions_bot=True, is_direct=False), RecordingSink()
    )
    assert system_name(engine) == "Aria"  # nobody named: the director's pick, quiet longest


async def test_a_reply_to_a_characters_message_goes_to_that_character(engine: Engine) -> None:
    await one_answer_per_message(engine)
    await engine.manager.add_to_scene(KEY, "bram")
    sink = RecordingSink()
    await engine.manager.handle(said("Bram?", is_direct=False), sink)
    posted_id = f"platform-{len(sink.events)}"  # RecordingSink's id for that finish
    replied = await engine.manager.character_of_message(KEY, posted_id)
    assert replied is not None
    assert replied.id == "bram"

    await engine.manager.handle(
        said("and another", is_direct=False, replies_to_bot=True, reply_to_message_id=posted_id),
        RecordingSink(),
    )
    assert system_name(engine) == "Bram Oakbarrel"


async def test_scene_membership_rules(engine: Engine) -> None:
    await engine.manager.add_to_scene(KEY, "bram")
    await engine.manager.add_to_scene(KEY, "bram")  # twice is once
    with pytest.raises(ValueError, match="main character"):
        await engine.manager.remove_from_scene(KEY, "aria")
    await engine.manager.set_character(KEY, "bram")  # the new main leaves the extras
    assert [c.id for c in await engine.manager.scene(KEY)] == ["bram"]
    await engine.manager.add_to_scene(KEY, "mara")
    await engine.manager.remove_from_scene(KEY, "mara")
    assert [c.id for c in await engine.manager.scene(KEY)] == ["bram"]


async def test_chat_settings_change_the_trigger_and_survive_a_restart(
    make_engine: EngineFactory,
) -> None:
    first = await make_engine()
    unaddressed = said("just chatting", is_direct=False)
    assert (await first.manager.handle(unaddressed, RecordingSink())).status is TurnStatus.IGNORED
    await first.manager.policies.set_chat_settings(KEY, TriggerSettings(answer_all=True))
    assert (await first.manager.handle(unaddressed, RecordingSink())).status is (
        TurnStatus.ANSWERED
    )
    await first.storage.close()

    second = await make_engine()
    assert (await second.manager.policies.chat_settings(KEY)).answer_all
    assert (await second.manager.handle(unaddressed, RecordingSink())).status is (
        TurnStatus.ANSWERED
    )


async def test_server_moderation_settings_apply_to_that_server_only(engine: Engine) -> None:
    silent = ModerationPolicy(on_blocked_input=ModerationAction.SILENT)
    await engine.manager.policies.set_server_settings(
        "test", "guild-1", ServerSettings(moderation=silent)
    )
    engine.fake.enqueue(Error(1026), Error(1026))

    quiet, loud = RecordingSink(), RecordingSink()
    await engine.manager.handle(said("bad", server_id="guild-1"), quiet)
    other = said("bad", server_id="guild-2", key=ConversationKey("test", "room-2"))
    await engine.manager.handle(other, loud)
    assert quiet.of("notice") == []
    assert len(loud.of("notice")) == 1


def test_server_settings_round_trip_and_tolerate_junk() -> None:
    settings = ServerSettings(
        moderation=ModerationPolicy(on_blocked_output=ModerationAction.NOTICE, cooldown_after=5),
        moderators_chat_id="mods",
    )
    assert server_from_json(server_to_json(settings)) == settings
    junk = {"moderation": {"on_blocked_input": "explode", "cooldown_after": "x"}, "zzz": 1}
    assert server_from_json(junk) == ServerSettings()


async def test_the_moderation_hook_hears_every_flag(make_engine: EngineFactory) -> None:
    reports: list[ModerationReport] = []

    async def hook(report: ModerationReport) -> None:
        reports.append(report)

    engine = await make_engine(on_moderation=hook)
    engine.fake.enqueue(Error(1026, input_sensitive_type=3))
    await engine.manager.handle(said("buy my stuff", server_id="g"), RecordingSink())
    assert [(r.event.direction, r.event.type_name, r.character.id) for r in reports] == [
        ("input", "advertisement", "aria")
    ]
    assert reports[0].incoming.text == "buy my stuff"


async def test_a_failing_hook_does_not_break_the_turn(make_engine: EngineFactory) -> None:
    async def broken(report: ModerationReport) -> None:
        raise RuntimeError("moderators' channel is gone")

    engine = await make_engine(on_moderation=broken)
    engine.fake.enqueue(Error(1026))
    sink = RecordingSink()
    outcome = await engine.manager.handle(said("bad"), sink)
    assert outcome.status is TurnStatus.BLOCKED_INPUT
    assert len(sink.of("notice")) == 1


async def test_user_edits_and_deletions_reach_the_history(engine: Engine) -> None:
    await engine.manager.handle(said("I like cats", platform_message_id="p1"), RecordingSink())
    await engine.manager.handle(said("typo here", platform_message_id="p2"), RecordingSink())
    assert await engine.manager.edit_message(KEY, "p1", "I like dogs")
    assert await engine.manager.delete_message(KEY, "p2")
    assert not await engine.manager.delete_message(KEY, "nope")
    await engine.manager.handle(said("so?"), RecordingSink())
    contents = [content for role, _, content in history_of(engine) if role == "user"]
    assert contents == ["I like dogs", "so?"]


async def test_usage_is_reported_with_an_estimated_cost(engine: Engine) -> None:
    engine.fake.stream_variant = StreamVariant.RICH
    await engine.manager.handle(said("hi", server_id="g1"), RecordingSink())
    await engine.manager.handle(said("hi", author="ann", server_id="g1"), RecordingSink())
    mine = await engine.manager.users.usage("test", author_id="sam")
    everyone = await engine.manager.users.usage("test", server_id="g1")
    assert mine.calls == 1
    assert everyone.calls == 2
    expected = (mine.prompt_tokens * 0.30 + mine.completion_tokens * 1.20) / 1_000_000
    assert mine.cost_usd == pytest.approx(expected)
    assert mine.cost_usd > 0


async def test_streams_that_report_only_totals_still_cost_something(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(ManagerSettings(default_character="aria"))
    await engine.manager.handle(said("hi"), RecordingSink())
    report = await engine.manager.users.usage("test")
    assert report.prompt_tokens == 0
    assert report.total_tokens > 0
    assert report.cost_usd == pytest.approx(report.total_tokens * 0.30 / 1_000_000)


async def test_turns_tokens_errors_and_flags_reach_the_metrics(engine: Engine) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    engine.fake.stream_variant = StreamVariant.RICH
    await engine.manager.handle(said("hello"), RecordingSink())
    engine.fake.enqueue(Error(1008), Error(1026, input_sensitive_type=5))
    await engine.manager.handle(said("again"), RecordingSink())
    await engine.manager.handle(said("bad"), RecordingSink())

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(engine.manager.metrics.render().decode())
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("troupe_turns_total", platform="test", status="answered") == 1
    assert value("troupe_turns_total", platform="test", status="failed") == 1
    assert value("troupe_turns_total", platform="test", status="blocked_input") == 1
    assert value("troupe_turn_seconds_count", platform="test") == 3
    assert value("troupe_first_token_seconds_count", platform="test") == 1
    assert value("troupe_api_errors_total", code="1008", kind="InsufficientBalance") == 1
    assert value("troupe_sensitive_flags_total", direction="input", type="abuse") == 1
    assert value("troupe_tokens_total", platform="test", direction="in") > 0
    assert value("troupe_turns_in_flight", platform="test") == 0


async def test_a_turn_waiting_for_its_conversation_is_measured(engine: Engine) -> None:
    holding, released = asyncio.Event(), asyncio.Event()

    class HeldSink(RecordingSink):
        async def begin(self, character: Character) -> None:
            holding.set()  # the first turn has read its history and holds the conversation
            await released.wait()
            await super().begin(character)

    metrics = engine.manager.metrics
    first = asyncio.create_task(engine.manager.handle(said("first"), HeldSink()))
    await holding.wait()
    second = asyncio.create_task(engine.manager.handle(said("second"), RecordingSink()))
    async with asyncio.timeout(5):
        # Until the second message waits for the conversation.
        while value(metrics.render(), "troupe_queue_depth", platform="test") != 1:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    await asyncio.sleep(0.2)  # the second turn waits that long for the first
    released.set()
    assert (await first).status is TurnStatus.ANSWERED
    assert (await second).status is TurnStatus.ANSWERED

    text = metrics.render()
    assert value(text, "troupe_turn_wait_seconds_count", platform="test") == 2
    waited = value(text, "troupe_turn_wait_seconds_sum", platform="test")
    assert waited is not None
    assert waited >= 0.2
