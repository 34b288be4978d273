"""Typed M2-her failures (``docs/m2her-api.md`` §6).

Every error carries the API ``code`` (``None`` for transport failures), the raw
``status_msg``, the ``trace_id`` to quote to MiniMax support, and a short
``user_message`` that is safe to show in a chat. The API key never appears in any of it.
"""

from __future__ import annotations

import re
from typing import Any

from bot.errors import TroupeError
from bot.llm.types import SensitiveFlags, SensitiveType


class M2HerError(TroupeError):
    """Base class of every failure of a call to M2-her."""

    retryable: bool = False
    default_user_message = "The character could not answer right now (unexpected error)."

    def __init__(
        self,
        status_msg: str,
        *,
        code: int | None = None,
        trace_id: str | None = None,
        http_status: int | None = None,
        partial_text: str = "",
        flags: SensitiveFlags | None = None,
    ) -> None:
        self.code = code
        self.status_msg = status_msg
        self.trace_id = trace_id
        self.http_status = http_status
        #: Text streamed before the failure; never to be passed off as a full reply.
        self.partial_text = partial_text
        self.flags = flags or SensitiveFlags()
        super().__init__(self._describe())

    @property
    def user_message(self) -> str:
        """A short, plain sentence for the chat user."""
        return self.default_user_message

    def _describe(self) -> str:
        parts = [self.status_msg or type(self).__name__]
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.http_status is not None:
            parts.append(f"http={self.http_status}")
        if self.trace_id:
            parts.append(f"trace_id={self.trace_id}")
        return " ".join(parts)


class AuthenticationError(M2HerError):
    """1004 / 2049 / 2038, HTTP 401/403: the key is missing, wrong, or for another region."""

    default_user_message = "The bot's M2-her API key was rejected; the owner needs to fix it."


class InsufficientBalance(M2HerError):
    """1008, HTTP 402: the pay-as-you-go balance is empty."""

    default_user_message = (
        "The bot's M2-her account is out of balance; the owner needs to top it up."
    )


class RateLimited(M2HerError):
    """1002 / 1039 / 1041 / 2045, HTTP 429: too many requests or tokens right now."""

    retryable = True
    default_user_message = "Too many messages right now; please try again in a moment."


class UsageWindowExceeded(M2HerError):
    """2056: the Token Plan's usage window is used up until it rolls over."""

    default_user_message = "The bot has used up its M2-her allowance for now; try again later."


class InvalidParams(M2HerError):
    """2013: the server refused the request's parameters."""

    default_user_message = "The request to the model was invalid; the owner has been told."


class ContextTooLong(InvalidParams):
    """2013 "context window exceeds limit" (or 1039 on a huge prompt)."""

    default_user_message = (
        "That is too long for the character to read; please send something shorter."
    )


class InvalidInput(InvalidParams):
    """1042: the message has too many invisible or illegal characters."""

    default_user_message = "That message has too many invisible characters; please clean it up."


class InputBlocked(M2HerError):
    """1026: moderation refused the user's message."""

    default_user_message = "That message was blocked by the model's content filter."

    @property
    def sensitive_type(self) -> SensitiveType | int:
        """The moderation category of the input (``input_sensitive_type``)."""
        return self.flags.input_sensitive_type


class OutputBlocked(M2HerError):
    """1027, or ``output_sensitive`` set: moderation withheld the reply.

    ``partial_text`` holds whatever was generated; it must not be shown.
    """

    default_user_message = "The character's reply was withheld by the model's content filter."

    @property
    def sensitive_type(self) -> SensitiveType | int:
        """The moderation category of the output (``output_sensitive_type``)."""
        return self.flags.output_sensitive_type


class ServerError(M2HerError):
    """1000 / 1013 / 1024 / 1033, HTTP 5xx: a transient failure on MiniMax's side."""

    retryable = True
    default_user_message = "The model's server had a problem; please try again."


class RequestTimeout(ServerError):
    """1001 or a client-side timeout. It may have been billed, so it is retried sparingly."""

    default_user_message = "The model took too long to answer; please try again."


class StreamInterrupted(ServerError):
    """The stream ended part-way: connection dropped, or no final chunk arrived."""

    default_user_message = "The reply was cut off part-way; please try again."


class UnknownError(M2HerError):
    """A code the table does not know. Not retried."""


_CODE_CLASSES: dict[int, type[M2HerError]] = {
    1000: ServerError,
    1001: RequestTimeout,
    1002: RateLimited,
    1004: AuthenticationError,
    1008: InsufficientBalance,
    1013: ServerError,
    1024: ServerError,
    1026: InputBlocked,
    1027: OutputBlocked,
    1033: ServerError,
    1039: RateLimited,
    1041: RateLimited,
    1042: InvalidInput,
    2013: InvalidParams,
    2038: AuthenticationError,
    2045: RateLimited,
    2049: AuthenticationError,
    2056: UsageWindowExceeded,
}

