"""The command layer every platform maps its UI onto: its rules, limit and wordings, and the
refusals it raises by type."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.characters.loader import CharacterLoadError, UnknownCharacter
from bot.conversation import commands
from bot.conversation.commands import PERSONA_MAX, Caller
from bot.conversation.moderation import ModerationAction
from bot.conversation.settings import ServerSettings
from bot.conversation.trigger import TriggerSettings
from bot.errors import (
    BadCommandWords,
    MainCharacterStays,
    NotAllowed,
    PersonaTooLong,
    Refusal,
    TroupeError,
)
from bot.llm.errors import M2HerError
from bot.storage import NewModerationEvent, StorageError
from tests.conversation.conftest import KEY, Engine, RecordingSink, said


def admin() -> Caller:
    return Caller(KEY, "sam")


def member() -> Caller:
    async def no() -> bool:
        return False

    return Caller(KEY, "bob", no, "Only the keepers can do that.")


class Mentions:
    def chat(self, chat_id: str) -> str | None:
        return None if chat_id == KEY.chat_id else f"#{chat_id}"

    def user(self, user_id: str) -> str:
        return f"@{user_id}"

    def time(self, when: datetime) -> str:
        return f"{when:%H:%M}"


def test_every_error_troupe_raises_has_one_root() -> None:
    for error in (StorageError, M2HerError, CharacterLoadError, UnknownCharacter, Refusal):
        assert issubclass(error, TroupeError)
    # Still a KeyError for the lookups that expect one.
    assert issubclass(UnknownCharacter, KeyError)
    for refusal in (NotAllowed, PersonaTooLong, MainCharacterStays, BadCommandWords):
        assert issubclass(refusal, Refusal)


async def test_persona_show_set_clear_in_one_wording(engine: Engine) -> None:
    manager, caller = engine.manager, admin()
    assert await commands.show_persona(manager, caller) == "You have no persona set."
    done = await commands.set_persona(manager, caller, "  a courier  ")
    assert done == "Persona set. The characters will know you as: a courier"
    assert await manager.users.persona("test", "sam") == "a courier"
    assert await commands.show_persona(manager, caller) == "Your persona: a courier"
    assert await commands.clear_persona(manager, caller) == "Persona cleared."
    assert await manager.users.persona("test", "sam") is None


async def test_the_text_form_shows_clears_or_sets(engine: Engine) -> None:
    manager, caller = engine.manager, admin()
    assert await commands.persona_command(manager, caller, " ") == "You have no persona set."
    await commands.persona_command(manager, caller, "Clearance officer")
    assert await manager.users.persona("test", "sam") == "Clearance officer"
    assert await commands.persona_command(manager, caller, "CLEAR") == "Persona cleared."
    assert await manager.users.persona("test", "sam") is None


async def test_one_persona_limit_for_every_platform(engine: Engine) -> None:
    manager, caller = engine.manager, admin()
    await commands.set_persona(manager, caller, "x" * PERSONA_MAX)
    with pytest.raises(PersonaTooLong, match="at most 1000 characters; this one has 1001"):
        await commands.persona_command(manager, caller, "y" * (PERSONA_MAX + 1))
    assert await manager.users.persona("test", "sam") == "x" * PERSONA_MAX


async def test_the_character_menu(engine: Engine) -> None:
    manager, caller = engine.manager, admin()
    assert await commands.describe_scene(manager, caller) == (
        "Main character: Aria.\nAvailable: Bram Oakbarrel, Mara Quill."
    )
    assert await commands.join_scene(manager, caller, "bram") == "Bram Oakbarrel joins the scene."
    assert await commands.describe_scene(manager, caller) == (
        "Main character: Aria. Also in the scene: Bram Oakbarrel.\nAvailable: Mara Quill."
    )
    with pytest.raises(MainCharacterStays, match="Aria is the main character here"):
        await commands.leave_scene(manager, caller, "Aria")
    assert await commands.toggle_in_scene(manager, caller, "bram") == (
        "Bram Oakbarrel leaves the scene."
    )
    assert await commands.make_main(manager, caller, "Mara Quill") == "Now talking to Mara Quill."
    assert [c.id for c in await manager.scene(KEY)] == ["mara"]
    with pytest.raises(UnknownCharacter, match="did you mean 'bram'"):
        await commands.make_main(manager, caller, "bramm")


async def test_a_platform_may_keep_a_character_out(engine: Engine) -> None:
    def no_barkeeps(character: object) -> None:
        raise Refusal("No barkeeps here.")

    with pytest.raises(Refusal, match="No barkeeps"):
        await commands.make_main(engine.manager, admin(), "bram", no_barkeeps)
    with pytest.raises(Refusal, match="No barkeeps"):
        await commands.join_scene(engine.manager, admin(), "bram", no_barkeeps)
    assert [c.id for c in await engine.manager.scene(KEY)] == ["aria"]


async def test_admin_commands_refuse_others_in_the_platforms_words(engine: Engine) -> None:
    manager = engine.manager
    refused = [
        commands.make_main(manager, member(), "bram"),
        commands.join_scene(manager, member(), "bram"),
        commands.leave_scene(manager, member(), "bram"),
        commands.toggle_in_scene(manager, member(), "nobody"),
        commands.ask_reset(manager, member()),
        commands.reset(manager, member()),
        commands.chat_triggers(manager, member()),
        commands.moderation_settings(manager, member(), "server-1"),
        commands.describe_events(manager, member(), Mentions(), limit=5),
    ]
    for attempt in refused:
        with pytest.raises(NotAllowed, match=r"^Only the keepers can do that\.$"):
            await attempt
    assert [c.id for c in await manager.scene(KEY)] == ["aria"]


async def test_admin_rights_are_asked_once_per_command() -> None:
    asked = 0

    async def ask() -> bool:
        nonlocal asked
        asked += 1
        return True

    caller = Caller(KEY, "sam", ask)
    await caller.require_admin()
    await caller.require_admin()
    assert asked == 1


async def test_reset_asks_then_forgets_with_a_count(engine: Engine) -> None:
    manager, caller = engine.manager, admin()
    await manager.handle(said("hello"), RecordingSink())
    question = await commands.ask_reset(manager, caller)
    assert question.text == "Forget this whole conversation with Aria? This cannot be undone."
    assert question.confirm == "Yes, reset"
    assert await commands.reset(manager, caller) == "Conversation reset (2 messages forgotten)."
    assert await commands.reset(manager, caller) == "Conversation reset (0 messages forgotten)."


async def test_forget_names_everything_it_erased(engine: Engine) -> None:
    manager, caller = engine.manager, admin()
    await commands.set_persona(manager, caller, "a spy")
    await manager.handle(said("psst"), RecordingSink())
    assert await commands.forget(manager, caller) == (
        "Erased 2 messages, 1 persona, 1 usage record and 0 moderation records about you."
    )
    assert await manager.users.persona("test", "sam") is None


async def test_usage_in_one_wording_with_the_platforms_noun(engine: Engine) -> None:
    manager, caller = engine.manager, admin()
    await manager.handle(said("count me"), RecordingSink())
    text = await commands.describe_usage(manager, caller, chat_noun="room", server_id="guild")
    you, room, server = text.split("\n")
    assert you.startswith("You: ")
    assert room.startswith("This room: ")
    assert " in 1 reply (≈ $" in you
    assert " in 1 reply (≈ $" in room
    assert server == "This server: 0 tokens in 0 replies (≈ $0.0000)"
    assert "This server" not in await commands.describe_usage(manager, caller, chat_noun="room")


def test_moderation_words_change_the_policy() -> None:
    settings = ServerSettings()
    changed = commands.change_from_words(settings, ["OUTPUT", "silent"], here="-100")
    assert changed.moderation.on_blocked_output is ModerationAction.SILENT
    changed = commands.change_from_words(changed, ["input", "in_character"], here="-100")
    assert changed.moderation.on_blocked_input is ModerationAction.IN_CHARACTER
    assert changed.moderation.on_blocked_output is ModerationAction.SILENT
    here = commands.change_from_words(settings, ["report", "here"], here="-100")
    assert here.moderators_chat_id == "-100"
    there = commands.change_from_words(settings, ["report", "-42"], here="-100")
    assert there.moderators_chat_id == "-42"
    off = commands.change_from_words(there, ["report", "off"], here="-100")
    assert off.moderators_chat_id is None
    for words in (["input", "sometimes"], ["report", "there"], ["volume", "11"], ["output"]):
        with pytest.raises(BadCommandWords, match=r"^Usage: /moderation input\|output"):
            commands.change_from_words(settings, words, here="-100")


def test_the_cool_down_is_set_in_words_within_one_range() -> None:
    settings = ServerSettings()
    changed = commands.change_from_words(settings, ["cooldown", "3"], here="-100")
    assert changed.moderation.cooldown_after == 3
    never = commands.change_from_words(changed, ["COOLDOWN", "0"], here="-100")
    assert never.moderation.cooldown_after == 0
    for words in (["cooldown", "101"], ["cooldown", "-1"], ["cooldown", "often"]):
        with pytest.raises(BadCommandWords, match=r"cooldown FLAGS \(0-100, 0: never\)"):
            commands.change_from_words(settings, words, here="-100")


def test_the_policy_in_plain_words() -> None:
    settings = ServerSettings()
    assert commands.describe_policy(settings, Mentions()).splitlines() == [
        "Blocked messages: notice. Blocked replies: in_character.",
        "Cool-down: after 3 flags within 60 minutes.",
        "Moderation events are not reported.",
    ]
    quiet = commands.change_policy(
        settings, on_blocked_output=ModerationAction.SILENT, cooldown_after=0
    )
    reported = commands.report_to(quiet, "mods")
    assert commands.describe_policy(reported, Mentions()).splitlines() == [
        "Blocked messages: notice. Blocked replies: silent.",
        "Cool-down: off.",
        "Moderation events go to #mods.",
    ]
    here = commands.report_to(settings, KEY.chat_id)
    assert commands.describe_report_chat(here, Mentions()) == "Moderation events go to this chat."


async def test_moderation_settings_are_stored_only_when_changed(engine: Engine) -> None:
    manager, caller = engine.manager, admin()
    await commands.moderation_settings(manager, caller, "server-1")
    assert await engine.storage.get_settings("test", "server", "server-1") == {}
    await commands.moderation_settings(
        manager, caller, "server-1", lambda s: commands.report_to(s, "mods")
    )
    assert (await manager.policies.server_settings("test", "server-1")).moderators_chat_id == "mods"


async def test_recent_events_without_their_content(engine: Engine) -> None:
    manager, caller = engine.manager, admin()
    assert await commands.describe_events(manager, caller, Mentions(), limit=5) == (
        "No moderation events here."
    )
    conversation = await engine.storage.conversation("test", KEY.chat_id, default_character="aria")
    elsewhere = await engine.storage.conversation("test", "room-2", default_character="aria")
    await engine.storage.record_moderation_event(
        NewModerationEvent(conversation.id, "test", KEY.chat_id, "bob", "input", 5, "abuse")
    )
    await engine.storage.record_moderation_event(
        NewModerationEvent(elsewhere.id, "test", "room-2", "bob", "output", 2, "pornography")
    )
    lines = (await commands.describe_events(manager, caller, Mentions(), limit=5)).splitlines()
    assert lines[0] == "Recent events:"
    assert [line.split(": ", 1)[1] for line in lines[1:]] == [
        "a reply by @bob was flagged as pornography.",
        "a message by @bob was flagged as abuse.",
    ]
    assert lines[1].split(": ")[0].endswith(" in #room-2")
    assert " in " not in lines[2].split(": ")[0]  # this chat goes without saying
    only_here = await commands.describe_events(
        manager, caller, Mentions(), limit=5, among={KEY.chat_id}
    )
    assert only_here.splitlines()[1:] == [lines[2]]


DEFAULTS = TriggerSettings()


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["answer_all", "on"], TriggerSettings(answer_all=True)),
        (["ANSWER_ALL", "Off"], TriggerSettings(answer_all=False)),
        (["follow_up", "30"], TriggerSettings(follow_up_seconds=30)),
        (["random", "0.25"], TriggerSettings(random_chance=0.25)),
        (["random", "0.1", "60"], TriggerSettings(random_chance=0.1, random_half_life_seconds=60)),
        (["bots", "on"], TriggerSettings(allow_bots=True)),
        (["bots", "on", "2"], TriggerSettings(allow_bots=True, max_consecutive_bot_turns=2)),
        (["scene_turns", "4"], TriggerSettings(scene_turns=4)),
        (["scene_turns", "1"], TriggerSettings(scene_turns=1)),
        (["scene_pause", "0.5"], TriggerSettings(scene_pause_seconds=0.5)),
    ],
)
def test_words_change_one_rule(words: list[str], expected: TriggerSettings) -> None:
    assert commands.change_triggers(DEFAULTS, words) == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([], "Say what to change"),
        (["answer_all", "maybe"], "'maybe' is not on or off"),
        (["follow_up", "soon"], "'soon' is not a number"),
        (["follow_up", "7200"], "7200 is not between 0 and 3600"),
        (["random", "2"], "2 is not between 0 and 1"),
        (["bots", "on", "50"], "50 is not between 1 and 20"),
        (["scene_turns", "0"], "0 is not between 1 and 10"),
        (["scene_turns", "many"], "'many' is not a number"),
        (["scene_pause", "120"], "120 is not between 0 and 60"),
        (["volume", "11"], "Unknown setting 'volume 11'"),
    ],
)
def test_wrong_words_say_what_is_wrong(words: list[str], message: str) -> None:
    with pytest.raises(BadCommandWords, match=message):
        commands.change_triggers(DEFAULTS, words)


def test_the_rules_in_plain_words() -> None:
    assert commands.describe_triggers(DEFAULTS).splitlines() == [
        "Answers when addressed.",
        "Follow-up window: 90 s.",
        "Never joins in uninvited.",
        "Ignores other bots.",
        "In a scene, one message leads to at most 2 character turns.",
        "Characters wait 2 s before answering each other.",
    ]
    busy = TriggerSettings(answer_all=True, random_chance=0.2, allow_bots=True, scene_turns=1)
    assert commands.describe_triggers(busy).splitlines() == [
        "Answers every message.",
        "Follow-up window: 90 s.",
        "Random chance to join in: 20%, halving every 600 s.",
        "Answers other bots, at most 3 in a row.",
        "In a scene, characters do not answer each other.",
    ]
