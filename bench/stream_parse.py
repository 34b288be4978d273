"""Benchmark the M2-her SSE parser and the client's per-request overhead.

Run: ``.venv/bin/python bench/stream_parse.py``. The fake M2-her runs in a child process
(so its work does not share the GIL with the client), and every figure is compared
with a bare aiohttp request to the same fake in the same run:

* ``parse_mb_s``: SSE megabytes per second through the decoder and reply assembler,
  in memory (no sockets);
* ``client_stream_mb_s`` vs ``bare_stream_mb_s``: a long streamed reply read by the
  client vs read as raw bytes by aiohttp (``stream_ratio`` = client time / bare time);
* ``client_request_ms`` vs ``bare_request_ms``: median time of one short non-streaming
  call (``client_overhead_ratio`` = client / bare, target <= 1.3).

The last line of output is one JSON object with all figures.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import Any

import aiohttp
from fake_process import fake_in_child, serve_until_stdin_closes

from bot.llm.client import M2HerClient
from bot.llm.fake import FakeM2Her, Reply
from bot.llm.response import ReplyAssembler
from bot.llm.sse import SSEDecoder
from bot.llm.types import ChatMessage, ChatRequest, Role

KEY = "sk-bench"
PATH = "/v1/text/chatcompletion_v2"
LONG_TEXT = "".join(f"The lamp turns, wave {i} breaks on the rocks. " for i in range(2500))
STREAM_RUNS = 6  # per side
REQUESTS = 1000  # per side
TARGET = 1.3

REQUEST = ChatRequest(
    (
        ChatMessage(Role.SYSTEM, "Aria keeps the lighthouse on Gull Island.", "Aria"),
        ChatMessage(Role.USER, "Evening! Mind if I dry off by your stove?", "Sam"),
    ),
    temperature=1.0,
    top_p=0.95,
)


async def serve(long_replies: int) -> None:
    """Child process: a fake whose first ``long_replies`` answers are LONG_TEXT."""
    async with FakeM2Her(api_key=KEY, chunk_chars=64, rpm=10**9) as fake:
        fake.enqueue(*[Reply(LONG_TEXT)] * long_replies)
        await serve_until_stdin_closes(fake)


def parse_throughput(body: bytes, rounds: int = 5) -> float:
    """Best MB/s of decoding and assembling ``body`` in 16 KiB reads."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        decoder = SSEDecoder()
        assembler = ReplyAssembler(trace_id=None, streaming=True)
        for i in range(0, len(body), 16384):
            for payload in decoder.feed(body[i : i + 16384]):
                assembler.add(json.loads(payload))
        for payload in decoder.close():
            assembler.add(json.loads(payload))
        assert assembler.result().text == LONG_TEXT
        best = min(best, time.perf_counter() - started)
    return len(body) / best / 1e6


async def bare_stream(session: aiohttp.ClientSession, url: str) -> bytes:
    body = REQUEST.to_wire(stream=True)
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"}) as r:
        return await r.read()


async def bare_request(session: aiohttp.ClientSession, url: str) -> Any:
    body = REQUEST.to_wire(stream=False)
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"}) as r:
        return json.loads(await r.read())


async def client_stream(client: M2HerClient) -> str:
    stream = client.stream(REQUEST)
    async for _ in stream:
        pass
    return stream.result.text


async def measure(base_url: str) -> dict[str, float]:
    url = base_url + PATH
    async with aiohttp.ClientSession() as session, M2HerClient(KEY, base_url=base_url) as client:
        # Long streams first: the fake answers exactly 2 * STREAM_RUNS of them with LONG_TEXT.
        bare_times, client_times, size = [], [], 0
        for _ in range(STREAM_RUNS):
            started = time.perf_counter()
            size = len(await bare_stream(session, url))
            bare_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert await client_stream(client) == LONG_TEXT
            client_times.append(time.perf_counter() - started)
        # Short requests, interleaved in small batches so drift hits both sides alike.
        bare_each, client_each = [], []
        for _ in range(20):  # warm-up
            await bare_request(session, url)
            await client.complete(REQUEST)
        for _ in range(REQUESTS // 10):
            for _ in range(10):
                started = time.perf_counter()
                await bare_request(session, url)
                bare_each.append(time.perf_counter() - started)
            for _ in range(10):
                started = time.perf_counter()
                await client.complete(REQUEST)
                client_each.append(time.perf_counter() - started)
    bare_stream_s, client_stream_s = min(bare_times), min(client_times)
    bare_ms = statistics.median(bare_each) * 1e3
    client_ms = statistics.median(client_each) * 1e3
    return {
        "bare_stream_mb_s": size / bare_stream_s / 1e6,
        "client_stream_mb_s": size / client_stream_s / 1e6,
        "stream_ratio": client_stream_s / bare_stream_s,
        "stream_bytes": size,
        "bare_request_ms": bare_ms,
        "client_request_ms": client_ms,
        "client_overhead_ratio": client_ms / bare_ms,
    }


async def main() -> dict[str, Any]:
    async with fake_in_child(__file__, str(STREAM_RUNS * 2)) as base_url:
        figures = await measure(base_url)
    async with FakeM2Her(chunk_chars=64) as fake, aiohttp.ClientSession() as session:
        fake.enqueue(Reply(LONG_TEXT))
        sse_body = await bare_stream(session, fake.base_url + PATH)
    parse_mb_s = parse_throughput(sse_body)
    return {
        "parse_mb_s": parse_mb_s,
        "parse_vs_bare_stream": parse_mb_s / figures["bare_stream_mb_s"],
        **figures,
        "target_overhead_ratio": TARGET,
        "meets_target": figures["client_overhead_ratio"] <= TARGET,
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        asyncio.run(serve(int(sys.argv[2])))
    else:
        results = asyncio.run(main())
        print(f"SSE parser: {results['parse_mb_s']:.1f} MB/s in memory")
        print(
            f"Long stream ({results['stream_bytes'] / 1e6:.2f} MB): client "
            f"{results['client_stream_mb_s']:.1f} MB/s, bare aiohttp "
            f"{results['bare_stream_mb_s']:.1f} MB/s (ratio {results['stream_ratio']:.2f})"
        )
        print(
            f"Short request: client {results['client_request_ms']:.3f} ms, bare aiohttp "
            f"{results['bare_request_ms']:.3f} ms (ratio {results['client_overhead_ratio']:.2f}, "
            f"target <= {TARGET})"
        )
        rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}
        print(json.dumps(rounded))
