"""A bot process for the multi-process test: one manager hammering shared conversations.

``python -m tests.conversation.hammer DATABASE_URL FAKE_URL NAME CONVERSATIONS MESSAGES
[JITTER]`` sends MESSAGES messages into each of CONVERSATIONS conversations, all at once
(each after a random pause of up to JITTER seconds, default 0.5), through its own
:class:`ConversationManager`, then prints one JSON line: outcome counts, the seconds it took,
and the turns' waits for their conversation. ``bench/scale.py`` uses it too.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bot.characters.loader import load_characters
from bot.characters.schema import Character
from bot.conversation.incoming import ConversationKey, Incoming
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.llm.client import M2HerClient
from bot.observability.metrics import Metrics
from bot.storage import open_storage

CHARACTERS = Path(__file__).resolve().parents[2] / "characters"


class WaitRecorder(Metrics):
    """Metrics that also keep every turn's wait for its conversation, for percentiles."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def turn_waited(self, platform: str, seconds: float) -> None:
        super().turn_waited(platform, seconds)
        self.waits.append(seconds)


class QuietSink:
    async def begin(self, character: Character) -> None:
        pass

    async def delta(self, text: str) -> None:
        pass

    async def finish(self, text: str) -> Sequence[str]:
        return ()

    async def retract(self, replacement: str | None = None) -> None:
        pass

    async def notice(self, text: str) -> None:
        print(f"notice: {text}", file=sys.stderr)


async def hammer(
    database_url: str, fake_url: str, name: str, chats: int, messages: int, jitter: float
) -> None:
    storage = await open_storage(database_url)
    outcomes: Counter[str] = Counter()
    metrics = WaitRecorder()
    async with M2HerClient("test-key", base_url=fake_url) as client:
        manager = ConversationManager(
            storage=storage,
            characters=load_characters(CHARACTERS),
            client=client,
            settings=ManagerSettings(default_character="aria"),
            metrics=metrics,
        )
        rng = random.Random(name)

        async def say(chat: int, n: int) -> None:
            await asyncio.sleep(rng.random() * jitter)
            incoming = Incoming(
                key=ConversationKey("hammer", f"chat-{chat}"),
                author_id=name,
                author_name=name,
                text=f"{name} says {n} in chat-{chat}",
                is_direct=True,
            )
            outcomes[(await manager.handle(incoming, QuietSink())).status] += 1

        started = time.perf_counter()
        await asyncio.gather(*(say(c, n) for c in range(chats) for n in range(messages)))
        seconds = time.perf_counter() - started
        waits = sorted(metrics.waits)
    await storage.close()
    p99 = waits[min(len(waits) - 1, round(0.99 * (len(waits) - 1)))] if waits else 0.0
    print(json.dumps({"outcomes": dict(outcomes), "seconds": seconds, "wait_p99_s": p99}))


if __name__ == "__main__":
    url, fake, who, chats, count = sys.argv[1:6]
    jitter = float(sys.argv[6]) if len(sys.argv) > 6 else 0.5
    asyncio.run(hammer(url, fake, who, int(chats), int(count), jitter))
