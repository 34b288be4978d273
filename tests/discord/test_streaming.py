"""Streaming: first text early, edits paced within the channel's budget and the final text at
once and exact, long replies split (code blocks closed and reopened), typing until the first
text, 429s respected."""

from __future__ import annotations

import asyncio
import itertools

from bot.conversation.incoming import ConversationKey
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Reply
from bot.platforms.discord.sink import WEBHOOK_RATES
from bot.platforms.text import open_fence
from tests.discord.conftest import Bot, Harness, World, eventually
from tests.observability.scrape import value
from tests.standins.discord import Channel, DiscordStandIn, Message

INTERVAL = 0.15


def long_reply() -> str:
    """About 3,000 characters: prose, then a code block across the 2,000 mark, then prose.

    The paragraph before the code ends too early to cut there (a part must be at least half
    full), so the cut falls between two lines of code.
    """
    prose = " ".join(f"Sentence number {n} tells a little more of the story." for n in range(10))
    code = "\n".join(f"    print('line {n} of the spell')" for n in range(55))
    return f"{prose}\n\n```python\n{code}\n```\n\n{prose[:400]} The end."


def most_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def operations(messages: list[Message]) -> list[float]:
    """When each send and edit of these messages landed, in order."""
    return sorted([m.created_at for m in messages] + [e.at for m in messages for e in m.edits])


async def streamed(standin: DiscordStandIn, world: World, bot: Bot) -> list[Message]:
    """Ask in #general and wait for the whole scripted reply (ending in "The end.")."""
    # Bram has no max_completion_tokens, so the fake does not cut long replies short.
    await bot.manager.set_character(conversation_key(world), "bram")
    asked = await standin.user_says(world.general, world.alice, "tell me", mentions=[standin.bot])
    await standin.wait_for(
        lambda: "".join(m.content for m in standin.bot_messages(world.general)).endswith(
            "The end."
        ),
        what="the whole reply",
        timeout=15,
    )
    return [m for m in standin.bot_messages(world.general) if m.id > asked.id]


async def test_a_long_reply_streams_within_the_budget_and_ends_exactly_split(
    harness: Harness, world: World, fake_m2her: FakeM2Her
):
    standin = harness.standin
    bot = await harness.start(edit_interval=INTERVAL)
    text = long_reply()
    fake_m2her.chunk_chars = 60
    fake_m2her.enqueue(Reply(text=text, chunk_delay=0.01))
    started = asyncio.get_running_loop().time()
    messages = await streamed(standin, world, bot)

    assert len(messages) == 2
    assert all(len(m.content) <= 2000 for m in messages)
    # Nothing lost or added at the cut: the parts are the text, with the fence reopened.
    first, second = (m.content for m in messages)
    assert first.endswith("\n```")
    assert open_fence(first[: -len("\n```")]) == "```python"
    assert second.startswith("```python\n")
    assert open_fence(first) is None
    assert open_fence(second) is None
    joined = first[: -len("\n```")] + "\n" + second[len("```python\n") :]
    assert " ".join(joined.split()) == " ".join(text.split())
    # The last edit of each message is exactly its final part.
    for message in messages:
        if message.edits:
            assert message.edits[-1].content == message.content
    # First text early: long before the stream (about 50 chunks × 10 ms) is over.
    assert messages[0].created_at - started < 0.5
    times = operations(messages)
    assert len(times) >= 4, "the reply was shown progressively"
    # Updates while it streams keep their gap; the final text does not wait for one.
    gaps = [b - a for a, b in itertools.pairwise(times[:-1])]
    assert min(gaps) >= INTERVAL - 0.02
    for rate in WEBHOOK_RATES:
        assert most_in_any_window(times, rate.seconds) <= rate.count
    # Typing showed before the first text.
    typing = standin.calls_to("POST /channels/{channel_id}/typing")
    assert typing
    assert typing[0].at <= messages[0].created_at
    # The cadence's waits are the platform rate-limit wait in the metrics.
    waited = value(
        bot.manager.metrics.render(),
        "troupe_platform_rate_limit_wait_seconds_total",
        platform="discord",
    )
    assert waited is not None
    assert waited > INTERVAL / 2


