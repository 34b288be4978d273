"""Bot API requests through :class:`TelegramRequest`: a cancelled caller never costs a pool
connection, and every outcome reaches the platform's delivery monitor."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import Forbidden, NetworkError, RetryAfter

from bot.observability.delivery import DeliveryMonitor
from bot.platforms.telegram.request import TelegramRequest
from tests.standins.telegram import TelegramStandIn


async def test_cancelling_callers_anywhere_in_their_requests_never_leaks_a_connection(
    tg: TelegramStandIn,
) -> None:
    # httpcore keeps a connection for good when a request is cancelled in the few loop steps
    # where the connection is handed back. Cancelling after 0, 1, 2, ... loop steps hits them;
    # with a pool of one connection, a single leak makes every later request time out.
    chat = tg.private_chat(tg.add_user("Alice"))
    request = TelegramRequest(DeliveryMonitor("telegram"), connection_pool_size=1)
    async with Bot(tg.token, base_url=tg.base_url, request=request) as bot:
        for steps in range(80):
            call = asyncio.create_task(bot.send_chat_action(chat.id, ChatAction.TYPING))
            for _ in range(steps):
                await asyncio.sleep(0)
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
        await bot.send_message(chat.id, "still connected")
    assert [m.text for m in chat.bot_messages()] == ["still connected"]
    assert len(tg.calls_to("sendChatAction")) <= 80


async def test_writes_tell_delivery_how_they_ended_and_reads_do_not(tg: TelegramStandIn) -> None:
    chat = tg.private_chat(tg.add_user("Alice"))
    delivery = DeliveryMonitor("telegram", failures=1, seconds=0)
    async with Bot(tg.token, base_url=tg.base_url, request=TelegramRequest(delivery)) as bot:
        tg.fail_writes(500)
        with pytest.raises(NetworkError):
            await bot.send_message(chat.id, "lost")
        await bot.get_chat(chat.id)  # a read that works says nothing about writes
        assert not delivery.healthy
        tg.fail_writes(None)
        tg.fail_next("sendMessage", 429, retry_after=1)
        with pytest.raises(RetryAfter):
            await bot.send_message(chat.id, "slow down")
        assert not delivery.healthy  # "slow down" is no sign of recovery
        tg.fail_next("sendMessage", 403)
        with pytest.raises(Forbidden):
            await bot.send_message(chat.id, "blocked")
        assert delivery.healthy  # the platform answered: it works, this user refuses
