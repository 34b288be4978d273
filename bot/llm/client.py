"""The M2-her client: one aiohttp session, typed requests, streaming, retries.

>>> async with M2HerClient.from_settings(settings.m2her) as client:  # doctest: +SKIP
...     reply = await client.complete(request)
...     stream = client.stream(request)
...     async for delta in stream:
...         print(delta, end="")
...     print(stream.result.finish_reason)

``api_style`` picks the route: ``"minimax"`` (MiniMax's own ``chatcompletion_v2``, the
default) or ``"openai"`` (the OpenAI-compatible ``/v1/chat/completions``); both take the
same body and are read by the same liberal rules (``docs/m2her-api.md`` §10).

Every failure is an :class:`~bot.llm.errors.M2HerError`. Retries (see
:class:`~bot.llm.retry.RetryPolicy`) happen only before any text reached the caller;
a stream that fails later raises with the text so far in ``partial_text``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiohttp
import orjson

from bot.llm.errors import (
    M2HerError,
    RequestTimeout,
    ServerError,
    StreamInterrupted,
    error_from_http,
)
from bot.llm.response import ReplyAssembler
from bot.llm.retry import RetryPolicy, RetryState
from bot.llm.sse import SSEDecoder
from bot.llm.tokens import estimate_prompt_tokens
from bot.llm.types import (
    CONTEXT_WINDOW,
    DEFAULT_BASE_URL,
    MAX_COMPLETION_TOKENS,
    ApiStyle,
    ChatRequest,
    ChatResult,
)

if TYPE_CHECKING:  # bot.settings imports this package's constants
    from bot.settings import M2HerSettings

__all__ = ["API_PATHS", "ApiStyle", "M2HerClient", "ReplyStream", "RetryPolicy", "Timeouts"]

logger = logging.getLogger("bot.llm")

#: A 1039 "token limit" counts as "context too long" once the estimated prompt plus the
#: output allowance reaches this share of the window (``docs/m2her-api.md`` §2.3).
NEAR_LIMIT_SHARE = 0.8

#: The route of each API style.
API_PATHS: dict[ApiStyle, str] = {
    "minimax": "/v1/text/chatcompletion_v2",
    "openai": "/v1/chat/completions",
}


@dataclass(frozen=True)
class Timeouts:
    """Per-attempt time limits, in seconds.

    ``connect``: opening the TCP/TLS connection. ``first_byte``: from sending the
    request until the response headers and, for a stream, its first data arrive.
    ``chunk_gap``: the longest silence allowed between later reads. ``total``: an
    optional cap on one whole attempt.
    """

    connect: float = 10.0
    first_byte: float = 60.0
    chunk_gap: float = 30.0
    total: float | None = None


class _Deadline:
    """Turns the :class:`Timeouts` of one attempt into a timeout for each wait."""

    def __init__(self, timeouts: Timeouts) -> None:
        loop = asyncio.get_running_loop()
        self._time = loop.time
        now = loop.time()
        self._first_byte_at = now + timeouts.first_byte
        self._end_at = None if timeouts.total is None else now + timeouts.total
        self._gap = timeouts.chunk_gap
        self.first_byte_seen = False

    def next_wait(self) -> float:
        now = self._time()
        wait = self._gap if self.first_byte_seen else self._first_byte_at - now
        if self._end_at is not None:
            wait = min(wait, self._end_at - now)
        return max(wait, 0.0)

    def describe(self) -> str:
        return "chunk gap" if self.first_byte_seen else "first byte"


class M2HerClient:
    """Calls MiniMax M2-her (``chatcompletion_v2``, or ``/v1/chat/completions`` with
    ``api_style="openai"``); use it as an async context manager.

    The API key is kept only in the request headers and never shown by ``repr`` or
    in errors. Pass ``session`` to share an existing :class:`aiohttp.ClientSession`
    (the client then does not close it).
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_style: ApiStyle = "minimax",
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so sharing is safe
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ValueError("the M2-her API key is empty")
        if api_style not in API_PATHS:
            raise ValueError(f"unknown M2-her API style {api_style!r}")
        self.base_url = base_url.rstrip("/")
        self.api_style = api_style
        self.timeouts = timeouts
        self.retry = retry
        self._url = self.base_url + API_PATHS[api_style]
        self._headers = {"Authorization": f"Bearer {api_key.strip()}"}
        # An error page may quote the key it refused; it is cut out before anything is read.
        self._key_bytes = api_key.strip().encode()
        self._session = session
        self._owns_session = session is None
        self._client_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.connect, sock_connect=timeouts.connect
        )

    @classmethod
    def from_settings(cls, settings: M2HerSettings, **kwargs: Any) -> M2HerClient:
        """A client configured from ``MINIMAX_API_KEY``, ``MINIMAX_BASE_URL`` and
        ``MINIMAX_API_STYLE``.

        Keyword arguments (``timeouts``, ``retry``, ``session``, ``base_url``,
        ``api_style``) win over the settings.
        """
        if settings.api_key is None:
            raise ValueError("MINIMAX_API_KEY is not set")
        kwargs.setdefault("base_url", settings.base_url)
        kwargs.setdefault("api_style", settings.api_style)
        return cls(settings.api_key.get_secret_value(), **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"api_style={self.api_style!r}, api_key=<hidden>)"
        )

    async def __aenter__(self) -> Self:
        self._ensure_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client created it. Safe to call twice."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, request: ChatRequest) -> ChatResult:
        """One non-streaming reply, retried as the :class:`RetryPolicy` allows."""
        state = RetryState(self.retry)
        while True:
            try:
                return await self._complete_once(request)
            except M2HerError as error:
                delay = self._after_failure(error, state, may_retry=True)
                if delay is None:
                    raise
            await asyncio.sleep(delay)

    def stream(self, request: ChatRequest) -> ReplyStream:
        """A streamed reply: iterate it for text deltas, then read ``.result``."""
        return ReplyStream(self, request)

    # -- one attempt ---------------------------------------------------------------

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise RuntimeError("the aiohttp session given to M2HerClient is closed")
            self._session = aiohttp.ClientSession()
        return self._session

    def _assembler(self, request: ChatRequest, *, streaming: bool) -> ReplyAssembler:
        def near_limit() -> bool:
            allowance = request.max_completion_tokens or MAX_COMPLETION_TOKENS
            estimate = estimate_prompt_tokens(request.messages) + allowance
            return estimate >= NEAR_LIMIT_SHARE * CONTEXT_WINDOW

        return ReplyAssembler(trace_id=None, streaming=streaming, prompt_near_limit=near_limit)

    async def _open(
        self, request: ChatRequest, deadline: _Deadline, *, stream: bool
    ) -> aiohttp.ClientResponse:
        # orjson: a turn's 7 KB body in 4 µs where the standard library takes 60.
        body = orjson.dumps(request.to_wire(stream=stream))
        headers = {**self._headers, "Content-Type": "application/json"}
        if stream:
            headers["Accept"] = "text/event-stream"
        session = self._ensure_session()
        try:
            async with asyncio.timeout(deadline.next_wait()):
                return await session.post(
                    self._url, data=body, headers=headers, timeout=self._client_timeout
                )
        except aiohttp.ConnectionTimeoutError:
            # The request never left, so this is safe to retry like any outage.
            raise ServerError(f"could not connect within {self.timeouts.connect}s") from None
        except TimeoutError:
            raise RequestTimeout("no response within the first-byte timeout") from None
        except aiohttp.ClientError as exc:
            raise ServerError(f"connection failed: {type(exc).__name__}: {exc}") from None

    async def _read(self, response: aiohttp.ClientResponse, deadline: _Deadline) -> bytes:
        """One read of whatever arrived; ``b""`` at the end. Raises plain exceptions."""
        content = response.content
        # What has arrived already needs no wait, so no timer (most reads of a fast stream).
        chunk = content.read_nowait()
        if not chunk and not content.at_eof():
            async with asyncio.timeout(deadline.next_wait()):
                chunk = await content.readany()
        deadline.first_byte_seen = True
        return chunk

    async def _read_all(
        self, response: aiohttp.ClientResponse, deadline: _Deadline, first: bytes = b""
    ) -> bytes:
        """The rest of a body that is read whole, within one wait of the deadline."""
        try:
            async with asyncio.timeout(deadline.next_wait()):
                return first + await response.read()
        except TimeoutError:
            raise RequestTimeout("the response body did not arrive in time") from None
        except aiohttp.ClientError as exc:
            raise ServerError(f"response body cut off: {type(exc).__name__}") from None

    async def _complete_once(self, request: ChatRequest) -> ChatResult:
        deadline = _Deadline(self.timeouts)
        assembler = self._assembler(request, streaming=False)
        async with await self._open(request, deadline, stream=False) as response:
            assembler.trace_id = response.headers.get("Trace-Id")
            await self._check_http_status(response, deadline, assembler)
            body = await self._read_all(response, deadline)
            for obj in _decode_body(body, assembler):
                assembler.add(obj)
        return assembler.result()

    async def _stream_once(
        self, request: ChatRequest, assembler: ReplyAssembler
    ) -> AsyncGenerator[str, None]:
        """Yield the deltas of one attempt; on success ``assembler`` holds the reply."""
        deadline = _Deadline(self.timeouts)
        async with await self._open(request, deadline, stream=True) as response:
            assembler.trace_id = response.headers.get("Trace-Id")
            await self._check_http_status(response, deadline, assembler)
            decoder = SSEDecoder()
            first = await self._read_stream_chunk(response, deadline, assembler)
            if response.content_type != "text/event-stream" or first.lstrip()[:1] == b"{":
                # An error sent as plain JSON despite "stream": true (§5.4).
                for obj in _decode_body(await self._read_all(response, deadline, first), assembler):
                    assembler.add(obj)
                return
            chunk = first
            while True:
                # An empty read is the end of the body: flush what the decoder holds.
                for payload in decoder.feed(chunk) if chunk else decoder.close():
                    if payload == "[DONE]":
                        return
                    if delta := assembler.add(_load_event(payload, assembler)):
                        yield delta
                if not chunk:
                    return
                chunk = await self._read_stream_chunk(response, deadline, assembler)

    async def _check_http_status(
        self, response: aiohttp.ClientResponse, deadline: _Deadline, assembler: ReplyAssembler
    ) -> None:
        """Raise the typed error of a non-2xx response: the one its body describes (an
        ``error`` object or a ``base_resp``), else the one its status implies."""
        if 200 <= response.status < 300:
            return
        assembler.http_status = response.status
        try:
            body = await self._read_all(response, deadline)
        except M2HerError:
            body = b""  # the body did not come: the status alone must say it
        body = body.replace(self._key_bytes, b"***")
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            obj = None  # a gateway's HTML page, or nothing
        if isinstance(obj, dict):
            assembler.add(obj)  # raises the error the body describes
        raise error_from_http(response.status, response.reason or "", trace_id=assembler.trace)

    async def _read_stream_chunk(
        self, response: aiohttp.ClientResponse, deadline: _Deadline, assembler: ReplyAssembler
    ) -> bytes:
        """The next read of a stream; a failure after the reply finished counts as its end."""
        try:
            return await self._read(response, deadline)
        except (TimeoutError, aiohttp.ClientError) as exc:
            if assembler.finish_reason is not None:
                # Everything but the optional summary event arrived (§5.3, variant v3).
                return b""
            if isinstance(exc, TimeoutError):
                what = f"no data within the {deadline.describe()} timeout"
                if not assembler.text:
                    raise RequestTimeout(what, trace_id=assembler.trace) from None
            else:
                what = f"connection lost: {type(exc).__name__}"
            raise StreamInterrupted(
                what, trace_id=assembler.trace, partial_text=assembler.text, flags=assembler.flags
            ) from None

    def _after_failure(
        self, error: M2HerError, state: RetryState, *, may_retry: bool
    ) -> float | None:
        """Log ``error`` (never the key) and return the delay before a retry, or ``None``."""
        attempt = state.attempt
        delay = state.delay_after(error) if may_retry else None
        if delay is None:
            logger.warning("M2-her call failed on attempt %d: %s", attempt, error)
        else:
            logger.warning(
                "M2-her call failed on attempt %d: %s; retrying in %.2fs", attempt, error, delay
            )
        return delay


