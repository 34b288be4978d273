"""The fake M2-her HTTP server (``docs/m2her-api.md`` §12).

It answers ``POST /v1/text/chatcompletion_v2`` like the real API: the auth check,
request validation, the context-window check, the rate limiter, then either the next
scripted item (:mod:`bot.llm.fake.script`), a magic word's fault, or the
deterministic reply of :mod:`bot.llm.fake.reply`. Every business error is HTTP 200
with a non-zero ``base_resp``; every response carries ``Trace-Id`` equal to its ``id``.

``POST /v1/chat/completions`` (the OpenAI-compatible route) takes the same requests and
scripts and answers in that route's shapes (``docs/m2her-api.md`` §10): no summary event
but a closing usage chunk and ``data: [DONE]``, no ``base_resp``, and business errors as
real HTTP statuses with the gateway's ``{"type": "error", …}`` body.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import signal
import time
import uuid
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from bot.llm.errors import STATUS_MESSAGES
from bot.llm.fake.limiter import RateLimiter
from bot.llm.fake.reply import character_name, cut_to_tokens, reply_text
from bot.llm.fake.script import (
    Drop,
    Error,
    HttpError,
    Reply,
    Scripted,
    from_magic_words,
    gateway_error_object,
)
from bot.llm.fake.summary import is_memory_request, memory_reply
from bot.llm.fake.validation import invalid_params, prompt_tokens
from bot.llm.roles import ADVANCED_ROLES
from bot.llm.tokens import estimate_text_tokens
from bot.llm.types import MODEL

PATH = "/v1/text/chatcompletion_v2"
#: The OpenAI-compatible route (``MINIMAX_API_STYLE=openai``).
OPENAI_PATH = "/v1/chat/completions"
#: The HTTP status the OpenAI-compatible route gives each API code. Assumed, apart from
#: 2013 → 400 and 1000 → 500, which issue reports show (``docs/m2her-api.md`` §6.4);
#: codes not listed get 500.
OPENAI_ROUTE_STATUS = {
    1001: 408,
    1002: 429,
    1004: 401,
    1008: 402,
    1026: 400,
    1027: 400,
    1039: 429,
    1041: 429,
    1042: 400,
    2013: 400,
    2038: 401,
    2045: 429,
    2049: 401,
    2056: 429,
}
#: A Bearer key that the fake always refuses with 2049 "invalid api key".
INVALID_API_KEY = "sk-invalid"
MISSING_KEY_MESSAGE = (
    "login fail: Please carry the API secret key in the 'Authorization' field of the request header"
)
REDACTED = "Bearer <redacted>"
#: The answer of a deployment refusing the advanced roles (only the status was reported; the
#: body is the gateway's usual 5xx).
ADVANCED_ROLES_REFUSED = HttpError.gateway(500)


class StreamVariant(enum.Flag):
    """How streamed replies look (``docs/m2her-api.md`` §5.3); flags combine with ``|``."""

    #: The documented shape: deltas, a last delta with ``finish_reason``, a summary event.
    STANDARD = 0
    #: v1: every chunk carries all five sensitive fields and zero/null ``usage``; deltas
    #: carry ``name`` and ``audio_content``; the summary has the full ``usage``.
    RICH = enum.auto()
    #: v2: a trailing ``data: [DONE]``.
    DONE = enum.auto()
    #: v3: no summary event; the last delta carries the full ``usage``.
    NO_SUMMARY = enum.auto()


@dataclass(frozen=True)
class StreamTimes:
    """When a streamed reply's first and last deltas went out (``time.monotonic()``, which is
    one clock for every process on Linux, so a benchmark can compare it with its own)."""

    #: The last ``user`` message of the request, which tells a benchmark's replies apart.
    said: str
    first_delta_at: float
    last_delta_at: float


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received; ``Authorization`` is redacted in ``headers``."""

    path: str
    headers: dict[str, str]
    body: Any


