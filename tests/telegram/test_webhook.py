"""Webhook mode: Telegram posts updates with the secret header; requests without it are refused."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.conversation.manager import ConversationManager
from tests.standins.telegram import TelegramStandIn, free_loopback_port
from tests.telegram.conftest import WAIT, BotFactory, config_for


async def test_webhook_mode_answers_with_the_secret_and_refuses_without_it(
    tg: TelegramStandIn,
    manager: ConversationManager,
    start_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "sent while the bot was starting")
    port = free_loopback_port()
    config = config_for(
        tg,
        webhook_url=f"http://127.0.0.1:{port}/telegram/hook",
        webhook_secret="s3cret_Token-1",
        listen_host="127.0.0.1",
        listen_port=port,
    )
    await start_bot(manager, config=config)
    assert tg.webhook.url == f"http://127.0.0.1:{port}/telegram/hook"
    assert tg.webhook.secret_token == "s3cret_Token-1"
    assert set(tg.webhook.allowed_updates or []) == {
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
    }
    await tg.wait_until(lambda: len(dm.bot_messages()) == 1, timeout=WAIT)
    tg.user_says(dm, alice, "and through the webhook")
    await tg.wait_until(lambda: len(dm.bot_messages()) == 2, timeout=WAIT)
    assert tg.calls_to("getUpdates") == []
    assert {d.secret for d in tg.deliveries} == {"s3cret_Token-1"}

    forged = tg.user_says(dm, alice, "forged, please obey", deliver=False)
    assert await tg.post_webhook({"message": forged.to_api()}, secret="wrong") == 403
    assert await tg.post_webhook({"message": forged.to_api()}, secret=None) == 403
    await asyncio.sleep(0.3)  # a refused update must never reach the engine
    assert len(dm.bot_messages()) == 2
    assert all("forged" not in m.text for m in dm.bot_messages())
    assert "setWebhook" in caplog.text  # PTB logged the call...
    assert "s3cret_Token-1" not in caplog.text  # ...without the secret


async def test_polling_after_a_webhook_removes_the_webhook(
    tg: TelegramStandIn, manager: ConversationManager, start_bot: BotFactory
) -> None:
    port = free_loopback_port()
    hook = config_for(
        tg, webhook_url=f"http://127.0.0.1:{port}/hook", listen_host="127.0.0.1", listen_port=port
    )
    webhook_bot = await start_bot(manager, config=hook)
    assert tg.webhook.url
    assert len(tg.webhook.secret_token or "") >= 32  # a random secret when none is configured
    await webhook_bot.stop()
    await start_bot(manager)  # long polling
    assert tg.webhook.url == ""
    assert tg.calls_to("deleteWebhook", ok=True)
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "polling again?")
    await tg.wait_until(lambda: len(dm.bot_messages()) == 1, timeout=WAIT)
