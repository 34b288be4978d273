"""Swipes on Discord: buttons under a character's newest reply regenerate, browse and
continue it in place, for the person it answered or a moderator, across restarts."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.conversation import commands
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Reply
from tests.discord.conftest import Bot, Harness, World
from tests.standins.discord import DiscordStandIn
from tests.standins.discord.model import Channel, Message
from tests.standins.discord.rest import Call

WAIT = 8.0


def _buttons(message: Message) -> list[dict[str, Any]]:
    return [button for row in message.components for button in row.get("components", [])]


def _labels(message: Message) -> list[str]:
    return [str(button["label"]) for button in _buttons(message)]


def _custom_id(message: Message, label: str) -> str:
    for button in _buttons(message):
        if str(button["label"]).startswith(label):
            return str(button["custom_id"])
    raise AssertionError(f"no button {label!r} on {_labels(message)}")


async def _showing(
    standin: DiscordStandIn, message: Message, text: str, labels: list[str] | None = None
) -> None:
    """Wait until ``message`` reads ``text`` (and shows the buttons ``labels``)."""

    def done() -> bool:
        return message.content == text and (labels is None or _labels(message) == labels)

    await standin.wait_for(done, timeout=WAIT, what=f"{text!r} with {labels}")


async def _reply(standin: DiscordStandIn, channel: Channel, after: Message, text: str) -> Message:
    reply = await standin.wait_for_message(
        channel, lambda message: message.content == text, after=after
    )
    await _showing(standin, reply, text, ["↻ Regenerate", "⏩ Continue"])
    return reply


def _sent_history(fake: FakeM2Her) -> list[str]:
    messages = fake.requests[-1].body["messages"]
    return [str(m["content"]) for m in messages if m["role"] in ("user", "assistant")]


async def test_buttons_regenerate_browse_and_continue_the_reply_in_place(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
) -> None:
    fake_m2her.enqueue(Reply(text="One."), Reply(text="Two."), Reply(text="and three."))
    asked = await standin.user_says(world.general, world.alice, "count", mentions=[standin.bot])
    reply = await _reply(standin, world.general, asked, "One.")
    assert reply.webhook_id is not None  # posted as the character, buttons and all

    pressed = await standin.click(reply, world.alice, _custom_id(reply, "↻"))
    await standin.wait_for_response(pressed)
    both = ["◀", "2/2", "▶", "↻ Regenerate", "⏩ Continue"]
    await _showing(standin, reply, "Two.", both)
    assert "One." not in _sent_history(fake_m2her)

    await standin.click(reply, world.alice, _custom_id(reply, "◀"))
    await _showing(standin, reply, "One.", ["◀", "1/2", "▶", "↻ Regenerate", "⏩ Continue"])
    await standin.click(reply, world.alice, _custom_id(reply, "▶"))
    await _showing(standin, reply, "Two.", both)
    await standin.click(reply, world.alice, _custom_id(reply, "⏩"))
    await _showing(standin, reply, "Two. and three.", both)
    assert standin.bot_messages(world.general) == [reply]

    # The next turn's prompt holds the alternative shown, continued.
    fake_m2her.enqueue(Reply(text="Four."))
    more = await standin.user_says(world.general, world.alice, "go on", mentions=[standin.bot])
    await _reply(standin, world.general, more, "Four.")
    assert _sent_history(fake_m2her)[-2] == "Two. and three."


async def test_only_the_person_answered_or_a_moderator_may_and_older_replies_are_too_late(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
) -> None:
    bob = standin.create_member(world.guild, "bob", global_name="Bob")
    fake_m2her.enqueue(Reply(text="For Alice."), Reply(text="Again for Alice."))
    asked = await standin.user_says(world.general, world.alice, "hi", mentions=[standin.bot])
    reply = await _reply(standin, world.general, asked, "For Alice.")

    refused = await standin.click(reply, bob, _custom_id(reply, "↻"))
    await standin.wait_for(lambda: bool(refused.followups), timeout=WAIT, what="a refusal")
    assert refused.followups[0].content == commands.NOT_YOUR_REPLY
    assert refused.followups[0].ephemeral
    assert reply.content == "For Alice."

    # The server's owner has Manage Server: a moderator may.
    await standin.click(reply, world.owner, _custom_id(reply, "↻"))
    await _showing(standin, reply, "Again for Alice.")

    fake_m2her.enqueue(Reply(text="Newer."))
    again = await standin.user_says(world.general, world.alice, "more", mentions=[standin.bot])
    await _reply(standin, world.general, again, "Newer.")
    late = await standin.click(reply, world.alice, _custom_id(reply, "◀"))
    await standin.wait_for(lambda: bool(late.followups), timeout=WAIT, what="too late")
    assert late.followups[0].content == commands.TOO_LATE
    assert late.followups[0].ephemeral
    await standin.wait_for(lambda: reply.components == [], timeout=WAIT, what="no buttons")
    assert reply.content == "Again for Alice."


async def test_buttons_on_a_reply_still_work_after_a_restart(
    standin: DiscordStandIn, world: World, harness: Harness, fake_m2her: FakeM2Her
) -> None:
    first = await harness.start()
    fake_m2her.enqueue(Reply(text="Before."), Reply(text="After."))
    asked = await standin.user_says(world.general, world.alice, "hi", mentions=[standin.bot])
    reply = await _reply(standin, world.general, asked, "Before.")
    await harness.stop(first)

    await harness.start()  # a new client and engine on the same database
    await standin.click(reply, world.alice, _custom_id(reply, "↻"))
    await _showing(standin, reply, "After.", ["◀", "2/2", "▶", "↻ Regenerate", "⏩ Continue"])


async def test_editing_or_deleting_the_last_message_regenerates_the_reply_to_it(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
) -> None:
    fake_m2her.enqueue(
        Reply(text="To the first."), Reply(text="To the edit."), Reply(text="To nothing.")
    )
    first = await standin.user_says(world.general, world.alice, "one", mentions=[standin.bot])
    reply = await _reply(standin, world.general, first, "To the first.")
    await standin.user_edits(first, f"{standin.bot.mention} one, edited")
    await _showing(standin, reply, "To the edit.")
    assert _sent_history(fake_m2her)[-1].endswith("one, edited")
    await standin.user_deletes(first)
    await _showing(standin, reply, "To nothing.")
    assert not any("one" in text for text in _sent_history(fake_m2her))


# -- what the buttons cost ------------------------------------------------------------------

MESSAGE_ROUTES = (
    "POST /channels/{channel_id}/messages",
    "PATCH /channels/{channel_id}/messages/{message_id}",
    "DELETE /channels/{channel_id}/messages/{message_id}",
    "POST /webhooks/{webhook_id}/{webhook_token}",
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
    "DELETE /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
)


def _writes(standin: DiscordStandIn, message: Message) -> list[Call]:
    """The writes that made ``message`` what it is (its post, edits, deletion), in order."""

    def about(call: Call) -> bool:
        if call.route not in MESSAGE_ROUTES or not 200 <= call.status < 300:
            return False
        if "message_id" in call.params:
            return call.params["message_id"] == str(message.id)
        return isinstance(call.response, dict) and call.response.get("id") == str(message.id)

    return [c for c in standin.calls if about(c)]


def _components(call: Call) -> list[Any]:
    return list((call.json or {}).get("components") or [])


async def test_a_reply_is_one_post_that_carries_its_buttons(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
) -> None:
    fake_m2her.enqueue(Reply(text="All at once."))
    asked = await standin.user_says(world.general, world.alice, "hi", mentions=[standin.bot])
    reply = await _reply(standin, world.general, asked, "All at once.")
    await asyncio.sleep(0.3)  # a separate write for the buttons would have come by now
    writes = _writes(standin, reply)
    assert [c.method for c in writes] == ["POST"]
    assert writes[0].json["content"] == "All at once."
    assert _components(writes[0])


async def test_a_streamed_reply_gets_its_buttons_in_its_final_edit(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
) -> None:
    text = "The door creaks open; rain drums on the shutters and the fire spits and sighs."
    fake_m2her.chunk_chars = 8
    fake_m2her.enqueue(Reply(text=text, chunk_delay=0.05))
    asked = await standin.user_says(world.general, world.alice, "story", mentions=[standin.bot])
    reply = await _reply(standin, world.general, asked, text)
    await asyncio.sleep(0.3)
    writes = _writes(standin, reply)
    assert [c.method for c in writes][:2] == ["POST", "PATCH"], "shown while it streamed"
    # Every write changed the text; only the last, the final text, carries the buttons.
    contents = [c.json["content"] for c in writes]
    assert len(set(contents)) == len(contents)
    assert contents[-1] == text
    assert _components(writes[-1])
    assert not any(_components(c) for c in writes[:-1])
