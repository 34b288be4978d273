"""troupe.yaml's hierarchy, limits, and how admins' settings stack on top."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from bot.configfile import ConfigFileError, load_config_file
from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ManagerSettings
from bot.conversation.moderation import ModerationAction
from bot.conversation.policy import ChatPolicy, Limits, PolicyTree, Scope
from bot.conversation.trigger import TriggerSettings
from bot.conversation.turn import TurnStatus
from bot.llm.fake import StreamVariant
from tests.conversation.conftest import EngineFactory, RecordingSink, said

CONFIG = """\
trigger:
  follow_up_seconds: 30
limits:
  user_daily_tokens: 1000
platforms:
  console:
    moderation:
      on_blocked_input: silent
    servers:
      "guild-1":
        trigger: {random_chance: 0.2}
        moderation: {moderators_chat: "mods", cooldown_minutes: 5}
        channels:
          "room-1":
            trigger: {answer_all: true, scene_turns: 3, scene_pause_seconds: 0.5}
            characters: [bram, mara]
characters:
  mara:
    limits: {in_character_notice: true}
"""


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "troupe.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def tree_from(tmp_path: Path, text: str = CONFIG) -> PolicyTree:
    ids = {"aria", "bram", "mara"}
    return load_config_file(write_config(tmp_path, text), character_ids=ids).policy_tree()


def test_each_layer_overrides_only_what_it_sets(tmp_path: Path) -> None:
    tree = tree_from(tmp_path)
    channel = tree.resolve(Scope("console", "guild-1", "room-1", "bram"))
    assert channel.trigger == TriggerSettings(
        answer_all=True,
        follow_up_seconds=30,
        random_chance=0.2,
        scene_turns=3,
        scene_pause_seconds=0.5,
    )
    assert channel.moderation.on_blocked_input is ModerationAction.SILENT
    assert channel.moderation.cooldown_window == timedelta(minutes=5)
    assert channel.moderators_chat_id == "mods"
    assert channel.limits == Limits(user_daily_tokens=1000)

    elsewhere = tree.resolve(Scope("other", None, "x", "aria"))
    assert elsewhere.trigger == TriggerSettings(follow_up_seconds=30)
    assert elsewhere.moderation.on_blocked_input is ModerationAction.NOTICE
    mara = tree.resolve(Scope("other", None, "x", "mara"))
    assert mara.limits.in_character_notice
    assert tree.chat_characters[("console", "room-1")] == ("bram", "mara")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "trigger:\n  anser_all: true\n",
            "troupe.yaml:2: trigger.anser_all: unknown field; did you mean 'answer_all'?",
        ),
        (
            "limits:\n  user_daily_tokens: -5\n",
            "troupe.yaml:2: limits.user_daily_tokens: input should be greater than or equal to 0",
        ),
        (
            "platforms:\n  slack: {}\n",
            "troupe.yaml:2: platforms.slack: input should be 'discord', 'telegram' or 'console'",
        ),
        (
            "platforms:\n  discord:\n    servers:\n      '1':\n        channels:\n"
            "          '2': {characters: [nobody]}\n",
            "troupe.yaml:6: platforms.discord.servers.1.channels.2.characters.0: no character",
        ),
        (
            "moderation:\n  on_blocked_output: shout\n",
            "troupe.yaml:2: moderation.on_blocked_output: input should be 'in_character', 'notice'",
        ),
        (
            "trigger:\n  scene_turns: 0\n",
            "troupe.yaml:2: trigger.scene_turns: input should be greater than or equal to 1",
        ),
        ("trigger: [1, 2]\n", "troupe.yaml:1: trigger: "),
        ("trigger:\n\tanswer_all: true\n", "troupe.yaml:2: "),
    ],
)
def test_mistakes_name_the_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_config_file(write_config(tmp_path, text), character_ids={"aria"})
    shown = [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]
    assert any(line.startswith(expected) for line in shown), shown


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = "trigger:\n  anser_all: true\nlimits:\n  chat_daily_tokens: lots\n"
    with pytest.raises(ConfigFileError) as caught:
        load_config_file(write_config(tmp_path, text))
    assert [p.line for p in caught.value.problems] == [2, 4]


async def test_the_file_shapes_a_chat_and_admins_win_over_it(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    tree = tree_from(tmp_path)
    engine = await make_engine(ManagerSettings(default_character="aria", policy=tree))
    key = ConversationKey("console", "room-1")
    # The channel starts with the file's characters, and answers everything.
    outcome = await engine.manager.handle(
        said("chatting along", is_direct=False, server_id="guild-1", key=key), RecordingSink()
    )
    assert outcome.status is TurnStatus.ANSWERED
    assert [c.id for c in await engine.manager.scene(key)] == ["bram", "mara"]
    assert (await engine.manager.policies.chat_settings(key)).answer_all

    await engine.manager.policies.set_chat_settings(key, TriggerSettings(answer_all=False))
    quiet = await engine.manager.handle(
        said("more chatting", author="ann", is_direct=False, server_id="guild-1", key=key),
        RecordingSink(),
    )
    assert quiet.status is TurnStatus.IGNORED
    server = await engine.manager.policies.server_settings("console", "guild-1")
    assert server.moderators_chat_id == "mods"


async def test_daily_token_budgets_stop_a_user_until_tomorrow(make_engine: EngineFactory) -> None:
    tree = PolicyTree(ChatPolicy(limits=Limits(user_daily_tokens=1)))
    engine = await make_engine(
        ManagerSettings(default_character="aria", policy=tree, cache_seconds=0)
    )
    engine.fake.stream_variant = StreamVariant.RICH
    assert (await engine.manager.handle(said("first"), RecordingSink())).status is (
        TurnStatus.ANSWERED
    )
    sink = RecordingSink()
    assert (await engine.manager.handle(said("second"), sink)).status is TurnStatus.LIMITED
    assert "today's allowance of 1 tokens" in sink.of("notice")[0]
    assert len(engine.fake.requests) == 1
    # Another user still has their own budget; an admin is never limited.
    assert (await engine.manager.handle(said("hi", author="ann"), RecordingSink())).status is (
        TurnStatus.ANSWERED
    )
    admin = said("let me", author_is_admin=True)
    assert (await engine.manager.handle(admin, RecordingSink())).status is TurnStatus.ANSWERED


@pytest.mark.parametrize(
    ("limits", "server_id"),
    [
        (Limits(chat_daily_tokens=1), None),
        (Limits(server_daily_tokens=1), "guild-9"),
    ],
)
async def test_chat_and_server_budgets_stop_everyone_there(
    make_engine: EngineFactory, limits: Limits, server_id: str | None
) -> None:
    engine = await make_engine(
        ManagerSettings(
            default_character="aria", policy=PolicyTree(ChatPolicy(limits=limits)), cache_seconds=0
        )
    )
    await engine.manager.handle(said("first", server_id=server_id), RecordingSink())
    refused = await engine.manager.handle(
        said("second", author="ann", server_id=server_id), RecordingSink()
    )
    assert refused.status is TurnStatus.LIMITED
    other = ConversationKey("test", "room-2")
    elsewhere = await engine.manager.handle(said("hi", key=other), RecordingSink())
    # Another chat has its own chat budget; with a server budget, a chat outside it too.
    assert elsewhere.status is TurnStatus.ANSWERED


async def test_the_rate_limit_counts_a_minute_and_can_speak_in_character(
    make_engine: EngineFactory,
) -> None:
    limits = Limits(user_messages_per_minute=2, in_character_notice=True)
    engine = await make_engine(
        ManagerSettings(default_character="aria", policy=PolicyTree(ChatPolicy(limits=limits)))
    )
    statuses = [
        (await engine.manager.handle(said(f"m{n}"), RecordingSink())).status for n in range(2)
    ]
    assert statuses == [TurnStatus.ANSWERED] * 2
    sink = RecordingSink()
    assert (await engine.manager.handle(said("m3"), sink)).status is TurnStatus.LIMITED
    aria = engine.characters.get("aria")
    assert sink.of("finish") == [aria.render(aria.limit_reply, user="Sam")]
    assert sink.of("notice") == []
