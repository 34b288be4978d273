"""A fake MiniMax M2-her server that behaves like the real API, for tests and demos.

Start it with ``troupe fake-m2her [--host 127.0.0.1] [--port N] [--api-key KEY]`` or, in
a test, ``async with FakeM2Her() as fake`` and point the client at ``fake.base_url``.

Replies are deterministic (:mod:`bot.llm.fake.reply`), e.g.
``Aria heard Sam: “Evening! Mind if I dry off?” (a fake M2-her reply, 6 messages in
context)``, streamed in deltas of ``chunk_chars`` characters.

Tests script the next answers with :meth:`FakeM2Her.enqueue` (:class:`Reply`,
:class:`Error`, :class:`Drop`, :class:`HttpError`, each with ``delay`` before the first
byte and ``chunk_delay`` between stream events) and read :attr:`FakeM2Her.requests`.

By hand, put a magic word in the last user message:

=========================  ==========================================================
``[[fault:1002]]``         error 1002 (any code); ``[[fault:1008:json]]`` as plain JSON
                           on a stream; ``[[fault:1027:mid]]`` after two chunks
``[[sensitive:input:5]]``  1026, input blocked with ``input_sensitive_type`` 5
``[[sensitive:output:2]]`` 1027 mid-stream, output blocked with type 2
``[[flag:input:5]]``       a normal reply with the input flagged (status 0);
                           ``[[flag:output:2]]`` the same for the output
``[[drop]]``               the connection drops (after two chunks when streaming)
``[[slow]]``               1 s before the first byte, 0.25 s between chunks
``[[http:502]]``           a 502 HTML page (any status); ``[[http:500:json]]`` the
                           gateway's JSON error ``unknown error, 999 (1000)``
``[[long:3000]]``          3,000 characters of prose (any length);
                           ``[[long:300:58]]`` streamed with 58 ms before each delta
=========================  ==========================================================

A Bearer key of ``sk-invalid`` always gets 2049; a missing key gets 1004.

``FakeM2Her(reject_advanced_roles=True)`` (``troupe fake-m2her --reject-advanced-roles``)
answers HTTP 500 to any request holding ``user_system``, ``group`` or ``sample_message_*``.
The fake serves the OpenAI-compatible ``/v1/chat/completions`` too (``OPENAI_PATH``):
the same requests and scripts, answered in that route's shapes (``docs/m2her-api.md`` §10).
"""

from bot.llm.fake.reply import ECHO_CHARS, REPLY_TEMPLATE, long_text, reply_text
from bot.llm.fake.script import (
    UNKNOWN_ERROR_MESSAGE,
    Drop,
    Error,
    HttpError,
    Reply,
    Scripted,
    from_magic_words,
)
from bot.llm.fake.server import (
    INVALID_API_KEY,
    OPENAI_PATH,
    PATH,
    FakeM2Her,
    RecordedRequest,
    StreamTimes,
    StreamVariant,
    run_fake_server,
)

__all__ = [
    "ECHO_CHARS",
    "INVALID_API_KEY",
    "OPENAI_PATH",
    "PATH",
    "REPLY_TEMPLATE",
    "UNKNOWN_ERROR_MESSAGE",
    "Drop",
    "Error",
    "FakeM2Her",
    "HttpError",
    "RecordedRequest",
    "Reply",
    "Scripted",
    "StreamTimes",
    "StreamVariant",
    "from_magic_words",
    "long_text",
    "reply_text",
    "run_fake_server",
]
