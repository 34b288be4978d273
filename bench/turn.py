"""Benchmark one conversation turn through the manager against a floor measured in the same run.

Run: ``.venv/bin/python bench/turn.py``. The fake M2-her answers at once from a child process
(the real API is elsewhere too); the manager writes to a real SQLite file and replies into a
null ``ReplySink``.

The floor of one turn is one bare aiohttp POST of a turn's request body to the same fake
(the stream read to the end) plus one raw ``sqlite3`` insert + commit, with the same pragmas
as Troupe's storage. Blocks of floors and blocks of turns alternate, so that a drift of the
machine during the run hits both alike. Figures:

* ``p50_ratio`` / ``p99_ratio``: turn latency over floor latency, one conversation at a time
  (target p50 <= 2.5);
* ``p50_ratio_100`` / ``p99_ratio_100``: the same with 100 conversations talking at once
  (the floor is run with the same concurrency);
* ``turns_per_s_1000``: turns per second with 1,000 conversations at once (target >= 300);
* ``history_ratio``: the turn in a conversation holding 1,000,000 stored messages over the
  same turn in one holding 100 (target <= 1.2);
* ``lorebook_ratio``: the turn of a character with a 2,000-entry lorebook (names, places and
  words as keys, some whole-word, some regex; scan depth 4) over the same turn of the same
  character without it (target <= 1.2).

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from fake_process import fake_in_child, serve_until_stdin_closes

from bot.characters.library import CharacterLibrary
from bot.characters.loader import load_characters
from bot.characters.lore.book import Lorebook, compile_book
from bot.characters.lore.spec import LorebookSpec
from bot.characters.prompt import HistoryEntry, build_prompt
from bot.characters.schema import Character
from bot.conversation.incoming import ConversationKey, Incoming
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.conversation.turn import TurnStatus
from bot.llm.client import M2HerClient
from bot.llm.fake import FakeM2Her
from bot.storage import Storage, open_storage

KEY = "sk-bench"
PATH = "/v1/text/chatcompletion_v2"
CHARACTERS = Path(__file__).resolve().parents[1] / "characters"
#: The window each turn loads; equal for every scenario so only the stored volume differs.
HISTORY_LIMIT = 40
BIG_HISTORY = 1_000_000
SMALL_HISTORY = 100


class NullSink:
    """A ReplySink that drops everything."""

    async def begin(self, character: Character) -> None:
        pass

    async def delta(self, text: str) -> None:
        pass

    async def finish(self, text: str) -> Sequence[str]:
        return ()

    async def retract(self, replacement: str | None = None) -> None:
        pass

    async def notice(self, text: str) -> None:
        pass


async def serve() -> None:
    """Child process: a fake M2-her with no rate limit."""
    async with FakeM2Her(api_key=KEY, rpm=10**9, tpm=10**12) as fake:
        await serve_until_stdin_closes(fake)


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Floor:
    """One bare aiohttp POST of ``body`` plus one raw sqlite3 insert + commit."""

    def __init__(self, session: aiohttp.ClientSession, url: str, body: Any, path: Path) -> None:
        self._session = session
        self._url = url
        self._body = body
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, c INT, x TEXT)")

    async def __call__(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with self._session.post(self._url, json=self._body, headers=headers) as response:
            await response.read()
        self._db.execute("BEGIN")
        self._db.execute("INSERT INTO t (c, x) VALUES (?, ?)", (n, "floor message text"))
        self._db.execute("COMMIT")


async def timed_rounds(
    action: Callable[[int, int], Awaitable[None]], workers: int, rounds: int, first: int = 0
) -> tuple[list[float], float]:
    """Run ``action(worker, round)`` for rounds ``first`` … in each of ``workers`` tasks."""
    latencies: list[float] = []

    async def worker(w: int) -> None:
        for r in range(first, first + rounds):
            started = time.perf_counter()
            await action(w, r)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    return latencies, time.perf_counter() - started


def fill_history(database: Path, conversation_id: int, count: int) -> None:
    """Store ``count`` alternating messages in one conversation, straight through sqlite3."""
    now = datetime.now(UTC).isoformat(sep=" ")
    db = sqlite3.connect(database)
    rows = (
        (
            conversation_id,
            "user" if i % 2 == 0 else "assistant",
            "sam" if i % 2 == 0 else "character:aria",
            "Sam" if i % 2 == 0 else "Aria",
            f"old message {i}",
            None if i % 2 == 0 else "aria",
            now,
        )
        for i in range(count)
    )
    db.executemany(
        "INSERT INTO messages (conversation_id, role, author_id, author_name, text,"
        " character_id, created_at, input_flagged, input_sensitive_type, edited)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0)",
        rows,
    )
    db.commit()
    db.close()


async def measure(base_url: str, workdir: Path) -> dict[str, Any]:
    database = workdir / "turn.sqlite3"
    storage = await open_storage(f"sqlite+aiosqlite:///{database}")
    characters = load_characters(CHARACTERS)
    settings = ManagerSettings(default_character="aria", history_limit=HISTORY_LIMIT)
    figures: dict[str, Any] = {}
    async with (
        M2HerClient(KEY, base_url=base_url) as client,
        aiohttp.ClientSession() as session,
    ):
        manager = ConversationManager(
            storage=storage, characters=characters, client=client, settings=settings
        )
        sink = NullSink()

        async def turn(chat: str, n: int, on: ConversationManager | None = None) -> None:
            incoming = Incoming(
                key=ConversationKey("bench", chat),
                author_id="sam",
                author_name="Sam",
                text=f"Message number {n}: how is the lighthouse tonight?",
                is_direct=True,
            )
            outcome = await (on or manager).handle(incoming, sink)
            assert outcome.status is TurnStatus.ANSWERED, outcome

        # Warm up, and take the request body of the next turn there for the floor.
        for n in range(30):
            await turn("warm-up", n)
        body = await next_request_body(storage, manager.default_character, "warm-up")
        floor = Floor(session, base_url + PATH, body, workdir / "floor.sqlite3")
        for n in range(30):
            await floor(n)

        async def floor_action(w: int, r: int) -> None:
            await floor(r)

        # (workers, blocks, rounds per block): blocks of floor and of turns alternate, so a
        # drift of the machine hits both alike, and each block is long enough to run warm.
        for workers, blocks, rounds, suffix in ((1, 8, 50, ""), (100, 6, 1, "_100")):

            async def turn_action(w: int, r: int, suffix: str = suffix) -> None:
                await turn(f"c{suffix}-{w}", r)

            floor_lat: list[float] = []
            turn_lat: list[float] = []
            for block in range(blocks):
                first = block * rounds
                floor_lat += (await timed_rounds(floor_action, workers, rounds, first))[0]
                turn_lat += (await timed_rounds(turn_action, workers, rounds, first))[0]
            figures[f"floor_p50_ms{suffix}"] = statistics.median(floor_lat) * 1e3
            figures[f"turn_p50_ms{suffix}"] = statistics.median(turn_lat) * 1e3
            figures[f"p50_ratio{suffix}"] = statistics.median(turn_lat) / statistics.median(
                floor_lat
            )
            figures[f"p99_ratio{suffix}"] = percentile(turn_lat, 0.99) / percentile(floor_lat, 0.99)

        async def thousand(w: int, r: int) -> None:
            await turn(f"k-{w}", r)

        turns, elapsed = await timed_rounds(thousand, 1000, 3)
        figures["turns_per_s_1000"] = len(turns) / elapsed

        # The same turn with 100 vs 1,000,000 messages stored in the conversation.
        small = await storage.conversation("bench", "small", default_character="aria")
        big = await storage.conversation("bench", "big", default_character="aria")
        await manager.aclose()  # its background memory updates end before the storage
        await storage.close()
        fill_history(database, small.id, SMALL_HISTORY)
        started = time.perf_counter()
        fill_history(database, big.id, BIG_HISTORY)
        figures["fill_1m_s"] = time.perf_counter() - started
        storage = await open_storage(f"sqlite+aiosqlite:///{database}")
        manager = ConversationManager(
            storage=storage, characters=characters, client=client, settings=settings
        )
        small_lat: list[float] = []
        big_lat: list[float] = []
        for n in range(200):  # interleaved, so drift hits both alike
            for chat, samples in (("small", small_lat), ("big", big_lat)):
                started = time.perf_counter()
                await turn(chat, n)
                samples.append(time.perf_counter() - started)
        figures["turn_p50_ms_100_stored"] = statistics.median(small_lat) * 1e3
        figures["turn_p50_ms_1m_stored"] = statistics.median(big_lat) * 1e3
        figures["history_ratio"] = statistics.median(big_lat) / statistics.median(small_lat)

        # The same turn with and without a 2,000-entry lorebook, interleaved.
        aria = characters.get("aria")
        with_book = aria.model_copy()
        with_book.attach_lorebooks((big_lorebook(LOREBOOK_ENTRIES),))
        lore_manager = ConversationManager(
            storage=storage,
            characters=CharacterLibrary([with_book]),
            client=client,
            settings=settings,
        )
        plain_lat: list[float] = []
        lore_lat: list[float] = []
        for n in range(40):  # warm-up: both windows fill
            await turn("plain", n)
            await turn("lore", n, lore_manager)
        for n in range(40, 240):
            started = time.perf_counter()
            await turn("plain", n)
            plain_lat.append(time.perf_counter() - started)
            started = time.perf_counter()
            await turn("lore", n, lore_manager)
            lore_lat.append(time.perf_counter() - started)
        figures["turn_p50_ms_without_lorebook"] = statistics.median(plain_lat) * 1e3
        figures["turn_p50_ms_with_lorebook"] = statistics.median(lore_lat) * 1e3
        figures["lorebook_ratio"] = statistics.median(lore_lat) / statistics.median(plain_lat)
        await manager.aclose()
        await lore_manager.aclose()
        await storage.close()
    return figures


#: Entries of the lorebook ``lorebook_ratio`` measures.
LOREBOOK_ENTRIES = 2000
_SYLLABLES = ("al", "bar", "cor", "dun", "el", "fen", "gar", "hol", "ith", "jor", "kal", "lun")
_WORDS = ("reef", "tower", "harbour", "storm", "lantern", "bell", "market", "chapel", "mill")


def big_lorebook(entries: int) -> Lorebook:
    """A book of ``entries`` entries shaped like a large real one: a name, a place and a word
    as keys (some whole-word, some regex), a paragraph of content; a few fire on the bench's
    messages ("lighthouse", "tonight")."""
    rng = random.Random(7)

    def name() -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).title()

    made = []
    for i in range(entries):
        person, place = name(), f"the {name()} {rng.choice(_WORDS)}"
        keys = [person, place, f"{rng.choice(_WORDS)}{i}"]
        if i % 100 == 0:
            keys.append(f"/{person.lower()}'?s? (ship|boat)/i")
        if i % 400 == 0:
            keys.append("lighthouse" if i % 800 == 0 else "tonight")
        made.append(
            {
                "keys": keys,
                "match_whole_words": i % 3 == 0,
                "content": f"{person} lives near {place}. " * 4,
                "insertion_order": i % 50,
            }
        )
    spec = LorebookSpec.model_validate({"scan_depth": 4, "entries": made})
    return compile_book(spec, "bench")[0]


async def next_request_body(storage: Storage, character: Character, chat: str) -> Any:
    """The body the next turn in ``chat`` sends (its window is full, as in every turn timed)."""
    conversation = await storage.conversation("bench", chat, default_character=character.id)
    window = await storage.history_window(conversation.id, HISTORY_LIMIT)
    history = [HistoryEntry(m.role, m.author_name, m.text) for m in window]
    prompt = build_prompt(character, history, user_name="Sam")
    return prompt.request.to_wire(stream=True)


async def main() -> dict[str, Any]:
    async with fake_in_child(__file__) as base_url:
        with tempfile.TemporaryDirectory() as workdir:
            figures = await measure(base_url, Path(workdir))
    figures["targets"] = {
        "p50_ratio": "<= 2.5",
        "turns_per_s_1000": ">= 300",
        "history_ratio": "<= 1.2",
        "lorebook_ratio": "<= 1.2",
    }
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        asyncio.run(serve())
    else:
        results = asyncio.run(main())
        print(
            f"one conversation: turn p50 {results['turn_p50_ms']:.2f} ms vs floor "
            f"{results['floor_p50_ms']:.2f} ms (p50 x{results['p50_ratio']:.2f}, "
            f"p99 x{results['p99_ratio']:.2f})"
        )
        print(
            f"100 conversations: turn p50 {results['turn_p50_ms_100']:.2f} ms vs floor "
            f"{results['floor_p50_ms_100']:.2f} ms (p50 x{results['p50_ratio_100']:.2f}, "
            f"p99 x{results['p99_ratio_100']:.2f})"
        )
        print(f"1,000 conversations: {results['turns_per_s_1000']:.0f} turns/s")
        print(
            f"history: {results['turn_p50_ms_1m_stored']:.2f} ms with 1,000,000 stored vs "
            f"{results['turn_p50_ms_100_stored']:.2f} ms with 100 "
            f"(x{results['history_ratio']:.2f})"
        )
        print(
            f"lorebook: {results['turn_p50_ms_with_lorebook']:.2f} ms with 2,000 entries vs "
            f"{results['turn_p50_ms_without_lorebook']:.2f} ms without "
            f"(x{results['lorebook_ratio']:.2f})"
        )
        rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}
        print(json.dumps(rounded))
