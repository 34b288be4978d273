"""A ReplySink wrapper for the streaming benches: when did the engine get the first token?"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bot.characters.schema import Character
from bot.conversation.sink import ReplySink


class FirstTokenSink:
    """Passes everything to ``sink`` and appends ``time.monotonic()`` of the first delta to
    ``seen`` (the stand-ins stamp what becomes visible with the same clock)."""

    def __init__(self, sink: ReplySink, seen: list[float]) -> None:
        self._sink = sink
        self._seen = seen

    async def begin(self, character: Character) -> None:
        await self._sink.begin(character)

    async def delta(self, text: str) -> None:
        if not self._seen:
            self._seen.append(time.monotonic())
        await self._sink.delta(text)

    async def finish(self, text: str) -> Sequence[str]:
        return await self._sink.finish(text)

    async def retract(self, replacement: str | None = None) -> None:
        await self._sink.retract(replacement)

    async def notice(self, text: str) -> None:
        await self._sink.notice(text)
