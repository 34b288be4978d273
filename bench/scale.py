"""Benchmark scaling out: turns per second with 1 and 2 bot processes on PostgreSQL, and with
1 process on SQLite, over the same workload; and how long turns wait for their conversation.

Run: ``.venv/bin/python bench/scale.py`` (PostgreSQL at ``TROUPE_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``; a scratch database is created and dropped).

Workload: CHATS conversations, MESSAGES messages each, sent at once. Each bot process is a real
process (``tests/conversation/hammer.py``) with its own manager; with two, each sends half of
every conversation's messages, so both contend for the same conversations. The fake M2-her
answers at once, in this process. Figures: ``*_messages_per_s`` (all messages handled, answered
alone or together with others), ``*_turns_per_s`` (model calls), ``pg2_vs_pg1`` and
``sqlite_vs_pg1`` ratios, ``*_lock_wait_p99_ms``. The last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scratch_postgres import scratch_postgres

from bot.llm.fake import FakeM2Her
from bot.storage import open_storage

REPO = Path(__file__).resolve().parents[1]
CHATS = 40
MESSAGES = 10  # per conversation, in all


async def run_bots(database_url: str, fake_url: str, processes: int) -> dict[str, Any]:
    """Run the workload split over ``processes`` bot processes; returns combined figures."""
    await (await open_storage(database_url)).close()  # migrate before the race

    async def bot(name: str) -> dict[str, Any]:
        child = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.conversation.hammer", database_url, fake_url),
            *(name, str(CHATS), str(MESSAGES // processes), "0"),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await child.communicate()
        assert child.returncode == 0, f"bot {name} failed"
        figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return figures

    started = time.perf_counter()
    results = await asyncio.gather(*(bot(f"bot{n}") for n in range(processes)))
    wall = time.perf_counter() - started
    seconds = max(result["seconds"] for result in results)  # the slowest bot's sending span
    messages = sum(sum(result["outcomes"].values()) for result in results)
    turns = sum(result["outcomes"].get("answered", 0) for result in results)
    return {
        "messages": messages,
        "turns": turns,
        "seconds": seconds,
        "wall_seconds": wall,
        "messages_per_s": messages / seconds,
        "turns_per_s": turns / seconds,
        "lock_wait_p99_ms": max(result["wait_p99_s"] for result in results) * 1000,
    }


async def on_postgres(fake_url: str, processes: int) -> dict[str, Any]:
    async with scratch_postgres("troupe_scale") as url:
        return await run_bots(url, fake_url, processes)


async def main() -> dict[str, Any]:
    async with FakeM2Her(rpm=10**9, tpm=10**12) as fake:
        pg1 = await on_postgres(fake.base_url, 1)
        pg2 = await on_postgres(fake.base_url, 2)
        with tempfile.TemporaryDirectory() as folder:
            sqlite = await run_bots(f"sqlite:///{folder}/scale.sqlite3", fake.base_url, 1)
    figures: dict[str, Any] = {"chats": CHATS, "messages_per_chat": MESSAGES}
    for label, result in (("pg1", pg1), ("pg2", pg2), ("sqlite1", sqlite)):
        for key, value in result.items():
            figures[f"{label}_{key}"] = value
    figures["pg2_vs_pg1"] = pg2["messages_per_s"] / pg1["messages_per_s"]
    figures["sqlite_vs_pg1"] = sqlite["messages_per_s"] / pg1["messages_per_s"]
    return figures


if __name__ == "__main__":
    results = asyncio.run(main())
    for label, title in (
        ("pg1", "PostgreSQL, 1 process"),
        ("pg2", "PostgreSQL, 2 processes"),
        ("sqlite1", "SQLite, 1 process"),
    ):
        print(
            f"{title}: {results[f'{label}_messages_per_s']:.0f} messages/s, "
            f"{results[f'{label}_turns_per_s']:.0f} turns/s, lock wait p99 "
            f"{results[f'{label}_lock_wait_p99_ms']:.1f} ms"
        )
    print(
        f"2 vs 1 PostgreSQL processes: x{results['pg2_vs_pg1']:.2f}; "
        f"SQLite vs PostgreSQL (1 process): x{results['sqlite_vs_pg1']:.2f}"
    )
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}))
