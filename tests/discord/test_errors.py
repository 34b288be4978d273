"""Every failure has a visible outcome, and the bot carries on after it."""

from __future__ import annotations

import pytest

from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Drop, Error, HttpError, Reply
from bot.platforms.discord.events import UNEXPECTED
from bot.platforms.discord.webhooks import usable_username
from tests.discord.conftest import Bot, Harness, World, command, final_reply
from tests.standins.discord import DiscordStandIn, Permission


async def test_an_api_error_becomes_a_short_notice_and_the_next_message_is_answered(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    fake_m2her.enqueue(Error(1008))  # insufficient balance: not retried
    asked = await standin.user_says(world.general, world.alice, "hello", mentions=[standin.bot])
    notice = await standin.wait_for_message(world.general, after=asked)
    assert notice.webhook_id is None
    assert notice.author.id == standin.bot.id
    assert 0 < len(notice.content) < 300
    assert not notice.pings
    again = await standin.user_says(world.general, world.alice, "again", mentions=[standin.bot])
    reply = await final_reply(standin, world.general, again)
    assert reply.author.username == "Aria"


async def test_a_stream_cut_mid_reply_is_withdrawn_and_explained(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    fake_m2her.enqueue(*[Drop(after_chunks=3, chunk_delay=0.05)] * 4)
    asked = await standin.user_says(world.general, world.alice, "tell", mentions=[standin.bot])
    notice = await standin.wait_for_message(
        world.general, lambda m: m.webhook_id is None, after=asked, timeout=10
    )
    partial = [m for m in standin.world.messages.values() if m.webhook_id and m.id > asked.id]
    assert all(m.deleted for m in partial)
    assert notice.content


async def test_a_bad_gateway_page_is_a_notice_not_a_crash(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    fake_m2her.enqueue(*[HttpError(502)] * 4)
    asked = await standin.user_says(world.general, world.alice, "hi", mentions=[standin.bot])
    notice = await standin.wait_for_message(world.general, after=asked, timeout=10)
    assert notice.webhook_id is None
    assert "<html>" not in notice.content


async def test_an_engine_failure_on_one_message_gets_a_notice(
    standin: DiscordStandIn, world: World, bot: Bot
):
    await bot.storage.close()  # every storage call now fails
    asked = await standin.user_says(world.general, world.alice, "hi", mentions=[standin.bot])
    notice = await standin.wait_for_message(world.general, after=asked)
    assert notice.content == UNEXPECTED
    assert not bot.client.is_closed()


async def test_a_channel_the_bot_cannot_post_in_does_not_stop_it(
    standin: DiscordStandIn, world: World, bot: Bot, caplog: pytest.LogCaptureFixture
):
    muted = standin.create_text_channel(world.guild, "muted")
    bot_role = next(r for r in world.guild.roles.values() if r.bot_id == standin.bot.id)
    standin.set_overwrite(
        muted, bot_role, deny=Permission.SEND_MESSAGES | Permission.MANAGE_WEBHOOKS
    )
    await standin.wait_for(lambda: bot.client.get_channel(muted.id) is not None)
    await standin.user_says(muted, world.alice, "anyone?", mentions=[standin.bot])
    await standin.wait_for(
        lambda: any(
            c.status == 403 and c.route == "POST /channels/{channel_id}/messages"
            for c in standin.calls
        ),
        what="the refused post",
    )
    asked = await standin.user_says(world.general, world.alice, "here?", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    assert standin.bot_messages(muted) == []

    def explained() -> list[str]:
        return [r.getMessage() for r in caplog.records if "refused a reply" in r.getMessage()]

    await standin.wait_for(explained, what="the explanation in the log")
    assert explained()[0].startswith("Discord refused a reply in #muted")
    assert "Give the bot's role Send Messages" in explained()[0]


async def test_a_deleted_webhook_falls_back_to_the_bot_then_is_made_again(
    standin: DiscordStandIn, world: World, bot: Bot
):
    asked = await standin.user_says(world.general, world.alice, "one", mentions=[standin.bot])
    first = await final_reply(standin, world.general, asked)
    del standin.world.webhooks[first.webhook_id]  # an admin removed it
    asked = await standin.user_says(world.general, world.alice, "two", mentions=[standin.bot])
    fallback = await final_reply(standin, world.general, asked)
    assert fallback.webhook_id is None
    assert fallback.content.startswith("**Aria**\nAria heard Alice: “two”")
    asked = await standin.user_says(world.general, world.alice, "three", mentions=[standin.bot])
    again = await final_reply(standin, world.general, asked)
    assert again.webhook_id is not None
    assert again.webhook_id != first.webhook_id


async def test_discord_429s_on_sends_are_respected(
    harness: Harness, world: World, fake_m2her: FakeM2Her
):
    standin = harness.standin
    await harness.start()
    send = "POST /webhooks/{webhook_id}/{webhook_token}"
    standin.rate_limits.inject_429(send, retry_after=0.25, count=1)
    asked = await standin.user_says(world.general, world.alice, "hi", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    sends = [c for c in standin.calls if c.route == send]
    assert [c.status for c in sends[:2]] == [429, 200]
    assert sends[1].at - sends[0].at >= 0.25 - 0.01


async def test_a_channel_full_of_webhooks_falls_back_to_bold_names(
    standin: DiscordStandIn, world: World, bot: Bot
):
    for number in range(15):
        standin.world.create_webhook(world.general, f"feed {number}", created_by=world.owner)
    asked = await standin.user_says(world.general, world.alice, "hi", mentions=[standin.bot])
    reply = await final_reply(standin, world.general, asked)
    assert reply.webhook_id is None
    assert reply.content.startswith("**Aria**\n")
    refused = [c for c in standin.calls if c.route == "POST /channels/{channel_id}/webhooks"]
    assert [c.status for c in refused] == [400]


async def test_a_failing_slash_command_still_gets_an_answer(
    standin: DiscordStandIn, world: World, bot: Bot
):
    await bot.storage.close()
    answered = await command(standin, world.general, world.alice, "persona show")
    assert answered.original.content == "Something went wrong with that command; please try again."
    assert answered.original.ephemeral
    assert not bot.client.is_closed()


def test_webhook_usernames_discord_refuses_are_not_used():
    assert usable_username("Aria")
    assert not usable_username("Discord Dan")
    assert not usable_username("clyde")
    assert not usable_username("x" * 81)
    assert usable_username("x" * 80)


async def test_a_dropped_gateway_mid_reply_resumes_and_nothing_is_lost(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    fake_m2her.enqueue(Reply(text="slowly " * 20 + "done.", chunk_delay=0.03))
    asked = await standin.user_says(world.general, world.alice, "go on", mentions=[standin.bot])
    await standin.wait_for_message(world.general, after=asked)  # the reply is streaming
    await standin.gateway.drop_all(code=4000)
    missed = await standin.user_says(world.general, world.alice, "and?", mentions=[standin.bot])
    await final_reply(standin, world.general, asked, ending="done.")
    reply = await final_reply(standin, world.general, missed)
    assert "“and?”" in reply.content
    assert any(s.resumes for s in standin.gateway.ready_sessions)
