"""Bot API requests through :class:`TelegramRequest`: a cancelled caller never costs a pool
connection, and every outcome reaches the platform's delivery monitor."""

from __future__ import annotations

import asyncio
import contextlib

from telegram import Bot
from telegram.constants import ChatAction

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
