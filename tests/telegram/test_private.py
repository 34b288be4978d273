"""Private chats: every message is answered, streamed through a draft (or send-and-edit)."""

from __future__ import annotations

from bot.conversation.manager import ManagerSettings
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Reply
from bot.platforms.telegram.app import TelegramBot
from tests.standins.telegram import TelegramStandIn
from tests.telegram.conftest import WAIT, BotFactory, ManagerFactory


async def test_a_private_message_is_answered_through_a_draft(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    fake_m2her.chunk_chars = 5
    fake_m2her.enqueue(Reply(text="*waves* Hello there, traveller.", chunk_delay=0.05))
    alice = tg.add_user("Alice", "alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "hi")
    call = await tg.wait_for("sendMessage", timeout=WAIT)
    reply = dm.bot_messages()[-1]
    assert reply.text == "waves Hello there, traveller."
    assert reply.entities == [{"type": "italic", "offset": 0, "length": 5}]
    assert call.params["parse_mode"] == "HTML"
    drafts = [draft for draft in dm.drafts.values()]
    assert len(drafts) == 1
    assert len(drafts[0].texts) >= 2  # it grew while streaming
    assert tg.calls_to("editMessageText") == []
    assert tg.calls_to("sendChatAction", chat=dm)


async def test_without_drafts_the_reply_is_sent_then_edited_and_drafts_are_not_retried(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    tg.drafts_enabled = False  # an older Bot API server: sendMessageDraft is 404
    fake_m2her.chunk_chars = 4
    fake_m2her.enqueue(
        Reply(text="Once upon a time, in the archive.", chunk_delay=0.05),
        Reply(text="And again.", chunk_delay=0.05),
    )
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "story?")
    await tg.wait_until(
        lambda: [m.text for m in dm.bot_messages()] == ["Once upon a time, in the archive."],
        timeout=WAIT,
    )
    first = dm.bot_messages()[0]
    assert len(first.texts) >= 2  # posted early, then edited
    assert first.texts[-1] == "Once upon a time, in the archive."
    assert len(tg.calls_to("sendMessageDraft")) == 1  # the one 404
    tg.user_says(dm, alice, "more")
    await tg.wait_until(lambda: len(dm.bot_messages()) == 2, timeout=WAIT)
    await tg.wait_until(lambda: dm.bot_messages()[1].text == "And again.", timeout=WAIT)
    assert len(tg.calls_to("sendMessageDraft")) == 1


async def test_a_long_reply_continues_in_new_messages_at_a_boundary(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
    fake_m2her: FakeM2Her,
) -> None:
    # Bram has no completion cap of his own, so a 6,000-character reply is not cut.
    await start_bot(await make_manager(settings=ManagerSettings(default_character="bram")))
    paragraph = "The lantern hums a tune older than the shelves. " * 20  # ~1,000 characters
    text = "\n\n".join(paragraph.strip() for _ in range(6))  # ~6,000 characters
    fake_m2her.chunk_chars = 400
    fake_m2her.enqueue(Reply(text=text, chunk_delay=0.01))
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "tell me everything")
    await tg.wait_until(lambda: len(dm.bot_messages()) == 2, timeout=WAIT)
    first, second = (m.text for m in dm.bot_messages())
    assert len(first) <= 4096
    assert len(second) <= 4096
    assert first.endswith("shelves.")  # cut between paragraphs
    assert f"{first}\n\n{second}" == text
    assert all(len(t) <= 4096 for d in dm.drafts.values() for t in d.texts)


async def test_typing_is_kept_up_until_the_first_text_appears(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    fake_m2her.enqueue(Reply(text="At last.", delay=1.0))  # the model thinks for a second
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "hm?")
    await tg.wait_until(lambda: [m.text for m in dm.bot_messages()] == ["At last."], timeout=WAIT)
    typing = tg.calls_to("sendChatAction", chat=dm)
    first_text = min(c.at for c in tg.calls if c.method in ("sendMessageDraft", "sendMessage"))
    assert len(typing) >= 3  # renewed every 0.2 s in tests (4.5 s in production)
    assert all(c.params["action"] == "typing" for c in typing)
    assert all(c.at <= first_text for c in typing)  # and stopped once text was up


async def test_a_photo_is_answered_by_its_caption_and_one_without_is_left_alone(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "", photo=True)
    tg.user_says(dm, alice, "my cat, Pepper", photo=True)
    await tg.wait_until(lambda: len(dm.bot_messages()) == 1, timeout=WAIT)
    await tg.wait_until(lambda: not tg.pending_updates, timeout=WAIT)
    assert len(fake_m2her.requests) == 1
    said = [m["content"] for m in fake_m2her.requests[-1].body["messages"] if m["role"] == "user"]
    assert said == ["my cat, Pepper"]
