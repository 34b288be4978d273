"""Messages in, characters' replies out: the trigger facts the adapter supplies, posting."""

from __future__ import annotations

from bot.conversation.trigger import TriggerSettings
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Reply
from bot.platforms.discord.events import conversation_key as conversation_key_of
from bot.platforms.discord.sink import WEBHOOK_TIP
from tests.discord.conftest import Bot, Harness, World, eventually, final_reply
from tests.standins.discord import (
    DEFAULT_EVERYONE_PERMISSIONS,
    DiscordStandIn,
    Message,
    Permission,
)


async def test_a_mention_gets_a_reply_through_the_channel_webhook(
    standin: DiscordStandIn, world: World, bot: Bot
):
    asked = await standin.user_says(
        world.general, world.alice, "hello there", mentions=[standin.bot]
    )
    reply = await standin.wait_for_message(world.general, after=asked)
    assert reply.webhook_id is not None
    assert reply.author.username == "Aria"
    assert "hello there" in reply.content
    assert not reply.pings
    assert all(url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:")) for url in bot.seen_urls)


async def answered_in_order(standin: DiscordStandIn, channel, user, bot_user) -> None:
    """Mention the bot and wait for the answer: everything said before has been handled."""
    asked = await standin.user_says(channel, user, "still there?", mentions=[bot_user])
    await final_reply(standin, channel, asked)


def replies_to(standin: DiscordStandIn, channel, text: str) -> list[Message]:
    return [m for m in standin.bot_messages(channel) if f"“{text}”" in m.content]


async def test_a_direct_message_is_answered_by_the_bot_with_the_name_in_bold(
    standin: DiscordStandIn, world: World, bot: Bot
):
    dm = standin.open_dm(world.alice)
    asked = await standin.user_says(dm, world.alice, "just us")
    reply = await final_reply(standin, dm, asked)
    assert reply.webhook_id is None
    assert reply.author.id == standin.bot.id
    assert reply.content.startswith("**Aria**\nAria heard Alice: “just us”")


async def test_mentioning_the_bots_role_counts_as_mentioning_the_bot(
    standin: DiscordStandIn, world: World, bot: Bot
):
    role = next(r for r in world.guild.roles.values() if r.bot_id == standin.bot.id)
    asked = await standin.user_says(world.general, world.alice, f"<@&{role.id}> hi role")
    reply = await final_reply(standin, world.general, asked)
    assert "“hi role”" in reply.content  # the role mention is not shown to the model


async def test_replying_to_a_character_message_needs_no_mention(
    standin: DiscordStandIn, world: World, bot: Bot
):
    asked = await standin.user_says(world.general, world.alice, "first", mentions=[standin.bot])
    reply = await final_reply(standin, world.general, asked)
    again = await standin.user_says(world.general, world.alice, "and then?", reply_to=reply)
    second = await final_reply(standin, world.general, again)
    assert "“and then?”" in second.content


async def one_answer_per_message(bot: Bot, world: World) -> None:
    """Bram joins Aria in the channel; characters do not answer each other there."""
    key = conversation_key_of(world.general)
    await bot.manager.add_to_scene(key, "bram")
    await bot.manager.policies.set_chat_settings(key, TriggerSettings(scene_turns=1))


async def test_saying_a_name_or_nickname_gets_that_character(
    standin: DiscordStandIn, world: World, bot: Bot
):
    await one_answer_per_message(bot, world)
    called = await standin.user_says(world.general, world.alice, "barkeep, an ale please")
    reply = await final_reply(standin, world.general, called)
    assert reply.author.username == "Bram Oakbarrel"
    named = await standin.user_says(world.general, world.alice, "Ari, are you there?")
    reply = await final_reply(standin, world.general, named)
    assert reply.author.username == "Aria"
    # Nobody named: the director's pick answers a mention (Aria, named last).
    asked = await standin.user_says(world.general, world.alice, "anyone?", mentions=[standin.bot])
    reply = await final_reply(standin, world.general, asked)
    assert reply.author.username == "Aria"


async def test_a_reply_to_one_characters_message_goes_to_that_character(
    standin: DiscordStandIn, world: World, bot: Bot
):
    await one_answer_per_message(bot, world)
    called = await standin.user_says(world.general, world.alice, "Bram, a stew")
    bram = await final_reply(standin, world.general, called)
    follow = await standin.user_says(world.general, world.alice, "more salt", reply_to=bram)
    reply = await final_reply(standin, world.general, follow)
    assert reply.author.username == "Bram Oakbarrel"


async def test_follow_up_window_is_for_the_person_who_just_talked(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    bob = standin.create_member(world.guild, "bob", global_name="Bob")
    asked = await standin.user_says(world.general, world.alice, "hello", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    follow = await standin.user_says(world.general, world.alice, "as I was saying")
    await final_reply(standin, world.general, follow)
    await standin.user_says(world.general, bob, "unrelated chatter")
    await answered_in_order(standin, world.general, world.alice, standin.bot)
    assert replies_to(standin, world.general, "unrelated chatter") == []
    assert len(fake_m2her.requests) == 3


async def test_random_chance_joins_in_only_when_switched_on(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    bob = standin.create_member(world.guild, "bob", global_name="Bob")
    asked = await standin.user_says(world.general, world.alice, "hello", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    await standin.user_says(world.general, bob, "off by default")
    await answered_in_order(standin, world.general, world.alice, standin.bot)
    assert replies_to(standin, world.general, "off by default") == []

    await bot.manager.policies.set_chat_settings(
        conversation_key_of(world.general),
        TriggerSettings(random_chance=1.0, random_half_life_seconds=3600),
    )
    said = await standin.user_says(world.general, bob, "joined by chance")
    await final_reply(standin, world.general, said)


async def test_messages_mentioning_someone_else_are_left_alone(
    standin: DiscordStandIn, world: World, bot: Bot
):
    bob = standin.create_member(world.guild, "bob", global_name="Bob")
    await bot.manager.policies.set_chat_settings(
        conversation_key_of(world.general), TriggerSettings(answer_all=True)
    )
    await standin.user_says(world.general, world.alice, "for you only", mentions=[bob])
    await answered_in_order(standin, world.general, world.alice, standin.bot)
    assert replies_to(standin, world.general, "for you only") == []
    # Mentions are shown to the model by name, not as raw ids.
    said = await standin.user_says(world.general, world.alice, "Aria, meet", mentions=[bob])
    reply = await final_reply(standin, world.general, said)
    assert "“@Bob Aria, meet”" in reply.content


async def test_other_bots_only_when_allowed_and_capped_until_a_human_speaks(
    standin: DiscordStandIn, world: World, bot: Bot
):
    dice = standin.create_member(world.guild, "dicebot", bot=True)
    await standin.user_says(world.general, dice, "rolled 1", mentions=[standin.bot])
    await standin.webhook_says(world.general, "RSS", f"{standin.bot.mention} news 1")
    await answered_in_order(standin, world.general, world.alice, standin.bot)
    assert replies_to(standin, world.general, "rolled 1") == []
    assert replies_to(standin, world.general, "news 1") == []

    await bot.manager.policies.set_chat_settings(
        conversation_key_of(world.general),
        TriggerSettings(answer_all=True, allow_bots=True, max_consecutive_bot_turns=2),
    )
    for number in (2, 3, 4):
        said = await standin.user_says(world.general, dice, f"rolled {number}")
        if number < 4:
            await final_reply(standin, world.general, said)
    await answered_in_order(standin, world.general, world.alice, standin.bot)
    assert replies_to(standin, world.general, "rolled 4") == []
    said = await standin.user_says(world.general, dice, "rolled 5")
    await final_reply(standin, world.general, said)  # a human spoke: the cap starts over


async def test_the_bot_never_answers_its_own_messages(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    await bot.manager.policies.set_chat_settings(
        conversation_key_of(world.general),
        TriggerSettings(answer_all=True, allow_bots=True, max_consecutive_bot_turns=50),
    )
    asked = await standin.user_says(world.general, world.alice, "talk to yourself")
    await final_reply(standin, world.general, asked)
    dm = standin.open_dm(world.alice)
    asked = await standin.user_says(dm, world.alice, "and here")
    await final_reply(standin, dm, asked)
    await answered_in_order(standin, world.general, world.alice, standin.bot)
    assert len(fake_m2her.requests) == 3


async def test_a_thread_is_its_own_conversation_answered_inside_it(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    thread = standin.create_thread(world.general, "side plot")
    await standin.wait_for(lambda: bot.client.get_channel(thread.id) is not None)
    asked = await standin.user_says(world.general, world.alice, "in main", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    asked = await standin.user_says(thread, world.alice, "in thread", mentions=[standin.bot])
    reply = await final_reply(standin, thread, asked)
    assert reply.webhook_id is not None
    assert reply.author.username == "Aria"
    # The thread's history does not contain the main channel's messages.
    texts = [m["content"] for m in fake_m2her.requests[-1].body["messages"]]
    assert "in thread" in texts
    assert "in main" not in texts
    assert len(standin.calls_to("POST /channels/{channel_id}/webhooks")) == 1


async def test_without_manage_webhooks_the_bot_posts_in_bold_and_tips_the_admins_once(
    harness: Harness,
):
    standin = harness.standin
    guild = standin.create_guild("Plain", bot_permissions=DEFAULT_EVERYONE_PERMISSIONS)
    general = standin.create_text_channel(guild, "general")
    alice = standin.create_member(guild, "alice", global_name="Alice")
    await harness.start()
    for text in ("one", "two"):
        asked = await standin.user_says(general, alice, text, mentions=[standin.bot])
        reply = await final_reply(standin, general, asked)
        assert reply.webhook_id is None
        assert reply.content.startswith(f"**Aria**\nAria heard Alice: “{text}”")
    tips = [m for m in standin.bot_messages(general) if m.content == WEBHOOK_TIP]
    assert len(tips) == 1
    assert standin.calls_to("POST /channels/{channel_id}/webhooks") == []


async def test_webhooks_are_created_once_and_found_again_after_a_restart(
    harness: Harness, world: World
):
    standin = harness.standin
    first = await harness.start()
    asked = await standin.user_says(world.general, world.alice, "one", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    asked = await standin.user_says(world.general, world.alice, "two", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    await harness.stop(first)
    await harness.start()
    asked = await standin.user_says(world.general, world.alice, "three", mentions=[standin.bot])
    reply = await final_reply(standin, world.general, asked)
    assert reply.webhook_id is not None
    assert len(standin.calls_to("POST /channels/{channel_id}/webhooks")) == 1
    assert len(standin.world.webhooks) == 1


async def test_character_avatars_are_sent_when_they_are_urls(
    standin: DiscordStandIn, world: World, bot: Bot
):
    await bot.manager.set_character(conversation_key_of(world.general), "mara")
    asked = await standin.user_says(world.general, world.alice, "case?", mentions=[standin.bot])
    reply = await final_reply(standin, world.general, asked)
    assert reply.author.username == "Mara Quill"
    assert reply.avatar_url == "https://example.org/avatars/mara-quill.png"
    await bot.manager.set_character(conversation_key_of(world.general), "aria")
    asked = await standin.user_says(world.general, world.alice, "lamp?", mentions=[standin.bot])
    reply = await final_reply(standin, world.general, asked)
    assert reply.avatar_url is None  # a local file: no URL Discord could fetch


async def test_user_edits_and_deletions_reach_the_history(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    # No follow-up window: the unaddressed typo below is stored but not answered.
    await bot.manager.policies.set_chat_settings(
        conversation_key_of(world.general), TriggerSettings(follow_up_seconds=0)
    )
    first = await standin.user_says(
        world.general, world.alice, "I like tea", mentions=[standin.bot]
    )
    await final_reply(standin, world.general, first)
    typo = await standin.user_says(world.general, world.alice, "I hate cats")
    await standin.user_edits(first, f"{standin.bot.mention} I like coffee")
    await standin.user_deletes(typo)
    conversation = await bot.storage.conversation(
        "discord", str(world.general.id), default_character="aria"
    )

    async def followed() -> bool:
        texts = [m.text for m in await bot.storage.history_window(conversation.id, 10)]
        return texts[0] == "I like coffee" and "I hate cats" not in texts

    await eventually(followed)
    again = await standin.user_says(world.general, world.alice, "well?", mentions=[standin.bot])
    await final_reply(standin, world.general, again)
    sent = [m["content"] for m in fake_m2her.requests[-1].body["messages"]]
    assert "I like coffee" in sent
    assert "I hate cats" not in sent


async def test_model_output_never_pings_anyone(
    harness: Harness, world: World, fake_m2her: FakeM2Her
):
    standin = harness.standin
    role = standin.create_role(world.guild, "Everyone Important", Permission(0))
    loud = f"Hey @everyone, @here, <@{world.alice.id}> and <@&{role.id}>! The end."
    plain = standin.create_guild("Plain", bot_permissions=DEFAULT_EVERYONE_PERMISSIONS)
    plain_channel = standin.create_text_channel(plain, "general")
    bob = standin.create_member(plain, "bob")
    bot = await harness.start()
    await bot.manager.set_character(conversation_key_of(world.general), "bram")
    await bot.manager.set_character(conversation_key_of(plain_channel), "bram")
    fake_m2her.enqueue(Reply(text=loud), Reply(text=loud), Reply(text=loud))
    dm = standin.open_dm(world.alice)
    for channel, user, how in (
        (world.general, world.alice, "webhook"),
        (plain_channel, bob, "bot"),
        (dm, world.alice, "bot"),
    ):
        asked = await standin.user_says(channel, user, "shout", mentions=[standin.bot])
        reply = await final_reply(standin, channel, asked, ending="The end.")
        assert (reply.webhook_id is not None) == (how == "webhook")
        assert "@everyone" in reply.content
        assert not reply.pings
        assert reply.allowed_mentions == {"parse": []}
        assert all(not m.pings for m in standin.bot_messages(channel))


async def test_a_foreign_webhook_is_looked_up_but_no_webhook_is_made_for_it(
    standin: DiscordStandIn, world: World, bot: Bot
):
    dm = standin.open_dm(world.alice)
    await standin.webhook_says(world.general, "RSS", f"{standin.bot.mention} news")
    await standin.wait_for_call("GET /channels/{channel_id}/webhooks")
    asked = await standin.user_says(dm, world.alice, "meanwhile")
    await final_reply(standin, dm, asked)
    assert standin.calls_to("POST /channels/{channel_id}/webhooks") == []
    assert replies_to(standin, world.general, "news") == []


async def test_a_reply_to_the_second_part_of_a_long_reply_goes_to_its_character(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    await one_answer_per_message(bot, world)
    tale = " ".join(f"Part of Bram's long tale, line {n}." for n in range(80)) + " The end."
    fake_m2her.enqueue(Reply(text=tale))
    called = await standin.user_says(world.general, world.alice, "Bram, a long tale please")
    await standin.wait_for(
        lambda: any(m.content.endswith("The end.") for m in standin.bot_messages(world.general))
    )
    first, second = (m for m in standin.bot_messages(world.general) if m.id > called.id)
    assert first.author.username == second.author.username == "Bram Oakbarrel"

    async def stored() -> bool:
        key = conversation_key_of(world.general)
        return await bot.manager.character_of_message(key, str(first.id)) is not None

    await eventually(stored)
    follow = await standin.user_says(world.general, world.alice, "go on", reply_to=second)
    reply = await final_reply(standin, world.general, follow)
    assert reply.author.username == "Bram Oakbarrel"
