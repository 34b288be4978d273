"""The fake server's request checks (``docs/m2her-api.md`` §2.4 and §12).

Each check returns the detail that follows ``invalid params, `` in a 2013 answer.
Unknown top-level fields are ignored, and a message may omit ``content``.
"""

from __future__ import annotations

from typing import Any

from bot.llm.tokens import estimate_message_tokens
from bot.llm.types import CONTEXT_WINDOW, MAX_COMPLETION_TOKENS, MODEL, Role

_ROLES = frozenset(str(role) for role in Role)


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """The estimated prompt tokens of already validated ``messages``."""
    return sum(estimate_message_tokens(m.get("content"), m.get("name")) for m in messages)


def invalid_params(body: object) -> str | None:
    """Why ``body`` is not a valid M2-her request, or ``None`` if it is."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if "model" not in body:
        return "binding: expr_path=model, cause=missing required parameter"
    if body["model"] != MODEL:
        return f"unknown model {body['model']!r}"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty array"
    for i, message in enumerate(messages):
        problem = _message_problem(message)
        if problem:
            return f"messages[{i}]: {problem}"
    if not any(m.get("content") for m in messages):
        return "chat content is empty"
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and not (_is_number(value) and 0 < value <= 1):
            return f"{name} must be in (0, 1]"
    tokens = body.get("max_completion_tokens")
    if tokens is not None and not (
        isinstance(tokens, int) and not isinstance(tokens, bool) and 1 <= tokens <= 2048
    ):
        return f"max_completion_tokens must be in [1, {MAX_COMPLETION_TOKENS}]"
    if "stream" in body and not isinstance(body["stream"], bool):
        return "stream must be a boolean"
    if prompt_tokens(messages) + (tokens or MAX_COMPLETION_TOKENS) > CONTEXT_WINDOW:
        return "context window exceeds limit"
    return None


def _message_problem(message: object) -> str | None:
    if not isinstance(message, dict):
        return "must be an object"
    if message.get("role") not in _ROLES:
        return f"unknown role {message.get('role')!r}"
    if not isinstance(message.get("content", ""), str):
        return "content must be a string"
    if not isinstance(message.get("name", ""), str):
        return "name must be a string"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
