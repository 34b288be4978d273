"""Delivery on Telegram, through python-telegram-bot and the Bot API stand-in: a reply Telegram
did not take is not history and its user is told once sends work again; blank messages cost
no model call."""

from __future__ import annotations

from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ManagerSettings
from bot.conversation.notices import UNDELIVERED_NOTICE, NoticeRetry
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Reply
from tests.observability.scrape import value
from tests.standins.telegram import Chat, TelegramStandIn
from tests.telegram.conftest import WAIT, BotFactory, ManagerFactory

QUICK = NoticeRetry(first_delay=0.05, max_delay=0.2, give_up_after=30.0)


def _visible(chat: Chat) -> list[str]:
    return [m.text for m in chat.bot_messages()]


async def test_a_reply_telegram_refuses_is_undelivered_and_the_user_told_when_sends_work(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
    fake_m2her: FakeM2Her,
) -> None:
    manager = await make_manager(
        settings=ManagerSettings(default_character="aria", notice_retry=QUICK)
    )
    await start_bot(manager)
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    fake_m2her.enqueue(Reply(text="The reply that never arrived."))
    # The reply's send fails, then the notice's first two attempts: then Telegram is back.
    tg.fail_next("sendMessage", 500, "Internal Server Error", chat_id=dm.id, times=3)
    tg.user_says(dm, alice, "hello?")
    await tg.wait_until(lambda: _visible(dm) == [UNDELIVERED_NOTICE], timeout=WAIT)
    refused = tg.calls_to("sendMessage", chat=dm, ok=False)
    assert len(refused) == 3

    key = ConversationKey("telegram", str(dm.id))
    conversation = await manager._conversation(key)
    history = await manager._storage.history_window(conversation.id, 10)
    assert [(m.role, m.text) for m in history] == [("user", "hello?")]
    metrics = manager.metrics.render()
    assert value(metrics, "troupe_replies_undelivered_total", platform="telegram") == 1

    tg.user_says(dm, alice, "did you say something?")
    await tg.wait_until(lambda: len(_visible(dm)) == 2, timeout=WAIT)
    sent = fake_m2her.requests[-1].body["messages"]
    contents = [m["content"] for m in sent if m["role"] in ("user", "assistant")]
    assert contents == ["hello?", "did you say something?"]


async def test_blank_messages_cost_no_model_call(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
    fake_m2her: FakeM2Her,
) -> None:
    await start_bot(await make_manager())
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "   \n  ")
    tg.user_says(dm, alice, "\u200b\u2060\u200d")
    tg.user_says(dm, alice, "hi")
    await tg.wait_until(lambda: len(_visible(dm)) == 1, timeout=WAIT)
    await tg.wait_until(lambda: not tg.pending_updates, timeout=WAIT)
    assert len(fake_m2her.requests) == 1
    sent = fake_m2her.requests[0].body["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["hi"]