class FakeM2Her:
    """An in-process fake M2-her server; ``async with FakeM2Her() as fake`` starts it.

    ``api_key=None`` accepts any non-empty Bearer key. ``chunk_chars`` is the size of
    each streamed delta. ``rpm``/``tpm`` configure the limiter that answers 1002 (per
    minute, on the estimated prompt tokens); scripted items and magic words bypass it.
    ``stream_variant`` may be changed between requests. :attr:`streams` records when each
    streamed reply's deltas went out. With :attr:`reject_advanced_roles` (changeable between
    requests too) any request holding ``user_system``, ``group`` or ``sample_message_*`` gets
    an HTTP 500, as a deployment was reported to answer (``docs/m2her-api.md`` §3.6).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        stream_variant: StreamVariant = StreamVariant.STANDARD,
        rpm: int = 500,
        tpm: int = 20_000_000,
        chunk_chars: int = 12,
        reject_advanced_roles: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.stream_variant = stream_variant
        self.chunk_chars = chunk_chars
        self.reject_advanced_roles = reject_advanced_roles
        self.limiter = RateLimiter(rpm, tpm)
        #: Every request but memory updates, in the order received.
        self.requests: list[RecordedRequest] = []
        #: Memory updates (``bot.llm.summary``), apart, so that ``requests[-1]`` stays the
        #: newest turn's while an update runs in the background.
        self.memory_requests: list[RecordedRequest] = []
        self.streams: list[StreamTimes] = []
        #: Streamed answers the client stopped reading before their end.
        self.hang_ups = 0
        self._api_key = api_key
        self._script: deque[Scripted] = deque()
        self._memory_script: deque[Scripted] = deque()
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_post(PATH, self._handle)
        app.router.add_post(OPENAI_PATH, self._handle)
        self._app = app

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.host}:{self.port}"

    def enqueue(self, *scripted: Scripted) -> None:
        """Queue what the next requests get, consumed in order."""
        self._script.extend(scripted)

    def enqueue_memory(self, *scripted: Scripted) -> None:
        """Queue what the next memory updates get (``bot.llm.summary``), consumed in order; they
        never take items of :meth:`enqueue`, nor turns these."""
        self._memory_script.extend(scripted)

    async def start(self) -> None:
        """Listen on ``host:port`` (port 0 picks a free one)."""
        # In-flight handlers (a scripted delay, a slow stream) are cut short on close.
        runner = web.AppRunner(
            self._app, access_log=None, handle_signals=False, shutdown_timeout=0.1
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- handling ------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {
            name: REDACTED if name.lower() == "authorization" else value
            for name, value in request.headers.items()
        }
        recorded = RecordedRequest(request.path, headers, body)
        remembering = isinstance(body, dict) and is_memory_request(body.get("messages"))
        (self.memory_requests if remembering else self.requests).append(recorded)
        call = _Call(request, body, self.stream_variant, self.chunk_chars, self.streams)

        refusal = self._refusal(request, body)
        if refusal is not None:
            return await call.error(refusal)
        if self.reject_advanced_roles and _has_advanced_roles(body["messages"]):
            return await call.run(ADVANCED_ROLES_REFUSED)
        if remembering:
            # Its own script, and no magic words: the lines it quotes are not its orders.
            memory = self._memory_script
            scripted = memory.popleft() if memory else None
        elif self._script:
            scripted = self._script.popleft()
        else:
            scripted = from_magic_words(_last_user_text(body["messages"]))
        if scripted is None and not self.limiter.admit(prompt_tokens(body["messages"])):
            scripted = Error(1002)
        try:
            return await call.run(scripted or Reply())
        except ConnectionError:  # "Connection lost", or reset, while writing
            self.hang_ups += 1
            # Nothing more can be sent; aiohttp gives up on this connection quietly.
            raise asyncio.CancelledError from None

    def _refusal(self, request: web.Request, body: Any) -> Error | None:
        """The auth or validation error for this request, if any."""
        auth = request.headers.get("Authorization", "")
        key = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        if not key:
            return Error(1004, MISSING_KEY_MESSAGE, minimal=True)
        if key == INVALID_API_KEY:
            return Error(2049)
        if self._api_key is not None and key != self._api_key:
            return Error(1004)
        problem = invalid_params(body)
        if problem is not None:
            return Error(2013, f"invalid params, {problem}")
        return None


class _Call:
    """Writes the answer to one request."""

    def __init__(
        self,
        request: web.Request,
        body: Any,
        variant: StreamVariant,
        chunk_chars: int,
        streams: list[StreamTimes],
    ) -> None:
        self.request = request
        self.body = body if isinstance(body, dict) else {}
        self.streaming = self.body.get("stream") is True
        self.openai = request.path == OPENAI_PATH
        self.variant = variant
        self.chunk_chars = max(1, chunk_chars)
        self.id = uuid.uuid4().hex
        self.created = int(time.time())
        self.streams = streams

    async def run(self, item: Scripted) -> web.StreamResponse:
        if item.delay:
            await asyncio.sleep(item.delay)
        if isinstance(item, HttpError):
            return web.Response(
                status=item.status,
                text=item.body,
                content_type=item.content_type,
                headers={"Trace-Id": self.id},
            )
        if isinstance(item, Drop):
            return await self._drop(item)
        if isinstance(item, Error):
            return await self.error(item)
        return await self._reply(item)

    # -- bodies --

    def _envelope(self, *, object_: str = "chat.completion") -> dict[str, Any]:
        return {"id": self.id, "created": self.created, "model": MODEL, "object": object_}

    def _error_body(self, item: Error) -> dict[str, Any]:
        message = item.message or STATUS_MESSAGES.get(item.code, "unknown error")
        base_resp = {"status_code": item.code, "status_msg": message}
        if item.minimal:
            return {"base_resp": base_resp}
        input_type = item.input_sensitive_type or (1 if item.code == 1026 else 0)
        output_type = item.output_sensitive_type or (1 if item.code == 1027 else 0)
        return {
            **self._envelope(),
            "choices": None,
            "usage": {"total_tokens": 0, "total_characters": 0},
            "input_sensitive": input_type > 0,
            "output_sensitive": output_type > 0,
            "input_sensitive_type": input_type,
            "output_sensitive_type": output_type,
            "output_sensitive_int": 0,
            "base_resp": base_resp,
        }

    def _text(self, item: Reply) -> tuple[str, str, dict[str, int]]:
        messages = self.body["messages"]
        if item.text is not None:
            full = item.text
        elif is_memory_request(messages):
            full = memory_reply(messages)
        else:
            full = reply_text(messages)
        if item.runaway:
            text, finish_reason = full, "stop"
        else:
            text, finish_reason = cut_to_tokens(full, self.body.get("max_completion_tokens"))
        prompt = prompt_tokens(messages)
        completion = estimate_text_tokens(text)
        usage = {
            "total_tokens": prompt + completion,
            "total_characters": 0,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
        }
        return text, finish_reason, usage

    @staticmethod
    def _flags(item: Reply, *, output: bool) -> dict[str, Any]:
        output_type = item.output_sensitive_type if output else 0
        return {
            "input_sensitive": item.input_sensitive_type > 0,
            "output_sensitive": output_type > 0,
            "input_sensitive_type": item.input_sensitive_type,
            "output_sensitive_type": output_type,
            "output_sensitive_int": 0,
        }

    # -- answers --

    def _json(self, body: dict[str, Any], *, status: int = 200) -> web.Response:
        return web.Response(
            status=status,
            body=json.dumps(body, ensure_ascii=False).encode(),
            content_type="application/json",
            charset="utf-8",
            headers={"Trace-Id": self.id},
        )

    def _gateway_error_body(self, item: Error) -> dict[str, Any]:
        """The OpenAI-compatible route's error: the gateway's shape, the code in brackets."""
        message = item.message or STATUS_MESSAGES.get(item.code, "unknown error")
        return gateway_error_object(
            OPENAI_ROUTE_STATUS.get(item.code, 500),
            f"{message} ({item.code})",
            request_id=self.id,
        )

    async def error(self, item: Error) -> web.StreamResponse:
        """An error as JSON, or as one SSE event (after ``after_chunks`` deltas).

        On the OpenAI-compatible route an error before any delta is a real HTTP status.
        """
        if self.openai and not item.after_chunks:
            status = OPENAI_ROUTE_STATUS.get(item.code, 500)
            return self._json(self._gateway_error_body(item), status=status)
        if not self.streaming or item.as_json:
            return self._json(self._error_body(item))
        response = await self._open_stream()
        if item.after_chunks:
            text, _, _ = self._text(Reply())
            for event in self._deltas(Reply(), text, None)[: item.after_chunks]:
                await self._send(response, event, item.chunk_delay)
        event = self._gateway_error_body(item) if self.openai else self._error_body(item)
        await self._send(response, event, item.chunk_delay)
        await response.write_eof()
        return response

    async def _reply(self, item: Reply) -> web.StreamResponse:
        if self.openai:
            return await self._openai_reply(item)
        text, finish_reason, usage = self._text(item)
        name = character_name(self.body["messages"])
        if not self.streaming:
            message = {"content": text, "role": "assistant", "name": name, "audio_content": ""}
            choice = {"finish_reason": finish_reason, "index": 0, "message": message}
            body = {
                **self._envelope(),
                "choices": [choice],
                "usage": usage,
                **self._flags(item, output=True),
                "base_resp": {"status_code": 0, "status_msg": ""},
            }
            return self._json(body)
        response = await self._open_stream()
        deltas = self._deltas(item, text, finish_reason, name=name)
        if StreamVariant.NO_SUMMARY in self.variant:
            deltas[-1]["usage"] = usage
        first_delta_at = 0.0
        for event in deltas:
            await self._send(response, event, item.chunk_delay)
            first_delta_at = first_delta_at or time.monotonic()
        self.streams.append(
            StreamTimes(_last_user_text(self.body["messages"]), first_delta_at, time.monotonic())
        )
        if StreamVariant.NO_SUMMARY not in self.variant:
            # The summary follows the last delta at once, as the real API sends it.
            await self._send(response, self._summary(item, text, finish_reason, usage, name), 0)
        if StreamVariant.DONE in self.variant:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _openai_reply(self, item: Reply) -> web.StreamResponse:
        """A reply in the OpenAI-compatible route's shape: OpenAI's fields, plus the
        sensitive fields (assumed to come as on ``chatcompletion_v2``); no ``base_resp``,
        ``audio_content`` or ``total_characters``."""
        text, finish_reason, usage = self._text(item)
        del usage["total_characters"]
        name = character_name(self.body["messages"])
        if not self.streaming:
            message = {"role": "assistant", "content": text, "name": name}
            choice = {"index": 0, "message": message, "finish_reason": finish_reason}
            body = {
                **self._envelope(),
                "choices": [choice],
                "usage": usage,
                **self._flags(item, output=True),
            }
            return self._json(body)
        response = await self._open_stream()
        first_delta_at = 0.0
        for event in self._deltas(item, text, finish_reason):
            await self._send(response, event, item.chunk_delay)
            first_delta_at = first_delta_at or time.monotonic()
        self.streams.append(
            StreamTimes(_last_user_text(self.body["messages"]), first_delta_at, time.monotonic())
        )
        usage_chunk = {**self._envelope(object_="chat.completion.chunk"), "choices": []}
        await self._send(response, {**usage_chunk, "usage": usage}, 0)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _summary(
        self, item: Reply, text: str, finish_reason: str, usage: dict[str, int], name: str
    ) -> dict[str, Any]:
        """The closing ``chat.completion`` event with the whole reply."""
        rich = StreamVariant.RICH in self.variant
        message: dict[str, Any] = {"content": text, "role": "assistant"}
        summary_flags = self._flags(item, output=True)
        if rich:
            message.update(name=name, audio_content="")
        else:
            del summary_flags["output_sensitive_int"]
        return {
            **self._envelope(),
            "choices": [{"finish_reason": finish_reason, "index": 0, "message": message}],
            "usage": usage if rich else {"total_tokens": usage["total_tokens"]},
            **summary_flags,
            "base_resp": {"status_code": 0, "status_msg": ""},
        }

    def _deltas(
        self, item: Reply, text: str, finish_reason: str | None, *, name: str = ""
    ) -> list[dict[str, Any]]:
        """The delta chunks of ``text``; the last one carries ``finish_reason``."""
        rich = StreamVariant.RICH in self.variant
        size = item.chunk_chars or self.chunk_chars
        pieces = [text[i : i + size] for i in range(0, len(text), size)] or [""]
        events = []
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            delta: dict[str, Any] = {"content": piece, "role": "assistant"}
            choice: dict[str, Any] = {"index": 0, "delta": delta}
            flags = self._flags(item, output=last)
            if self.openai:
                # OpenAI's chunks: usage null until the closing usage chunk.
                flags = {**(flags if last else {}), "usage": None}
            elif rich:
                delta.update(name=name, audio_content="")
                flags["usage"] = {"total_tokens": 0, "total_characters": 0} if i % 2 else None
            else:
                del flags["input_sensitive"], flags["output_sensitive_int"]
            if last and finish_reason:
                choice["finish_reason"] = finish_reason
            events.append(
                {**self._envelope(object_="chat.completion.chunk"), "choices": [choice], **flags}
            )
        return events

    async def _open_stream(self) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Trace-Id": self.id, "Cache-Control": "no-cache"})
        response.content_type = "text/event-stream"
        await response.prepare(self.request)
        return response

    @staticmethod
    async def _send(response: web.StreamResponse, event: dict[str, Any], delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        payload = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        await response.write(b"data: " + payload.encode() + b"\n\n")

    async def _drop(self, item: Drop) -> web.StreamResponse:
        transport = self.request.transport
        if self.streaming:
            response = await self._open_stream()
            text, _, _ = self._text(Reply())
            for event in self._deltas(Reply(), text, None)[: item.after_chunks]:
                await self._send(response, event, item.chunk_delay)
        if transport is not None:
            transport.abort()
        # Nothing more can be sent; aiohttp gives up on this connection quietly.
        raise asyncio.CancelledError


def _has_advanced_roles(messages: list[dict[str, Any]]) -> bool:
    return any(message.get("role") in ADVANCED_ROLES for message in messages)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def run_fake_server(
    host: str, port: int, api_key: str | None, *, reject_advanced_roles: bool = False
) -> int:
    """Run the fake until Ctrl-C or SIGTERM; print its URL first. Returns the exit code."""

    async def serve() -> None:
        async with FakeM2Her(
            api_key=api_key, host=host, port=port, reject_advanced_roles=reject_advanced_roles
        ) as fake:
            print(f"Fake M2-her listening on {fake.base_url}", flush=True)
            print(f"  export MINIMAX_BASE_URL={fake.base_url}", flush=True)
            stop = asyncio.Event()
            with contextlib.suppress(NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0
