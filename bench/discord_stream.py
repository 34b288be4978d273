"""Benchmark a 3,000-character streamed reply on Discord.

Run: ``.venv/bin/python bench/discord_stream.py``. The adapter runs unmodified discord.py
against the Discord stand-in on 127.0.0.1, with Discord-like rate limits switched on (five
message operations per five seconds per webhook and per channel) and the adapter's production
edit cadence (``DISCORD_EDIT_INTERVAL``, 1.2 s). The fake M2-her streams the reply in
12-character chunks ``--chunk-delay`` seconds apart (about 5 s for the whole reply by default).

Figures:

* ``edits``: how many edits the reply cost, and ``sends`` how many messages it posted;
* ``longest_edit_gap_s`` / ``shortest_edit_gap_s``: between two consecutive updates of the
  visible reply (sends and edits, which share the channel's allowance);
* ``first_text_s``: from the engine receiving the model's first token to the first visible
  text;
* ``rate_limited``: how many calls Discord answered with 429 (the target is 0);
* ``messages``: how many messages the reply became (2,000 characters each at most);
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
from bot.conversation.manager import ConversationManager, ManagerSettings  # noqa: E402
from bot.llm.client import M2HerClient  # noqa: E402
from bot.llm.fake import FakeM2Her  # noqa: E402
from bot.llm.fake.script import Reply  # noqa: E402
from bot.platforms.discord import DiscordConfig, create_client  # noqa: E402
from bot.platforms.discord.client import pointed_at  # noqa: E402
from bot.storage import open_storage  # noqa: E402
from tests.standins.discord import DiscordStandIn, loopback_only_trace  # noqa: E402

CHARACTERS = ROOT / "characters"
SEND = "POST /webhooks/{webhook_id}/{webhook_token}"
EDIT = "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"
ENDING = " That is the whole story."


def reply_text(length: int = 3000) -> str:
    """Prose of about ``length`` characters in paragraphs, ending in :data:`ENDING`."""
    sentences = (f"Sentence {n} of the tale goes on a little further." for n in itertools.count())
    text = ""
    for index, sentence in enumerate(sentences):
        text += sentence + ("\n\n" if index % 6 == 5 else " ")
        if len(text) >= length - len(ENDING):
            return text.rstrip() + ENDING
    raise AssertionError("unreachable")


async def main(chunk_delay: float) -> dict[str, Any]:
    text = reply_text()
    async with DiscordStandIn() as standin, FakeM2Her(chunk_chars=12) as fake:
        guild = standin.create_guild("Tavern")
        channel = standin.create_text_channel(guild, "general")
        alice = standin.create_member(guild, "alice", global_name="Alice")
        for route_set in ((SEND, EDIT), ("POST /channels/{channel_id}/messages",)):
            standin.rate_limits.limit(*route_set, limit=5, per=5.0)
        config = DiscordConfig(
            token=standin.token,
            api_base_url=standin.api_base_url,
            gateway_url=standin.gateway_url,
            guild_ready_timeout=0.05,
        )
        with tempfile.TemporaryDirectory() as folder, pointed_at(config):
            storage = await open_storage(f"sqlite+aiosqlite:///{folder}/bench.sqlite3")
            async with M2HerClient("sk-bench", base_url=fake.base_url) as llm:
                manager = ConversationManager(
                    storage=storage,
                    characters=load_characters(CHARACTERS),
                    client=llm,
                    settings=ManagerSettings(default_character="bram"),
                )
                client = create_client(
                    manager, config, report=lambda _: None, http_trace=loopback_only_trace()
                )
                first_token: list[float] = []
                make_sink = client.replies.sink
                client.replies.sink = lambda target: FirstTokenSink(  # type: ignore[method-assign,assignment,return-value]
                    make_sink(target), first_token
                )
                running = asyncio.create_task(client.start(config.token))
                try:
                    await asyncio.wait_for(client.wait_until_ready(), 10)
                    fake.enqueue(Reply(text=text, chunk_delay=chunk_delay))
                    asked = await standin.user_says(
                        channel, alice, "a tale", mentions=[standin.bot]
                    )
                    await standin.wait_for(
                        lambda: "".join(m.content for m in standin.bot_messages(channel)).endswith(
                            ENDING
                        ),
                        timeout=120,
                        what="the whole reply",
                    )
                finally:
                    await client.close()
                    await asyncio.gather(running, return_exceptions=True)
            await storage.close()
        messages = [m for m in standin.bot_messages(channel) if m.id > asked.id]
        times = sorted([m.created_at for m in messages] + [e.at for m in messages for e in m.edits])
        gaps = [b - a for a, b in itertools.pairwise(times)]
        return {
            "reply_chars": len(text),
            "edits": sum(len(m.edits) for m in messages),
            "sends": len(messages),
            "longest_edit_gap_s": round(max(gaps, default=0.0), 3),
            "shortest_edit_gap_s": round(min(gaps, default=0.0), 3),
            "first_text_s": round(messages[0].created_at - first_token[0], 3),
            "rate_limited": sum(1 for c in standin.calls if c.status == 429),
            "messages": len(messages),
            "exact": "\n".join(m.content for m in messages).split() == text.split(),
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-delay", type=float, default=0.02)
    figures = asyncio.run(main(parser.parse_args().chunk_delay))
    for name, value in figures.items():
        print(f"{name}: {value}")
    print(json.dumps(figures))
