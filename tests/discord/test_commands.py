"""Slash commands: every command, its permission check, autocomplete and confirm buttons."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bot.conversation.commands.moderation import COOLDOWN_AFTER
from bot.conversation.commands.triggers import BOT_TURNS_IN_A_ROW, FOLLOW_UP_SECONDS
from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ManagerSettings
from bot.conversation.moderation import ModerationAction
from bot.llm.fake import FakeM2Her
from bot.platforms.discord.admin import channel_group, moderation_group
from bot.platforms.discord.checks import NOT_ADMIN
from bot.platforms.discord.views import CANCEL_ID, CONFIRM_ID
from tests.discord.conftest import (
    Bot,
    Harness,
    World,
    command,
    eventually,
    final_reply,
)
from tests.standins.discord import CallbackType, CommandNotAvailable, DiscordStandIn, Permission


def key(channel) -> ConversationKey:
    return ConversationKey("discord", str(channel.id))


async def test_commands_are_synced_globally_with_the_expected_names(
    standin: DiscordStandIn, bot: Bot
):
    names = {c["name"] for c in standin.world.application.global_commands}
    assert names == {
        "character",
        "persona",
        "memory",
        "channel",
        "moderation",
        "nudges",
        "reset",
        "forget-me",
        "usage",
    }
    channel_cmd = next(
        c for c in standin.world.application.global_commands if c["name"] == "channel"
    )
    assert channel_cmd.get("dm_permission") is False or channel_cmd.get("contexts") == [0]


async def test_character_set_binds_for_admins_and_the_new_character_answers(
    standin: DiscordStandIn, world: World, bot: Bot
):
    answered = await command(standin, world.general, world.owner, "character set", {"name": "bram"})
    assert answered.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert answered.original.content == "Now talking to Bram Oakbarrel."
    assert not answered.original.ephemeral
    assert (await bot.manager.character_for(key(world.general))).id == "bram"

    asked = await standin.user_says(world.general, world.alice, "an ale", mentions=[standin.bot])
    reply = await final_reply(standin, world.general, asked)
    assert reply.author.username == "Bram Oakbarrel"
    assert reply.content.startswith("Bram Oakbarrel heard Alice")


async def test_members_without_manage_server_are_refused_binding(
    standin: DiscordStandIn, world: World, bot: Bot
):
    for sub in ("set", "add", "remove"):
        refused = await command(
            standin, world.general, world.alice, f"character {sub}", {"name": "bram"}
        )
        assert refused.original.content == NOT_ADMIN
        assert refused.original.ephemeral
    assert await bot.manager.scene(key(world.general)) == [bot.manager.characters.get("aria")]
    refused = await command(standin, world.general, world.alice, "reset")
    assert refused.original.content == NOT_ADMIN


async def test_a_configured_admin_role_grants_admin_commands(
    standin: DiscordStandIn, world: World, bot: Bot
):
    keepers = standin.create_role(world.guild, "Keepers", Permission(0))
    refused = await command(
        standin, world.general, world.alice, "moderation admin-role", {"role": keepers}
    )
    assert refused.original.content == NOT_ADMIN
    chosen = await command(
        standin, world.general, world.owner, "moderation admin-role", {"role": keepers}
    )
    assert chosen.original.content == f"Members with <@&{keepers.id}> may use admin commands."
    standin.set_member_roles(world.guild, world.alice, [keepers])
    allowed = await command(standin, world.general, world.alice, "character set", {"name": "mara"})
    assert allowed.original.content == "Now talking to Mara Quill."


async def test_manage_server_role_is_enough(standin: DiscordStandIn, world: World, bot: Bot):
    mods = standin.create_role(world.guild, "Mods", Permission.MANAGE_GUILD)
    standin.set_member_roles(world.guild, world.alice, [mods])
    allowed = await command(standin, world.general, world.alice, "character set", {"name": "Aria"})
    assert allowed.original.content == "Now talking to Aria."


async def test_autocomplete_suggests_characters_by_name_and_nickname(
    standin: DiscordStandIn, world: World, bot: Bot
):
    typing = await standin.autocomplete(
        world.general, world.alice, "character set", {"name": "bar"}, focused="name"
    )
    await standin.wait_for_response(typing)
    assert [c["value"] for c in typing.choices] == ["bram"]  # "barkeep"
    typing = await standin.autocomplete(
        world.general, world.alice, "character add", {"name": "a"}, focused="name"
    )
    await standin.wait_for_response(typing)
    # Names starting with what was typed first, then names containing it.
    assert [c["value"] for c in typing.choices] == ["aria", "bram", "mara"]
    typing = await standin.autocomplete(
        world.general, world.alice, "character info", {"name": ""}, focused="name"
    )
    await standin.wait_for_response(typing)
    assert {c["name"] for c in typing.choices} == {"Aria", "Bram Oakbarrel", "Mara Quill", "Velvet"}


async def test_unknown_names_get_a_did_you_mean(standin: DiscordStandIn, world: World, bot: Bot):
    answered = await command(standin, world.general, world.owner, "character set", {"name": "Brma"})
    assert "did you mean 'bram'?" in answered.original.content
    assert answered.original.ephemeral


async def test_nsfw_characters_only_in_age_restricted_channels(
    standin: DiscordStandIn, world: World, bot: Bot
):
    refused = await command(
        standin, world.general, world.owner, "character set", {"name": "velvet"}
    )
    assert "age-restricted" in refused.original.content
    assert (await bot.manager.character_for(key(world.general))).id == "aria"
    refused = await command(
        standin, world.general, world.owner, "character add", {"name": "velvet"}
    )
    assert "age-restricted" in refused.original.content

    lounge = standin.create_text_channel(world.guild, "lounge", nsfw=True)
    await standin.wait_for(lambda: bot.client.get_channel(lounge.id) is not None)
    allowed = await command(standin, lounge, world.owner, "character set", {"name": "velvet"})
    assert allowed.original.content == "Now talking to Velvet."
    thread = standin.create_thread(lounge, "after hours")
    await standin.wait_for(lambda: bot.client.get_channel(thread.id) is not None)
    in_thread = await command(standin, thread, world.owner, "character set", {"name": "velvet"})
    assert in_thread.original.content == "Now talking to Velvet."


async def test_scene_add_remove_list_and_info(standin: DiscordStandIn, world: World, bot: Bot):
    added = await command(standin, world.general, world.owner, "character add", {"name": "bram"})
    assert added.original.content == "Bram Oakbarrel joins the scene."
    listed = await command(standin, world.general, world.alice, "character list")
    assert listed.original.content.startswith(
        "Main character: Aria. Also in the scene: Bram Oakbarrel."
    )
    assert "Mara Quill" in listed.original.content
    main = await command(standin, world.general, world.owner, "character remove", {"name": "aria"})
    assert "main character" in main.original.content
    removed = await command(
        standin, world.general, world.owner, "character remove", {"name": "bram"}
    )
    assert removed.original.content == "Bram Oakbarrel leaves the scene."
    info = await command(standin, world.general, world.alice, "character info")
    assert info.original.content.startswith("**Aria**\nAlso answers to: Ari, the archivist")
    info = await command(standin, world.general, world.alice, "character info", {"name": "mara"})
    assert info.original.content.startswith("**Mara Quill**")


async def test_reset_asks_first_and_forgets_on_confirm(
    standin: DiscordStandIn, world: World, bot: Bot
):
    asked = await standin.user_says(
        world.general, world.alice, "remember me", mentions=[standin.bot]
    )
    await final_reply(standin, world.general, asked)
    conversation = await bot.storage.conversation(
        "discord", str(world.general.id), default_character="aria"
    )

    async def both_stored() -> bool:
        # The final text is visible a moment before the turn has stored the reply.
        return len(await bot.storage.history_window(conversation.id, 10)) == 2

    await eventually(both_stored)

    prompt = await command(standin, world.general, world.owner, "reset")
    assert prompt.original.ephemeral
    cancelled = await standin.click(prompt.original, world.owner, CANCEL_ID)
    await standin.wait_for_response(cancelled)
    assert prompt.original.content == "Cancelled; nothing was changed."
    assert len(await bot.storage.history_window(conversation.id, 10)) == 2

    prompt = await command(standin, world.general, world.owner, "reset")
    confirmed = await standin.click(prompt.original, world.owner, CONFIRM_ID)
    await standin.wait_for_response(confirmed)
    assert prompt.original.content == "Conversation reset (2 messages forgotten)."
    assert prompt.original.components == []
    assert await bot.storage.history_window(conversation.id, 10) == []


async def test_persona_set_show_clear_reaches_the_model(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    done = await command(
        standin, world.general, world.alice, "persona set", {"text": "a bard with a lute"}
    )
    assert done.original.ephemeral
    shown = await command(standin, world.general, world.alice, "persona show")
    assert shown.original.content == "Your persona: a bard with a lute"

    asked = await standin.user_says(world.general, world.alice, "a song?", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    messages = fake_m2her.requests[-1].body["messages"]
    personas = [m["content"] for m in messages if m["role"] == "user_system"]
    assert personas == ["a bard with a lute"]

    await command(standin, world.general, world.alice, "persona clear")
    shown = await command(standin, world.general, world.alice, "persona show")
    assert shown.original.content == "You have no persona set."


async def test_forget_me_erases_the_user_after_confirming(
    standin: DiscordStandIn, world: World, bot: Bot
):
    await command(standin, world.general, world.alice, "persona set", {"text": "a spy"})
    asked = await standin.user_says(world.general, world.alice, "psst", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    prompt = await command(standin, world.general, world.alice, "forget-me")
    intruder = await standin.click(prompt.original, world.owner, CONFIRM_ID)
    await standin.wait_for_response(intruder)
    assert intruder.original is not None
    assert intruder.original.content == "Only the person who asked can answer this."
    assert await bot.manager.users.persona("discord", str(world.alice.id)) == "a spy"

    confirmed = await standin.click(prompt.original, world.alice, CONFIRM_ID)
    await standin.wait_for_response(confirmed)
    assert prompt.original.content.startswith("Erased 2 messages, 1 persona, 1 usage record")
    assert await bot.manager.users.persona("discord", str(world.alice.id)) is None


async def test_usage_reports_user_channel_and_server(
    standin: DiscordStandIn, world: World, bot: Bot
):
    empty = await command(standin, world.general, world.alice, "usage")
    assert empty.original.content.startswith("You: 0 tokens in 0 replies")
    asked = await standin.user_says(world.general, world.alice, "count", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)

    async def recorded() -> bool:
        return (await bot.manager.users.usage("discord", chat_id=str(world.general.id))).calls == 1

    await eventually(recorded)
    used = await command(standin, world.general, world.alice, "usage")
    lines = used.original.content.split("\n")
    assert [line.split(":")[0] for line in lines] == ["You", "This channel", "This server"]
    assert all(" in 1 reply (≈ $" in line for line in lines)
    assert all(not line.split(": ")[1].startswith("0 tokens") for line in lines)


async def test_channel_triggers_for_admins_answer_all(
    standin: DiscordStandIn, world: World, bot: Bot
):
    refused = await command(
        standin, world.general, world.alice, "channel triggers", {"answer_all": True}
    )
    assert refused.original.content == NOT_ADMIN
    shown = await command(
        standin,
        world.general,
        world.owner,
        "channel triggers",
        {
            "answer_all": True,
            "allow_bots": True,
            "max_bot_turns": 2,
            "scene_turns": 3,
            "scene_pause_seconds": 1.5,
        },
    )
    assert shown.original.content.startswith("Answers every message.")
    assert "at most 2 in a row" in shown.original.content
    assert "In a scene, one message leads to at most 3 character turns." in shown.original.content
    assert "Characters wait 1.5 s before answering each other." in shown.original.content
    settings = await bot.manager.policies.chat_settings(key(world.general))
    assert (settings.answer_all, settings.allow_bots, settings.max_consecutive_bot_turns) == (
        True,
        True,
        2,
    )
    assert (settings.scene_turns, settings.scene_pause_seconds) == (3, 1.5)
    said = await standin.user_says(world.general, world.alice, "just chatting")
    await final_reply(standin, world.general, said)


async def test_moderation_commands_are_server_only_and_admin_only(
    standin: DiscordStandIn, world: World, bot: Bot
):
    refused = await command(
        standin, world.general, world.alice, "moderation policy", {"on_blocked_output": "silent"}
    )
    assert refused.original.content == NOT_ADMIN
    mods = standin.create_text_channel(world.guild, "mods")
    await standin.wait_for(lambda: bot.client.get_channel(mods.id) is not None)
    chosen = await command(
        standin, world.general, world.owner, "moderation channel", {"channel": mods}
    )
    assert chosen.original.content == f"Moderation events go to <#{mods.id}>."
    policy = await command(
        standin,
        world.general,
        world.owner,
        "moderation policy",
        {"on_blocked_output": "silent", "cooldown_after": 0},
    )
    assert "Blocked replies: silent." in policy.original.content
    assert f"<#{mods.id}>" in policy.original.content
    settings = await bot.manager.policies.server_settings("discord", str(world.guild.id))
    assert settings.moderation.on_blocked_output is ModerationAction.SILENT
    assert settings.moderation.cooldown_after == 0
    assert settings.moderators_chat_id == str(mods.id)
    empty = await command(standin, world.general, world.owner, "moderation log")
    assert empty.original.content == "No moderation events here."

    dm = standin.open_dm(world.alice)
    with pytest.raises(CommandNotAvailable):
        await standin.invoke_command(dm, world.alice, "moderation log")


async def test_in_a_direct_message_everyone_manages_their_own_conversation(
    standin: DiscordStandIn, world: World, bot: Bot
):
    dm = standin.open_dm(world.alice)
    bound = await command(standin, dm, world.alice, "character set", {"name": "mara"})
    assert bound.original.content == "Now talking to Mara Quill."
    # Mara greets the new conversation: the reset forgets it too.
    await standin.wait_for_message(dm, after=bound.original)
    asked = await standin.user_says(dm, world.alice, "a case for you")
    reply = await final_reply(standin, dm, asked)
    assert reply.content.startswith("**Mara Quill**\n")
    prompt = await command(standin, dm, world.alice, "reset")
    confirmed = await standin.click(prompt.original, world.alice, CONFIRM_ID)
    await standin.wait_for_response(confirmed)
    assert prompt.original.content == "Conversation reset (3 messages forgotten)."
    used = await command(standin, dm, world.alice, "usage")
    assert [line.split(":")[0] for line in used.original.content.split("\n")] == [
        "You",
        "This channel",
    ]


async def test_the_questions_buttons_say_what_they_do(
    standin: DiscordStandIn, world: World, bot: Bot
):
    def labels(message) -> list[str]:
        return [button["label"] for row in message.components for button in row["components"]]

    prompt = await command(standin, world.general, world.owner, "reset")
    assert prompt.original.content == (
        "Forget this whole conversation with Aria? This cannot be undone."
    )
    assert labels(prompt.original) == ["Yes, reset", "Cancel"]
    prompt = await command(standin, world.general, world.alice, "forget-me")
    assert prompt.original.content.startswith("Erase everything stored about you")
    assert labels(prompt.original) == ["Yes, erase", "Cancel"]


def test_discord_offers_the_command_layers_ranges() -> None:
    def bounds(group: Any, command: str, option: str) -> tuple[float | None, float | None]:
        [parameter] = [p for p in group.get_command(command).parameters if p.name == option]
        return parameter.min_value, parameter.max_value

    channel, moderation = channel_group(cast(Any, None)), moderation_group(cast(Any, None))
    assert bounds(channel, "triggers", "max_bot_turns") == BOT_TURNS_IN_A_ROW
    assert bounds(channel, "triggers", "follow_up_seconds") == FOLLOW_UP_SECONDS
    assert bounds(moderation, "policy", "cooldown_after") == COOLDOWN_AFTER


async def test_memory_show_fix_and_forget(standin: DiscordStandIn, world: World, harness: Harness):
    bot = await harness.start(ManagerSettings(default_character="aria", history_limit=4))
    nothing = await command(standin, world.general, world.alice, "memory show")
    assert nothing.original.content == "Aria remembers nothing beyond the conversation itself yet."
    assert nothing.original.ephemeral
    for text in ("I'm a baker, call me Al.", "two", "three"):
        asked = await standin.user_says(world.general, world.alice, text, mentions=[standin.bot])
        await final_reply(standin, world.general, asked)
    assert await bot.manager.drain(5)  # the turn ends after its reply is shown
    await bot.manager.recall.settled()

    shown = await command(standin, world.general, world.alice, "memory show")
    assert shown.original.content.startswith("What Aria remembers of the story so far:\n1. ")
    assert "What Aria knows about you:\n2. is a baker\n3. wants to be called Al\n" in (
        shown.original.content
    )
    refused = await command(standin, world.general, world.alice, "memory forget", {"item": 1})
    assert refused.original.content == NOT_ADMIN
    fixed = await command(
        standin, world.general, world.alice, "memory fix", {"item": 2, "text": "is a pastry chef"}
    )
    assert fixed.original.content == "Item 2 now reads: is a pastry chef"
    gone = await command(standin, world.general, world.owner, "memory forget", {"item": 1})
    assert gone.original.content == "Aria no longer remembers item 1."
    shown = await command(standin, world.general, world.alice, "memory show")
    assert shown.original.content.startswith(
        "What Aria knows about you:\n1. is a pastry chef\n2. wants to be called Al\n"
    )
    missing = await command(standin, world.general, world.alice, "memory forget", {"item": 9})
    assert missing.original.content == "There is no item 9; /memory lists them."
