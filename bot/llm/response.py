"""Fold M2-her response objects into a :class:`~bot.llm.types.ChatResult`.

A non-streaming reply is one JSON object; a streamed reply is a series of SSE events
(``docs/m2her-api.md`` §5). Both are fed, object by object as they are decoded, into
one :class:`ReplyAssembler`, which applies the liberal rules of §5.3 and §7 (JSON objects are
checked as ``dict``: a check against ``Mapping`` is several times slower, and a chunk
runs several):

* ``base_resp`` is checked on every object; a non-zero code raises its typed error, and
  so does an ``error`` object (the API's other error shape, MiniMax's gateway's or
  OpenAI's: :func:`~bot.llm.errors.error_from_object`);
* ``output_sensitive: true`` anywhere raises :class:`~bot.llm.errors.OutputBlocked`;
* deltas are appended, while a ``message`` (the non-streaming body or the closing
  summary event) is the authoritative full text and is never appended to them;
* the last non-zero ``usage`` wins; every field is optional, unknown fields are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.llm.errors import (
    InputBlocked,
    M2HerError,
    OutputBlocked,
    ServerError,
    StreamInterrupted,
    error_from_code,
    error_from_object,
)
from bot.llm.types import ChatResult, SensitiveFlags, SensitiveType, Usage

logger = logging.getLogger("bot.llm")

_USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "total_characters")


def parse_usage(raw: object) -> Usage | None:
    """A :class:`Usage` from a ``usage`` object, or ``None`` if it is absent or all zero."""
    if not isinstance(raw, dict):
        return None
    values = {key: _as_int(raw.get(key)) for key in _USAGE_FIELDS}
    if not any(values.values()):
        return None
    return Usage(**values)


def merge_flags(flags: SensitiveFlags, obj: dict[str, Any]) -> SensitiveFlags:
    """``flags`` updated with whichever of the five moderation fields ``obj`` carries.

    A flag once raised stays raised: a later chunk saying ``false`` does not undo it.
    A non-zero ``input_sensitive_type`` raises ``input_sensitive`` too, since the
    documented chunks carry the type without the flag. The output flag needs the
    explicit ``output_sensitive: true``, because it withholds the whole reply.
    """
    for key in _FLAG_FIELDS:  # a loop, not any(): this runs for every streamed chunk
        if obj.get(key):
            break
    else:
        return flags  # all absent, false or zero: nothing to raise
    input_type = SensitiveType.parse(obj.get("input_sensitive_type", 0))
    output_type = SensitiveType.parse(obj.get("output_sensitive_type", 0))
    return SensitiveFlags(
        input_sensitive=flags.input_sensitive
        or obj.get("input_sensitive") is True
        or input_type != SensitiveType.NONE,
        input_sensitive_type=input_type or flags.input_sensitive_type,
        output_sensitive=flags.output_sensitive or obj.get("output_sensitive") is True,
        output_sensitive_type=output_type or flags.output_sensitive_type,
        output_sensitive_int=_as_int(obj.get("output_sensitive_int")) or flags.output_sensitive_int,
    )


_FLAG_FIELDS = (
    "input_sensitive",
    "input_sensitive_type",
    "output_sensitive",
    "output_sensitive_type",
    "output_sensitive_int",
)


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float | str):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return 0
    return 0


class ReplyAssembler:
    """Accumulates one reply from its response objects.

    ``trace_id`` is the ``Trace-Id`` response header, if any; the body ``id`` (or an error
    body's ``request_id``) is the fallback. ``http_status`` is the response's status when
    it is an error (the body then only explains it). ``prompt_near_limit`` is asked only
    when an error arrives, and passed on to :func:`error_from_code`. ``streaming`` only
    chooses how an incomplete reply is reported.
    """

    __slots__ = (
        "_final_text",
        "_parts",
        "finish_reason",
        "flags",
        "http_status",
        "name",
        "prompt_near_limit",
        "response_id",
        "streaming",
        "trace_id",
        "usage",
    )

    def __init__(
        self,
        *,
        trace_id: str | None,
        streaming: bool,
        prompt_near_limit: Callable[[], bool] = lambda: False,
    ) -> None:
        self.trace_id = trace_id
        self.streaming = streaming
        self.prompt_near_limit = prompt_near_limit
        self.response_id: str | None = None
        self.http_status: int | None = None
        self.finish_reason: str | None = None
        self.usage = Usage()
        self.flags = SensitiveFlags()
        self.name: str | None = None
        self._parts: list[str] = []
        self._final_text: str | None = None

    @property
    def text(self) -> str:
        """The reply text so far: the full message if one came, else the joined deltas.

        An empty message (as moderation sends) does not hide the deltas already seen.
        """
        return self._final_text or "".join(self._parts)

    @property
    def trace(self) -> str | None:
        """The id to quote for support: the ``Trace-Id`` header, else the body ``id``."""
        return self.trace_id or self.response_id

    def add(self, obj: object) -> str:
        """Fold in one response object; return the new delta text it carried.

        Raises the typed :class:`M2HerError` for an error or a moderation block.
        """
        if not isinstance(obj, dict):
            logger.debug("ignoring a non-object M2-her event (trace_id=%s)", self.trace)
            return ""
        if self.response_id is None:
            self.response_id = _as_str(obj.get("id") or obj.get("request_id")) or None
        self.flags = merge_flags(self.flags, obj)
        base_resp = obj.get("base_resp")
        if isinstance(base_resp, dict):
            code = _as_int(base_resp.get("status_code"))
            if code != 0:
                raise error_from_code(
                    code,
                    str(base_resp.get("status_msg") or ""),
                    trace_id=self.trace,
                    http_status=self.http_status,
                    partial_text=self.text,
                    flags=self.flags,
                    prompt_near_limit=code == 1039 and self.prompt_near_limit(),
                )
        error = obj.get("error")
        if isinstance(error, dict):
            raise error_from_object(
                error,
                http_status=self.http_status,
                trace_id=self.trace,
                partial_text=self.text,
                flags=self.flags,
                prompt_near_limit=self.prompt_near_limit(),
            )
        usage = parse_usage(obj.get("usage"))
        if usage is not None:
            self.usage = usage
        delta = self._add_choices(obj.get("choices"))
        if self.flags.output_sensitive:
            raise OutputBlocked(
                "output_sensitive", trace_id=self.trace, partial_text=self.text, flags=self.flags
            )
        return delta

    def _add_choices(self, choices: object) -> str:
        if not isinstance(choices, list):
            return ""  # null on errors; nothing to add
        delta_text = ""
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            message = choice.get("message")
            delta = choice.get("delta")
            if isinstance(message, dict):
                # The whole reply (non-streaming body or the closing summary event).
                self._final_text = _as_str(message.get("content"))
                if isinstance(message.get("name"), str):
                    self.name = message["name"]
            elif isinstance(delta, dict):
                piece = _as_str(delta.get("content"))
                if piece:
                    self._parts.append(piece)
                    delta_text += piece
                if self.name is None and isinstance(delta.get("name"), str):
                    self.name = delta["name"] or None
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                self.finish_reason = reason
        return delta_text

    def result(self) -> ChatResult:
        """The finished reply, or the error explaining why it is not complete."""
        joined = "".join(self._parts)
        if self._final_text is not None and joined and joined != self._final_text:
            logger.info(
                "M2-her summary text differs from the streamed deltas; using the summary "
                "(trace_id=%s)",
                self.trace,
            )
        text = self.text
        if not text and self.flags.input_sensitive:
            raise InputBlocked(
                "input_sensitive", trace_id=self.trace, partial_text="", flags=self.flags
            )
        if self._final_text is None and self.finish_reason is None:
            raise self._incomplete()
        return ChatResult(
            text=text,
            finish_reason=self.finish_reason,
            usage=self.usage,
            flags=self.flags,
            response_id=self.response_id,
            trace_id=self.trace,
            name=self.name,
        )

    def _incomplete(self) -> M2HerError:
        if self.streaming:
            what = "stream ended before the reply finished" if self._parts else "empty stream"
            return StreamInterrupted(what, trace_id=self.trace, partial_text=self.text)
        return ServerError("response has no reply", trace_id=self.trace)


def _as_str(value: object) -> str:
    return value if isinstance(value, str) else ""