class ReplyStream:
    """The deltas of one streamed reply, then its :class:`ChatResult`.

    Iterate it once with ``async for``. Retries happen only while no delta has been
    yielded. A failure after that raises the typed error with ``partial_text`` set.
    """

    def __init__(self, client: M2HerClient, request: ChatRequest) -> None:
        self._client = client
        self._request = request
        self._result: ChatResult | None = None
        self._deltas: AsyncGenerator[str, None] | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        if self._deltas is not None:
            raise RuntimeError("a ReplyStream can be iterated only once")
        self._deltas = self._run()
        return self._deltas

    async def aclose(self) -> None:
        """Stop reading: the connection is closed and the rest of the body never read (a
        caller that has enough of a runaway reply). Safe at any time, and twice."""
        if self._deltas is not None:
            await self._deltas.aclose()

    @property
    def result(self) -> ChatResult:
        """The finished reply. Raises ``RuntimeError`` before the stream has finished."""
        if self._result is None:
            raise RuntimeError("the stream has not finished")
        return self._result

    async def _run(self) -> AsyncGenerator[str, None]:
        client = self._client
        state = RetryState(client.retry)
        while True:
            assembler = client._assembler(self._request, streaming=True)
            yielded = False
            try:
                async with contextlib.aclosing(
                    client._stream_once(self._request, assembler)
                ) as deltas:
                    async for delta in deltas:
                        yielded = True
                        yield delta
                self._result = assembler.result()
                return
            except M2HerError as error:
                delay = client._after_failure(error, state, may_retry=not yielded)
                if delay is None:
                    raise
            await asyncio.sleep(delay)


def _load_event(payload: str, assembler: ReplyAssembler) -> object:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise StreamInterrupted(
            "malformed stream event", trace_id=assembler.trace, partial_text=assembler.text
        ) from None


def _decode_body(body: bytes, assembler: ReplyAssembler) -> list[object]:
    """The response objects of a whole body: one JSON object, or SSE events."""
    stripped = body.lstrip()
    if stripped.startswith(b"data:"):
        decoder = SSEDecoder()
        payloads = [*decoder.feed(body), *decoder.close()]
        return [_load_event(p, assembler) for p in payloads if p != "[DONE]"]
    try:
        return [orjson.loads(body)]
    except orjson.JSONDecodeError:
        raise ServerError(
            "response body is not JSON", trace_id=assembler.trace, partial_text=""
        ) from None
