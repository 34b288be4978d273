"""Benchmark a 6,000-character streamed reply on Telegram, in a private chat and in a group.

Run: ``.venv/bin/python bench/telegram_stream.py``. The adapter runs unmodified
python-telegram-bot against the Telegram Bot API stand-in on 127.0.0.1, with Telegram-like
flood control switched on and the adapter's production cadences (one operation a second in a
private chat, one every three seconds in a group). The fake M2-her streams the reply in
12-character chunks at ``--chunk-delay`` seconds apart (about 5 s for the whole reply by
default, a brisk model).

Figures per chat kind:

* ``api_calls``: Bot API calls the reply cost (polling excluded), and ``by_method``;
* ``rate_limited``: how many of them Telegram answered with 429 (the target is 0);
* ``min_edit_gap_s``: the shortest gap between two updates of the visible reply (edits, or
  draft updates in the private chat; sends included, since they share the chat's allowance);
* ``first_text_s``: from the engine receiving the model's first token to the first visible
  text (a draft or a message);
* ``messages``: how many messages the reply became (4,096 characters each at most);
* ``exact``: whether the visible messages are exactly the model's reply.

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stand-in lives in tests/

from first_token import FirstTokenSink  # noqa: E402

from bot.characters.loader import load_characters  # noqa: E402
from bot.conversation.incoming import ConversationKey  # noqa: E402
from bot.conversation.manager import ConversationManager, ManagerSettings  # noqa: E402
from bot.llm.client import M2HerClient  # noqa: E402
from bot.llm.fake import FakeM2Her  # noqa: E402
from bot.llm.fake.script import Reply  # noqa: E402
from bot.platforms.telegram import TelegramBot, TelegramConfig  # noqa: E402
from bot.platforms.telegram.transport import ChatTarget  # noqa: E402
from bot.storage import open_storage  # noqa: E402
from tests.standins.telegram import Chat, RateLimit, TelegramStandIn  # noqa: E402

PARAGRAPH = (
    "Bram sets down the mug, leans on the bar and lowers his voice as the rain picks up. "
    "The story he tells is an old one, about a bridge that was never finished and the "
    "three kingdoms that still argue over whose fault that was. "
)
#: Engine events may pass through these methods; polling is not part of a reply's cost.
NOT_A_REPLY = {"getUpdates", "getMe", "setMyCommands", "deleteWebhook"}


def reply_text(length: int = 6000) -> str:
    """A reply of about ``length`` characters in paragraphs, as a model writes."""
    paragraph = (PARAGRAPH * 4).strip()
    count = length // (len(paragraph) + 2) + 1
    return "\n\n".join([paragraph] * count)[:length].rstrip()


async def measure(
    tg: TelegramStandIn,
    bot: TelegramBot,
    fake: FakeM2Her,
    chat: Chat,
    say: str,
    reply: Reply,
) -> dict[str, Any]:
    """Stream ``reply`` as the answer to ``say`` in ``chat``; return the figures."""
    text = reply.text or ""
    first_token: list[float] = []
    make_sink = bot.replies.sink

    def timed(key: ConversationKey, target: ChatTarget, *, private: bool) -> Any:
        return FirstTokenSink(make_sink(key, target, private=private), first_token)

    bot.replies.sink = timed  # type: ignore[method-assign]
    mark = len(tg.calls)
    fake.enqueue(reply)
    user = next(iter(chat.members.values()))
    tg.user_says(chat, user, say)
    await tg.wait_until(
        lambda: "\n\n".join(m.text for m in chat.bot_messages()) == text,
        timeout=120,
        what="the whole reply",
    )
    bot.replies.sink = make_sink  # type: ignore[method-assign]
    calls = [c for c in tg.calls[mark:] if c.method not in NOT_A_REPLY]
    shown = [
        c
        for c in calls
        if c.ok and c.method in ("sendMessage", "editMessageText", "sendMessageDraft")
    ]
    gaps = [b.at - a.at for a, b in itertools.pairwise(shown)]
    by_method: dict[str, int] = {}
    for call in calls:
        by_method[call.method] = by_method.get(call.method, 0) + 1
    first_visible = min(c.at for c in shown if c.method != "editMessageText") + tg.started_at
    return {
        "api_calls": len(calls),
        "by_method": by_method,
        "rate_limited": sum(1 for c in calls if c.status == 429),
        "min_edit_gap_s": round(min(gaps), 3) if gaps else None,
        "first_text_s": round(first_visible - first_token[0], 3),
        "messages": len(chat.bot_messages()),
        "exact": "\n\n".join(m.text for m in chat.bot_messages()) == text,
    }


async def main(chunk_delay: float) -> dict[str, Any]:
    """Run both scenarios; return their figures."""
    text = reply_text()
    reply = Reply(text=text, chunk_delay=chunk_delay)
    with tempfile.TemporaryDirectory() as folder:
        async with (
            FakeM2Her() as fake,
            M2HerClient("sk-bench", base_url=fake.base_url) as client,
            TelegramStandIn(rate_limit=RateLimit()) as tg,
        ):
            storage = await open_storage(f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}")
            manager = ConversationManager(
                storage=storage,
                characters=load_characters(ROOT / "characters"),
                client=client,
                # Bram has no completion cap of his own, so the reply is not cut.
                settings=ManagerSettings(default_character="bram"),
            )
            config = TelegramConfig(token=tg.token, api_base_url=tg.base_url, poll_timeout=1)
            bot = TelegramBot(manager, config)
            await bot.start()
            try:
                alice, bob = tg.add_user("Alice", "alice"), tg.add_user("Bob", "bob")
                private = await measure(tg, bot, fake, tg.private_chat(alice), "a story?", reply)
                group = tg.group("Tavern", [bob, alice])
                in_group = await measure(tg, bot, fake, group, "@troupe_bot a story?", reply)
            finally:
                await bot.stop()
                await storage.close()
    return {"reply_chars": len(text), "private": private, "group": in_group}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-delay", type=float, default=0.01, help="seconds between chunks")
    figures = asyncio.run(main(parser.parse_args().chunk_delay))
    for kind in ("private", "group"):
        row = figures[kind]
        print(
            f"{kind:8} calls={row['api_calls']:3} 429s={row['rate_limited']} "
            f"min_gap={row['min_edit_gap_s']}s first_text={row['first_text_s']}s "
            f"messages={row['messages']} exact={row['exact']}  {row['by_method']}"
        )
    print(json.dumps(figures))