#: The ``status_msg`` MiniMax documents for each code (``docs/m2her-api.md`` §6.3).
STATUS_MESSAGES: dict[int, str] = {
    1000: "unknown error",
    1001: "request timeout",
    1002: "rate limit",
    1004: "not authorized",
    1008: "insufficient balance",
    1013: "internal service error",
    1024: "internal error",
    1026: "input new_sensitive",
    1027: "output new_sensitive",
    1033: "system error",
    1039: "token limit",
    1041: "conn limit",
    1042: "invisible character ratio limit",
    2013: "invalid params",
    2038: "real-name verification required",
    2045: "rate growth limit",
    2049: "invalid api key",
    2056: "usage limit exceeded",
}


def error_from_code(
    code: int,
    status_msg: str,
    *,
    trace_id: str | None = None,
    http_status: int | None = None,
    partial_text: str = "",
    flags: SensitiveFlags | None = None,
    prompt_near_limit: bool = False,
) -> M2HerError:
    """The typed error for a non-zero ``base_resp.status_code`` (or an API code found in
    another error shape, see :func:`error_from_object`).

    ``prompt_near_limit`` says the request's estimated prompt is close to the context
    window, which turns an ambiguous 1039 "token limit" into :class:`ContextTooLong`.
    """
    cls = _CODE_CLASSES.get(code, UnknownError)
    too_long = "context window" in status_msg.lower() if code == 2013 else prompt_near_limit
    if code in (2013, 1039) and too_long:
        cls = ContextTooLong
    return cls(
        status_msg,
        code=code,
        trace_id=trace_id,
        http_status=http_status,
        partial_text=partial_text,
        flags=flags,
    )


def error_from_http(
    status: int, reason: str, *, trace_id: str | None = None, partial_text: str = ""
) -> M2HerError:
    """The typed error for a non-2xx HTTP response whose body says nothing more (a load
    balancer's or gateway's page)."""
    message = f"HTTP {status} {reason}".strip()
    return _class_of_status(status)(
        message, trace_id=trace_id, http_status=status, partial_text=partial_text
    )


def _class_of_status(status: int) -> type[M2HerError]:
    if status in (401, 403):
        return AuthenticationError
    if status == 402:
        return InsufficientBalance
    if status == 429:
        return RateLimited
    if status in (408, 504):
        return RequestTimeout
    if status >= 500:
        return ServerError
    return UnknownError


#: MiniMax's gateway ends its messages with the API code: ``"invalid params, … (2013)"``.
_TRAILING_CODE = re.compile(r"\((\d{3,6})\)\s*$")
_DIGITS = re.compile(r"[0-9]{1,9}")
#: Longest message kept from an error object; the rest of a runaway body is cut.
MAX_ERROR_MESSAGE = 500

#: The ``type`` (or string ``code``) of an error object, for when neither an API code nor
#: an HTTP error status says more (an error event inside a 200 stream).
_KIND_CLASSES: dict[str, type[M2HerError]] = {
    "authentication_error": AuthenticationError,
    "invalid_api_key": AuthenticationError,
    "permission_error": AuthenticationError,
    "insufficient_quota": InsufficientBalance,
    "rate_limit_error": RateLimited,
    "rate_limit_exceeded": RateLimited,
    "bad_request_error": InvalidParams,
    "invalid_request_error": InvalidParams,
    "api_error": ServerError,
    "overloaded_error": ServerError,
    "server_error": ServerError,
}


def error_from_object(
    error: dict[str, Any],
    *,
    http_status: int | None = None,
    trace_id: str | None = None,
    partial_text: str = "",
    flags: SensitiveFlags | None = None,
    prompt_near_limit: bool = False,
) -> M2HerError:
    """The typed error for an ``error`` object, the API's other error shape.

    It comes as MiniMax's gateway sends it,
    ``{"type": "error", "error": {"type", "message", "http_code"}}``, or as OpenAI's
    ``{"error": {"message", "type", "code"}}`` (``docs/m2her-api.md`` §6.4).
    ``http_status`` is the response's status when it is not 2xx; the object's
    ``http_code`` stands in for it otherwise. The API code is a numeric ``code``, else
    the bracketed number ending the message; a code of the table picks the class as
    ``base_resp`` would, else the HTTP status does, else the object's ``type``.
    """
    message = _text(error.get("message"))[:MAX_ERROR_MESSAGE]
    status = http_status if http_status is not None else _as_number(error.get("http_code"))
    code = _as_number(error.get("code"))
    if code is None and (found := _TRAILING_CODE.search(message)):
        code = int(found.group(1))
    if code is not None and code in _CODE_CLASSES:
        return error_from_code(
            code,
            message,
            trace_id=trace_id,
            http_status=status,
            partial_text=partial_text,
            flags=flags,
            prompt_near_limit=prompt_near_limit,
        )
    kind = _text(error.get("type")) or _text(error.get("code"))
    if status is not None and not 200 <= status < 300:
        cls = _class_of_status(status)
    else:
        cls = _KIND_CLASSES.get(kind, UnknownError)
    return cls(
        message or kind or "error",
        code=code,
        trace_id=trace_id,
        http_status=status,
        partial_text=partial_text,
        flags=flags,
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _as_number(value: object) -> int | None:
    """An integer given as a JSON number or as digits in a string (``"http_code": "500"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value)
    return None
