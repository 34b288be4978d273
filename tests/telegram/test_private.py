"""Private chats: every message is answered, streamed through a draft (or send-and-edit)."""

from __future__ import annotations

from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Reply
from bot.platforms.telegram.app import TelegramBot
from tests.standins.telegram import TelegramStandIn
from tests.telegram.conftest import WAIT


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
