"""Reading a reply stream with a cap: a model that runs far past what was asked is cut."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.llm.client import ReplyStream
from bot.llm.types import MAX_COMPLETION_TOKENS, ChatRequest, ChatResult

#: Characters allowed per requested completion token before a reply counts as runaway.
#: Prose averages about 4 characters a token (CJK about 1); runs of spaces or dashes and
#: long URLs pack more into one. Twice the prose ratio never cuts a reply the model could
#: write within ``max_completion_tokens``, and still stops a stream that ignores it (20 MB
#: for 512 tokens) after 4 KB.
CHARS_PER_TOKEN = 8


@dataclass(frozen=True, slots=True)
class ReadReply:
    """What was read of a reply stream."""

    text: str
    #: The stream's own result; ``None`` when the reply was cut (its end was never read).
    result: ChatResult | None

    @property
    def cut(self) -> bool:
        """Whether the reply was cut short for running past its cap."""
        return self.result is None


def character_cap(request: ChatRequest) -> int:
    """The most characters a reply to ``request`` may have before it is cut."""
    return (request.max_completion_tokens or MAX_COMPLETION_TOKENS) * CHARS_PER_TOKEN


async def read_capped(
    stream: ReplyStream, cap: int, show: Callable[[str], Awaitable[None]]
) -> ReadReply:
    """Read ``stream``, passing each piece to ``show``, up to ``cap`` characters.

    Past the cap the stream is closed (the rest of its body is never read) and the text
    so far, exactly ``cap`` characters, is the reply. Errors of the stream propagate.
    """
    pieces: list[str] = []
    length = 0
    try:
        async for piece in stream:
            room = cap - length
            if len(piece) > room:
                if room:
                    pieces.append(piece[:room])
                    await show(piece[:room])
                return ReadReply("".join(pieces), None)
            length += len(piece)
            pieces.append(piece)
            await show(piece)
    finally:
        await stream.aclose()
    return ReadReply(stream.result.text, stream.result)
