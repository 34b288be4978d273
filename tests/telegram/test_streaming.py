"""Streaming in groups (send, then edit): cadence, 429 back-off, splitting and formatting."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Reply
from bot.platforms.telegram.sink import CHAT_RATE
from tests.standins.telegram import Chat, RateLimit, TelegramStandIn, User
from tests.telegram.conftest import WAIT, BotFactory, ManagerFactory


@pytest.fixture
def group(tg: TelegramStandIn) -> tuple[User, Chat]:
    alice = tg.add_user("Alice", "alice")
    return alice, tg.group("Tavern", [alice, tg.add_user("Bob")])


async def _final(tg: TelegramStandIn, chat: Chat, text: str, count: int = 1) -> None:
    await tg.wait_until(
        lambda: (
            "\n\n".join(m.text for m in chat.bot_messages()) == text
            and len(chat.bot_messages()) == count
        ),
        timeout=WAIT,
        what="the final text",
    )


async def test_edits_keep_their_gap_and_end_with_exactly_the_final_text(
    tg: TelegramStandIn,
    manager: ConversationManager,
    start_bot: BotFactory,
    fake_m2her: FakeM2Her,
    group: tuple[User, Chat],
) -> None:
    await start_bot(manager, group_interval=0.3)
    alice, chat = group
    text = "The tavern door creaks; rain drums on the shutters while the fire spits and sighs."
    fake_m2her.chunk_chars = 6
    fake_m2her.enqueue(Reply(text=text, chunk_delay=0.04))
    tg.user_says(chat, alice, "@troupe_bot tell me a story")
    await _final(tg, chat, text)
    reply = chat.bot_messages()[0]
    assert len(reply.texts) >= 3  # posted early and edited as it grew
    assert all(text.startswith(shown) for shown in reply.texts)
    assert reply.texts[-1] == text
    sends_and_edits = [
        c.at for c in tg.calls if c.method in ("sendMessage", "editMessageText") and c.ok
    ]
    # Updates while it streams keep their gap; the final text does not wait for one.
    gaps = [b - a for a, b in itertools.pairwise(sends_and_edits[:-1])]
    assert min(gaps) >= 0.29
    assert len(sends_and_edits) <= CHAT_RATE.count


async def test_a_group_reply_is_complete_on_screen_as_soon_as_the_model_ends(
    tg: TelegramStandIn,
    manager: ConversationManager,
    start_bot: BotFactory,
    fake_m2her: FakeM2Her,
    group: tuple[User, Chat],
) -> None:
    # Production pacing: at most one update every 3 s while the reply streams.
    await start_bot(manager, group_interval=3.0)
    alice, chat = group
    text = "The storm passes slowly over the hills, and the tavern grows quiet. " * 3
    fake_m2her.chunk_chars = 14
    fake_m2her.enqueue(Reply(text=text.strip(), chunk_delay=0.1))  # about 1.5 s of streaming
    loop = asyncio.get_running_loop()
    asked = loop.time()
    tg.user_says(chat, alice, "@troupe_bot how is the weather")
    await _final(tg, chat, text.strip())
    shown = loop.time() - asked
    # The stream ends about 1.5 s in; a metronome would have held the end until 3 s or later.
    assert shown < 2.2
    assert len(chat.bot_messages()[0].texts) >= 2  # posted early, then completed


async def test_a_429_backs_off_and_the_end_of_the_reply_still_arrives(
    tg: TelegramStandIn,
    manager: ConversationManager,
    start_bot: BotFactory,
    fake_m2her: FakeM2Her,
    group: tuple[User, Chat],
) -> None:
    await start_bot(manager, group_interval=0.05)
    alice, chat = group
    text = "One. Two. Three. Four. Five. Six. Seven. Eight. Nine. Ten."
    fake_m2her.chunk_chars = 5
    fake_m2her.enqueue(Reply(text=text, chunk_delay=0.05))
    tg.fail_next("editMessageText", 429, retry_after=1, chat_id=chat.id)
    tg.user_says(chat, alice, "@troupe_bot count")
    await _final(tg, chat, text)
    limited = tg.calls_to("editMessageText", ok=False)
    assert [c.status for c in limited] == [429]
    after = [c for c in tg.calls if c.at > limited[0].at and c.method == "editMessageText"]
    assert after[0].at - limited[0].at >= 1.0  # waited as told


@pytest.mark.standin(rate_limit=RateLimit(group_rate=2.0, group_burst=1))
async def test_strict_flood_control_answers_429s_and_nothing_is_lost(
    tg: TelegramStandIn,
    manager: ConversationManager,
    start_bot: BotFactory,
    fake_m2her: FakeM2Her,
    group: tuple[User, Chat],
) -> None:
    await start_bot(manager, group_interval=0.05)  # far faster than the chat allows
    alice, chat = group
    text = " ".join(f"word{n}" for n in range(60))
    fake_m2her.chunk_chars = 10
    fake_m2her.enqueue(Reply(text=text, chunk_delay=0.03))
    tg.user_says(chat, alice, "@troupe_bot go")
    await _final(tg, chat, text)
    assert tg.calls_to("editMessageText", ok=False) or tg.calls_to("sendMessage", ok=False)
    assert chat.bot_messages()[0].texts[-1] == text


async def test_a_long_group_reply_is_split_into_messages_of_at_most_4096(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
    fake_m2her: FakeM2Her,
    group: tuple[User, Chat],
) -> None:
    await start_bot(await make_manager(settings=ManagerSettings(default_character="bram")))
    alice, chat = group
    sentence = "Bram wipes the same mug again and hums a marching song from the old wars. "
    text = (sentence * 80).strip()  # ~5,900 characters, one paragraph
    fake_m2her.chunk_chars = 300
    fake_m2her.enqueue(Reply(text=text, chunk_delay=0.01))
    tg.user_says(chat, alice, "@troupe_bot the whole story, please")
    await tg.wait_until(lambda: " ".join(m.text for m in chat.bot_messages()) == text, timeout=WAIT)
    parts = [m.text for m in chat.bot_messages()]
    assert len(parts) == 2
    assert all(len(part) <= 4096 for part in parts)
    assert parts[0].endswith("wars.")  # split at a sentence
    assert all(len(shown) <= 4096 for m in chat.bot_messages() for shown in m.texts)


async def test_markdown_that_would_break_parse_mode_is_sent_safely(
    tg: TelegramStandIn, bot: object, fake_m2her: FakeM2Her, group: tuple[User, Chat]
) -> None:
    alice, chat = group
    text = "*leans in* Use <br> & 2 < 3 **now**, `a<b>` [docs](https://x.org/?a=1&b=2)"
    fake_m2her.enqueue(Reply(text=text))
    tg.user_says(chat, alice, "@troupe_bot advice?")
    visible = "leans in Use <br> & 2 < 3 now, a<b> docs"
    await tg.wait_until(lambda: [m.text for m in chat.bot_messages()] == [visible], timeout=WAIT)
    kinds = [e["type"] for e in chat.bot_messages()[0].entities]
    assert kinds == ["italic", "bold", "code", "text_link"]
    assert tg.calls_to("sendMessage", ok=False) == []


async def test_rejected_formatting_falls_back_to_plain_text(
    tg: TelegramStandIn, bot: object, fake_m2her: FakeM2Her, group: tuple[User, Chat]
) -> None:
    alice, chat = group
    fake_m2her.enqueue(Reply(text="**Cheers**, friend."))
    tg.fail_next("sendMessage", 400, "Bad Request: can't parse entities: forced", chat_id=chat.id)
    tg.user_says(chat, alice, "@troupe_bot cheers")
    await tg.wait_until(
        lambda: [m.text for m in chat.bot_messages()] == ["**Cheers**, friend."], timeout=WAIT
    )
    plain = tg.calls_to("sendMessage", ok=True)[-1]
    assert "parse_mode" not in plain.params


async def test_message_is_not_modified_is_not_an_error(
    tg: TelegramStandIn,
    manager: ConversationManager,
    start_bot: BotFactory,
    fake_m2her: FakeM2Her,
    group: tuple[User, Chat],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await start_bot(manager, group_interval=0.05)
    alice, chat = group
    fake_m2her.chunk_chars = 5
    fake_m2her.enqueue(Reply(text="Hello     there", chunk_delay=0.3))  # "Hello" + spaces
    with caplog.at_level(logging.WARNING):
        tg.user_says(chat, alice, "@troupe_bot hi")
        await _final(tg, chat, "Hello     there")
    refused = tg.calls_to("editMessageText", ok=False)
    assert [c.description for c in refused] == [
        "Bad Request: message is not modified: specified new message content and reply markup "
        "are exactly the same as a current content and reply markup of the message"
    ]
    assert "could not update" not in caplog.text
