"""Typed M2-her requests and results (wire format in ``docs/m2her-api.md`` §2–§4)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

MODEL = "M2-her"
#: The international endpoint; mainland-China keys use https://api.minimaxi.com.
DEFAULT_BASE_URL = "https://api.minimax.io"
#: The M2-her routes: MiniMax's own ``chatcompletion_v2``, or the OpenAI-compatible one.
ApiStyle = Literal["minimax", "openai"]
MAX_COMPLETION_TOKENS = 2048
CONTEXT_WINDOW = 65_536


class Role(enum.StrEnum):
    """The seven message roles M2-her accepts."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    USER_SYSTEM = "user_system"
    GROUP = "group"
    SAMPLE_MESSAGE_USER = "sample_message_user"
    SAMPLE_MESSAGE_AI = "sample_message_ai"


# Members and their values alike (a StrEnum member equals its value).
_ROLES = frozenset(Role)


class SensitiveType(enum.IntEnum):
    """Category codes of ``input_sensitive_type`` / ``output_sensitive_type``."""

    NONE = 0
    SERIOUS_VIOLATION = 1
    PORNOGRAPHY = 2
    ADVERTISEMENT = 3
    PROHIBITED = 4
    ABUSE = 5
    VIOLENCE = 6
    OTHER = 7

    @property
    def label(self) -> str:
        """A human-readable name, e.g. ``"violence/terrorism"``."""
        return _SENSITIVE_LABELS[self]

    @classmethod
    def parse(cls, raw: object) -> SensitiveType | int:
        """Known codes become members; unknown values pass through raw as ints."""
        try:
            code: int = int(raw)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return cls.NONE
        try:
            return cls(code)
        except ValueError:
            return code


_SENSITIVE_LABELS = {
    SensitiveType.NONE: "none",
    SensitiveType.SERIOUS_VIOLATION: "serious violation",
    SensitiveType.PORNOGRAPHY: "pornography",
    SensitiveType.ADVERTISEMENT: "advertisement",
    SensitiveType.PROHIBITED: "prohibited content",
    SensitiveType.ABUSE: "abuse",
    SensitiveType.VIOLENCE: "violence/terrorism",
    SensitiveType.OTHER: "other",
}


class InvalidRequest(ValueError):
    """A request failed local validation; nothing was sent. ``field`` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class ChatMessage(NamedTuple):
    """One entry of ``messages``. ``content`` may be ``None`` only for ``system``.

    A named tuple (immutable like the dataclasses here, and built in a quarter of the time):
    every turn makes one per message of its prompt.
    """

    role: Role
    content: str | None
    name: str | None = None

    def to_wire(self) -> dict[str, str]:
        body: dict[str, str] = {"role": str(self.role)}
        if self.name is not None:
            body["name"] = self.name
        # An absent system content is omitted, never sent as null (§3.3).
        if self.content is not None:
            body["content"] = self.content
        return body


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated ``chatcompletion_v2`` request body for M2-her.

    ``extra`` is passed through verbatim for parameters the docs list only for other
    models (``mask_sensitive_info``, ``stream_options`` …); nothing is sent by default.
    """

    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_completion_tokens: int | None = None
    model: str = MODEL
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InvalidRequest` naming the first bad field."""
        if self.model != MODEL:
            raise InvalidRequest("model", f"must be {MODEL!r}, got {self.model!r}")
        if not self.messages:
            raise InvalidRequest("messages", "must not be empty")
        for i, message in enumerate(self.messages):
            if not isinstance(message, ChatMessage):
                raise InvalidRequest(f"messages[{i}]", "must be a ChatMessage")
            if not isinstance(message.role, str) or message.role not in _ROLES:
                raise InvalidRequest(f"messages[{i}].role", f"unknown role {message.role!r}")
            if message.content is None:
                if message.role is not Role.SYSTEM:
                    raise InvalidRequest(
                        f"messages[{i}].content", "required for every role but system"
                    )
            elif not isinstance(message.content, str):
                raise InvalidRequest(f"messages[{i}].content", "must be a string")
            if message.name is not None and not isinstance(message.name, str):
                raise InvalidRequest(f"messages[{i}].name", "must be a string")
        _check_unit_interval("temperature", self.temperature)
        _check_unit_interval("top_p", self.top_p)
        tokens = self.max_completion_tokens
        if tokens is not None and (
            isinstance(tokens, bool)
            or not isinstance(tokens, int)
            or not 1 <= tokens <= MAX_COMPLETION_TOKENS
        ):
            raise InvalidRequest(
                "max_completion_tokens", f"must be an integer in 1..{MAX_COMPLETION_TOKENS}"
            )

    def to_wire(self, *, stream: bool) -> dict[str, Any]:
        """The JSON body, exactly as it goes over the wire."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_wire() for m in self.messages],
        }
        if stream:
            body["stream"] = True
        for key in ("temperature", "top_p", "max_completion_tokens"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        body.update(self.extra)
        return body


def _check_unit_interval(name: str, value: float | None) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= 1
    ):
        raise InvalidRequest(name, f"must be a number with 0 < {name} <= 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage; every field is optional on the wire, so missing ones are 0."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    total_characters: int = 0


@dataclass(frozen=True, slots=True)
class SensitiveFlags:
    """The five moderation fields every response may carry (``docs/m2her-api.md`` §7)."""

    input_sensitive: bool = False
    input_sensitive_type: SensitiveType | int = SensitiveType.NONE
    output_sensitive: bool = False
    output_sensitive_type: SensitiveType | int = SensitiveType.NONE
    output_sensitive_int: int = 0


@dataclass(frozen=True, slots=True)
class ChatResult:
    """One finished reply, streamed or not."""

    text: str
    finish_reason: str | None
    usage: Usage
    flags: SensitiveFlags
    response_id: str | None
    trace_id: str | None
    name: str | None = None
