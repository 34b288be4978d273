"""What the fake M2-her server should do next: scripted replies and faults.

Tests queue these with :meth:`FakeM2Her.enqueue`; people trying things by hand use the
magic words of :func:`from_magic_words` in their last message instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from bot.llm.fake.reply import long_text

BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Delays shared by every scripted item, in seconds."""

    #: Wait before sending anything (the response headers included).
    delay: float = 0.0
    #: Wait before each streamed delta (the closing summary follows the last one at once).
    chunk_delay: float = 0.0


@dataclass(frozen=True)
class Reply(Timing):
    """A successful reply.

    ``text`` replaces the deterministic echo. A non-zero ``input_sensitive_type``
    flags the input but still answers (status 0); a non-zero ``output_sensitive_type``
    flags the output on the last chunk and the summary (status 0, text included).
    """

    text: str | None = None
    input_sensitive_type: int = 0
    output_sensitive_type: int = 0
    #: Stream ``text`` whole, past ``max_completion_tokens``, as a runaway model would.
    runaway: bool = False
    #: Characters per streamed delta, instead of the server's ``chunk_chars``.
    chunk_chars: int | None = None


@dataclass(frozen=True)
class Error(Timing):
    """A business error: HTTP 200 with a non-zero ``base_resp.status_code``.

    ``message`` defaults to the documented ``status_msg``. For 1026/1027 the input /
    output sensitive flag is set, with type 1 unless given. On a streamed request the
    error is one SSE event, or plain JSON with ``as_json``; ``after_chunks`` deltas are
    streamed before it (a mid-stream error). ``minimal`` sends only ``base_resp``.
    """

    code: int
    message: str | None = None
    as_json: bool = False
    minimal: bool = False
    after_chunks: int = 0
    input_sensitive_type: int = 0
    output_sensitive_type: int = 0


@dataclass(frozen=True)
class Drop(Timing):
    """Close the connection abruptly: before any response, or while streaming after
    ``after_chunks`` deltas."""

    after_chunks: int = 0


#: The message of the 5xx JSON answer issue reports quote (the API code in brackets).
UNKNOWN_ERROR_MESSAGE = "unknown error, 999 (1000)"

#: The ``type`` MiniMax's gateway gives an error of each HTTP status (others: server_error).
GATEWAY_ERROR_TYPES = {
    400: "bad_request_error",
    401: "authentication_error",
    402: "insufficient_balance_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    429: "rate_limit_error",
}


def gateway_error_object(
    status: int, message: str = UNKNOWN_ERROR_MESSAGE, *, request_id: str | None = None
) -> dict[str, object]:
    """MiniMax's gateway error body: ``{"type": "error", "error": {"type", "message",
    "http_code"}}`` (``docs/m2her-api.md`` §6.4), with ``request_id`` if given."""
    error = {
        "type": GATEWAY_ERROR_TYPES.get(status, "server_error"),
        "message": message,
        "http_code": str(status),
    }
    body: dict[str, object] = {"type": "error", "error": error}
    if request_id is not None:
        body["request_id"] = request_id
    return body


@dataclass(frozen=True)
class HttpError(Timing):
    """A non-2xx answer from the "load balancer", by default a 502 HTML page.

    :meth:`gateway` and :meth:`openai` make the JSON error bodies of the other shapes.
    """

    status: int = 502
    body: str = BAD_GATEWAY_HTML
    content_type: str = "text/html"

    @classmethod
    def gateway(cls, status: int = 500, message: str = UNKNOWN_ERROR_MESSAGE) -> HttpError:
        """MiniMax's gateway JSON error, e.g. ``unknown error, 999 (1000)`` with a 500."""
        body = json.dumps(gateway_error_object(status, message))
        return cls(status, body, "application/json")

    @classmethod
    def openai(
        cls, status: int, message: str, *, type_: str, code: str | int | None = None
    ) -> HttpError:
        """An OpenAI-style error: ``{"error": {"message", "type", "code"}}``."""
        body = json.dumps({"error": {"message": message, "type": type_, "code": code}})
        return cls(status, body, "application/json")


Scripted = Reply | Error | Drop | HttpError

_MAGIC = re.compile(r"\[\[(fault|sensitive|flag|drop|slow|http|long)(?::(\w+))?(?::(\w+))?\]\]")


def from_magic_words(text: str) -> Scripted | None:
    """The scripted item a magic word in ``text`` asks for, if any.

    ``[[fault:CODE]]`` error CODE (``[[fault:CODE:json]]`` as plain JSON while streaming,
    ``[[fault:CODE:mid]]`` after two streamed chunks); ``[[sensitive:input:T]]`` 1026 with
    input type T; ``[[sensitive:output:T]]`` 1027 with output type T after two chunks;
    ``[[flag:input:T]]`` / ``[[flag:output:T]]`` a flag with status 0; ``[[drop]]`` a
    dropped connection after two chunks; ``[[slow]]`` 1 s before the first byte and
    0.25 s between chunks; ``[[http:STATUS]]`` a non-2xx page (``[[http:STATUS:json]]`` the
    gateway's JSON error, see :meth:`HttpError.gateway`); ``[[long:N]]`` a reply of N
    characters of prose (:func:`~bot.llm.fake.reply.long_text`), ``[[long:N:MS]]`` the same
    with MS milliseconds before each streamed delta.
    """
    match = _MAGIC.search(text)
    if match is None:
        return None
    word, first, second = match.groups()
    try:
        if word == "fault" and first:
            return Error(
                int(first),
                as_json=second == "json",
                after_chunks=2 if second == "mid" else 0,
            )
        if word in ("sensitive", "flag") and first in ("input", "output") and second:
            kind = int(second)
            if word == "flag":
                if first == "input":
                    return Reply(input_sensitive_type=kind)
                return Reply(output_sensitive_type=kind)
            if first == "input":
                return Error(1026, input_sensitive_type=kind)
            return Error(1027, output_sensitive_type=kind, after_chunks=2)
        if word == "http" and first:
            return HttpError.gateway(int(first)) if second == "json" else HttpError(int(first))
        if word == "long" and first:
            return Reply(text=long_text(int(first)), chunk_delay=int(second or 0) / 1000)
    except ValueError:
        return None
    if word == "drop":
        return Drop(after_chunks=2)
    if word == "slow":
        return Reply(delay=1.0, chunk_delay=0.25)
    return None
