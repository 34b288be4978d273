"""The terminal's sink keeps the delivery contract: a closed terminal takes nothing again."""

from __future__ import annotations

import io

import pytest

from bot.characters.schema import Character
from bot.conversation.sink import DeliveryFailed
from bot.platforms.console import ConsoleSink


async def test_a_closed_terminal_fails_delivery_for_good() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    await sink.begin(Character(name="Aria", description="A librarian."))
    assert await sink.finish("Hello.") == []  # shown; a terminal has no message ids
    assert out.getvalue() == "Aria: Hello.\n"
    out.close()
    with pytest.raises(DeliveryFailed) as failed:
        await sink.finish("Anyone?")
    assert failed.value.permanent
    with pytest.raises(DeliveryFailed):
        await sink.notice("a notice")
