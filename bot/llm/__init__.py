"""The MiniMax M2-her layer: everything Troupe knows about HTTP, SSE and the API's errors.

* :mod:`bot.llm.types`: typed, validated requests and results;
* :mod:`bot.llm.client`: :class:`~bot.llm.client.M2HerClient` (complete, stream, retries);
* :mod:`bot.llm.errors`: the typed failures and the code/HTTP-status mapping;
* :mod:`bot.llm.sse` and :mod:`bot.llm.response`: the stream parser and reply assembly;
* :mod:`bot.llm.retry`: :class:`~bot.llm.retry.RetryPolicy` and backoff;
* :mod:`bot.llm.tokens`: the shared token estimate;
* :mod:`bot.llm.fake`: the fake M2-her server for tests and demos (not part of this API).

Of the rest of Troupe it uses only :mod:`bot.errors` (its errors derive from
:class:`~bot.errors.TroupeError`). The wire format and its uncertainties are described in
``docs/m2her-api.md``.
"""

from bot.llm.client import M2HerClient, ReplyStream, Timeouts
from bot.llm.errors import (
    AuthenticationError,
    ContextTooLong,
    InputBlocked,
    InsufficientBalance,
    InvalidInput,
    InvalidParams,
    M2HerError,
    OutputBlocked,
    RateLimited,
    RequestTimeout,
    ServerError,
    StreamInterrupted,
    UnknownError,
    UsageWindowExceeded,
)
from bot.llm.retry import RetryPolicy
from bot.llm.tokens import estimate_message_tokens, estimate_prompt_tokens, estimate_text_tokens
from bot.llm.types import (
    CONTEXT_WINDOW,
    MAX_COMPLETION_TOKENS,
    MODEL,
    ChatMessage,
    ChatRequest,
    ChatResult,
    InvalidRequest,
    Role,
    SensitiveFlags,
    SensitiveType,
    Usage,
)

__all__ = [
    "CONTEXT_WINDOW",
    "MAX_COMPLETION_TOKENS",
    "MODEL",
    "AuthenticationError",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "ContextTooLong",
    "InputBlocked",
    "InsufficientBalance",
    "InvalidInput",
    "InvalidParams",
    "InvalidRequest",
    "M2HerClient",
    "M2HerError",
    "OutputBlocked",
    "RateLimited",
    "ReplyStream",
    "RequestTimeout",
    "RetryPolicy",
    "Role",
    "SensitiveFlags",
    "SensitiveType",
    "ServerError",
    "StreamInterrupted",
    "Timeouts",
    "UnknownError",
    "Usage",
    "UsageWindowExceeded",
    "estimate_message_tokens",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
]