async def test_the_budget_is_per_channel_not_global(
    harness: Harness, world: World, fake_m2her: FakeM2Her
):
    standin = harness.standin
    bot = await harness.start(edit_interval=INTERVAL)
    other = standin.create_text_channel(world.guild, "other")
    await standin.wait_for(lambda: bot.client.get_channel(other.id) is not None)
    fake_m2her.chunk_chars = 10
    fake_m2her.enqueue(
        Reply(text="a" * 10 + " word" * 40, chunk_delay=0.02),
        Reply(text="b" * 10 + " word" * 40, chunk_delay=0.02),
    )
    for channel in (world.general, other):
        await standin.user_says(channel, world.alice, "go", mentions=[standin.bot])

    def complete(channel: Channel) -> bool:
        return any(m.content.endswith(" word" * 40) for m in standin.bot_messages(channel))

    await standin.wait_for(lambda: complete(world.general) and complete(other), timeout=10)
    per_channel = [operations(standin.bot_messages(c)) for c in (world.general, other)]
    for times in per_channel:
        assert min(b - a for a, b in itertools.pairwise(times[:-1])) >= INTERVAL - 0.02
    merged = sorted(per_channel[0] + per_channel[1])
    assert min(b - a for a, b in itertools.pairwise(merged)) < INTERVAL / 2


async def test_discord_429s_on_edits_are_waited_out(
    harness: Harness, world: World, fake_m2her: FakeM2Her
):
    standin = harness.standin
    bot = await harness.start(edit_interval=0.05)
    edit_route = "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"
    standin.rate_limits.inject_429(edit_route, retry_after=0.3, count=1)
    fake_m2her.chunk_chars = 20
    fake_m2her.enqueue(Reply(text="x" * 20 + " and so on" * 20 + " The end.", chunk_delay=0.02))
    messages = await streamed(standin, world, bot)
    edits = [c for c in standin.calls if c.route == edit_route]
    limited = [c for c in edits if c.status == 429]
    assert len(limited) == 1
    after = [c for c in edits if c.at > limited[0].at]
    assert after
    assert after[0].at - limited[0].at >= 0.3 - 0.01
    assert messages[-1].content.endswith(" The end.")


async def test_a_restart_in_the_middle_of_a_conversation_carries_on(
    harness: Harness, world: World, fake_m2her: FakeM2Her
):
    standin = harness.standin
    first = await harness.start()
    asked = await standin.user_says(
        world.general, world.alice, "my name is Al", mentions=[standin.bot]
    )
    old_reply = await standin.wait_for_message(
        world.general, lambda m: m.content.endswith("in context)"), after=asked
    )

    async def stored() -> bool:
        character = await first.manager.character_of_message(
            conversation_key(world), str(old_reply.id)
        )
        return character is not None

    await eventually(stored)
    await harness.stop(first)
    await harness.start()
    # A reply to the old character message, no mention: still recognised as for Aria.
    again = await standin.user_says(world.general, world.alice, "remember?", reply_to=old_reply)
    reply = await standin.wait_for_message(
        world.general, lambda m: m.content.endswith("in context)"), after=again
    )
    assert reply.author.username == "Aria"
    sent = [m["content"] for m in fake_m2her.requests[-1].body["messages"]]
    assert "my name is Al" in sent
    assert old_reply.content in sent


def conversation_key(world: World) -> ConversationKey:
    return ConversationKey("discord", str(world.general.id))


async def test_the_reply_is_complete_on_screen_as_soon_as_the_model_ends(
    harness: Harness, world: World, fake_m2her: FakeM2Her
):
    standin = harness.standin
    bot = await harness.start(edit_interval=1.2)  # production pacing
    await bot.manager.set_character(conversation_key(world), "bram")
    text = "The storm passes slowly over the hills, and the tavern grows quiet. " * 4
    fake_m2her.chunk_chars = 19
    fake_m2her.enqueue(Reply(text=text.strip(), chunk_delay=0.1))  # about 1.5 s of streaming
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await standin.user_says(world.general, world.alice, "weather?", mentions=[standin.bot])
    await standin.wait_for(
        lambda: any(m.content == text.strip() for m in standin.bot_messages(world.general)),
        what="the whole reply",
        timeout=10,
    )
    shown = loop.time() - asked
    # The stream ends about 1.5 s in; waiting for the next 1.2 s slot would end at 2.4 s.
    assert shown < 2.0
    reply = next(m for m in standin.bot_messages(world.general) if m.content == text.strip())
    assert reply.edits  # posted early, then completed
