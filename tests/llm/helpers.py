"""Helpers for the M2-her tests: requests, and a raw loopback server for exact bytes."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.llm.client import API_PATHS, M2HerClient
from bot.llm.errors import M2HerError
from bot.llm.types import ChatMessage, ChatRequest, ChatResult, Role


def chat_request(
    text: str = "Evening! Mind if I dry off by your stove?", **kwargs: Any
) -> ChatRequest:
    """A small role-play request: Aria's persona, then Sam's line."""
    return ChatRequest(
        (
            ChatMessage(Role.SYSTEM, "Aria keeps the lighthouse on Gull Island.", "Aria"),
            ChatMessage(Role.USER, text, "Sam"),
        ),
        **kwargs,
    )


async def stream_all(client: M2HerClient, request: ChatRequest) -> tuple[list[str], ChatResult]:
    """Every delta of a streamed reply, and its result."""
    stream = client.stream(request)
    deltas = [delta async for delta in stream]
    return deltas, stream.result


async def reply(client: M2HerClient, request: ChatRequest, *, streaming: bool) -> ChatResult:
    """A reply through :meth:`~M2HerClient.complete` or :meth:`~M2HerClient.stream`."""
    if streaming:
        return (await stream_all(client, request))[1]
    return await client.complete(request)


async def stream_until_error(
    client: M2HerClient, request: ChatRequest
) -> tuple[list[str], M2HerError]:
    """The deltas a stream yielded before it failed, and its error.

    Also checks that the failed stream offers no result.
    """
    stream = client.stream(request)
    deltas: list[str] = []
    try:
        async for delta in stream:
            deltas.append(delta)
    except M2HerError as error:
        try:
            _ = stream.result
        except RuntimeError:
            return deltas, error
        raise AssertionError("a failed stream has a result") from error
    raise AssertionError("the stream did not fail")


def sse(*events: dict[str, Any] | str, crlf: bool = False) -> bytes:
    """SSE bytes: one ``data:`` event per item (dicts as compact JSON)."""
    end = "\r\n" if crlf else "\n"
    lines = []
    for event in events:
        payload = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
        lines.append(f"data: {payload}{end}{end}")
    return "".join(lines).encode()


def chunk(content: str | None, *, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """A delta chunk in the documented shape."""
    delta: dict[str, Any] = {"role": "assistant"}
    if content is not None:
        delta["content"] = content
    choice: dict[str, Any] = {"index": 0, "delta": delta}
    if finish_reason:
        choice["finish_reason"] = finish_reason
    return {"id": "a" * 32, "object": "chat.completion.chunk", "choices": [choice], **extra}


def summary(text: str, *, finish_reason: str = "stop", **extra: Any) -> dict[str, Any]:
    """The closing summary event in the documented shape."""
    return {
        "id": "a" * 32,
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": {"content": text}}],
        "usage": {"total_tokens": 42},
        "base_resp": {"status_code": 0, "status_msg": ""},
        **extra,
    }


@dataclass
class RawResponse:
    """One scripted raw answer: body ``pieces`` written (and flushed) one by one."""

    pieces: Sequence[bytes]
    content_type: str = "text/event-stream"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: Pause after each piece so each one reaches the client as its own read.
    gap: float = 0.002
    #: Abort the connection instead of ending the body cleanly.
    drop: bool = False


class RawServer:
    """A loopback HTTP server that answers with exact, scripted body bytes."""

    def __init__(self) -> None:
        self.responses: deque[RawResponse] = deque()
        self.bodies: list[Any] = []
        self.paths: list[str] = []
        app = web.Application()
        for path in API_PATHS.values():
            app.router.add_post(path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self.base_url = ""

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        await self._runner.cleanup()

    def add(self, *responses: RawResponse) -> None:
        self.responses.extend(responses)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.json())
        self.paths.append(request.path)
        raw = self.responses.popleft()
        response = web.StreamResponse(status=raw.status, headers=raw.headers)
        response.headers["Content-Type"] = raw.content_type
        await response.prepare(request)
        for piece in raw.pieces:
            await response.write(piece)
            await asyncio.sleep(raw.gap)
        if raw.drop:
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        await response.write_eof()
        return response
