"""The terminal chat as a person uses it: ``troupe chat`` under a real pseudo-terminal, where
Ctrl-C is the terminal's interrupt character and model text reaches the screen."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pty
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.characters.schema import Character
from bot.conversation.sink import DeliveryFailed
from bot.llm.fake import FakeM2Her, Reply
from bot.platforms.console import ConsoleSink, TerminalFilter, terminal_safe
from bot.storage import open_storage
from tests.conftest import TEST_API_KEY

REPO = Path(__file__).resolve().parents[2]
CTRL_C = b"\x03"
#: Ctrl-C must end the chat this soon (before the fix it waited for Enter, forever).
EXIT_WITHIN = 2.0


@dataclass
class Terminal:
    """``troupe chat`` running under a pseudo-terminal, and what it wrote to the screen."""

    pid: int
    master: int
    screen: bytearray = field(default_factory=bytearray)

    def _read_available(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # OSError: the child closed it
            while chunk := os.read(self.master, 65536):
                self.screen.extend(chunk)

    async def expect(self, text: bytes, timeout: float = 20.0) -> None:  # noqa: ASYNC109
        """Wait until ``text`` is on the screen."""
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < deadline, f"{text!r} not shown; screen: {self.screen!r}"
            self._read_available()
            await asyncio.sleep(0.01)

    def type(self, keys: bytes) -> None:
        """What the person types (the terminal turns Ctrl-C into SIGINT)."""
        os.write(self.master, keys)

    async def exit_code(self, timeout: float) -> int | None:  # noqa: ASYNC109
        """The exit code once the process ends within ``timeout`` seconds, else None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read_available()
            if (code := self.ended()) is not None:
                self._read_available()
                return code
            await asyncio.sleep(0.01)
        return None

    def ended(self) -> int | None:
        """The exit code if the process has ended (without waiting for it)."""
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        return os.waitstatus_to_exitcode(status) if pid else None

    def kill(self) -> None:
        """End the process if it still runs."""
        with contextlib.suppress(ChildProcessError):
            if self.ended() is None:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)


@pytest.fixture
async def terminal(fake_m2her: FakeM2Her, tmp_path: Path) -> AsyncIterator[Terminal]:
    """``troupe chat aria --user Sam`` in a pseudo-terminal, talking to ``fake_m2her``."""
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TROUPE_", "DISCORD_"))},
        "MINIMAX_API_KEY": TEST_API_KEY,
        "MINIMAX_BASE_URL": fake_m2her.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'chat.sqlite3'}",
        "TROUPE_CHARACTERS_DIR": str(REPO / "characters"),
    }
    command = [sys.executable, "-m", "bot", "chat", "aria", "--user", "Sam"]
    pid, master = pty.fork()
    if pid == 0:  # the child: the pseudo-terminal is its controlling terminal
        os.chdir(tmp_path)
        os.execve(sys.executable, command, environ)
    os.set_blocking(master, False)
    shown = Terminal(pid, master)
    try:
        await shown.expect(b"Sam> ")
        yield shown
    finally:
        shown.kill()
        os.close(master)


async def stored_messages(tmp_path: Path) -> list[tuple[str, str]]:
    """(role, text) of the terminal conversation with Aria, oldest first."""
    storage = await open_storage(f"sqlite+aiosqlite:///{tmp_path / 'chat.sqlite3'}")
    try:
        conversation = await storage.conversation("console", "aria", default_character="aria")
        history = await storage.history_window(conversation.id, 100)
    finally:
        await storage.close()
    return [(m.role, m.text) for m in history]


async def test_ctrl_c_at_the_prompt_exits_at_once(terminal: Terminal) -> None:
    terminal.type(CTRL_C)
    assert await terminal.exit_code(EXIT_WITHIN) == 130


async def test_ctrl_c_mid_reply_exits_at_once_and_the_reply_is_not_kept(
    terminal: Terminal, fake_m2her: FakeM2Her, tmp_path: Path
) -> None:
    fake_m2her.enqueue(Reply(text="Once upon a time " * 20, chunk_delay=0.2))
    terminal.type(b"Tell me a story\r")
    await terminal.expect(b"Aria: Once upon a")
    terminal.type(CTRL_C)
    assert await terminal.exit_code(EXIT_WITHIN) == 130
    # As on the other platforms: what the user said is kept, a reply cut short is not.
    greeting, *rest = await stored_messages(tmp_path)
    assert greeting[0] == "assistant"
    assert rest == [("user", "Tell me a story")]


async def test_escape_sequences_from_the_model_never_reach_the_terminal(
    terminal: Terminal, fake_m2her: FakeM2Her
) -> None:
    hostile = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m and \x9b2Jplain\r\x00 text."
    fake_m2her.enqueue(Reply(text=hostile))
    terminal.type(b"hi\r")
    await terminal.expect(b"red and plain text.")
    assert b"\x1b" not in terminal.screen
    assert "\x9b".encode() not in terminal.screen
    assert b"\x00" not in terminal.screen
    assert b"pwned" not in terminal.screen


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("\x1b[1;31mbold red\x1b[0m", "bold red"),
        ("title\x1b]0;evil\x07 set", "title set"),
        ("link \x1b]8;;http://x\x1b\\here\x1b]8;;\x1b\\", "link here"),
        ("\x9b31m8-bit csi", "8-bit csi"),
        ("\x1bPq#0;2;0;0;0\x1b\\sixel gone", "sixel gone"),
        ("bell\x07 back\x08space del\x7f c1\x85 cr\r", "bell backspace del c1 cr"),
        ("lines\nand\ttabs stay", "lines\nand\ttabs stay"),
        ("Unicode stays: é 日本語 🙂 “quotes”", "Unicode stays: é 日本語 🙂 “quotes”"),
        ("a lone \x1b", "a lone "),
    ],
)
def test_terminal_safe_strips_escapes_and_controls(text: str, safe: str) -> None:
    assert terminal_safe(text) == safe


def test_an_escape_sequence_cut_between_two_deltas_is_stripped_whole() -> None:
    text = "a\x1b]0;title\x07b\x1b]8;;u\x1b\\c\x1b[1;31md\x9b2Je\x1bPq#0\x1b\\f\x1b7g."
    for cut in range(len(text) + 1):
        safe = TerminalFilter()
        assert safe(text[:cut]) + safe(text[cut:]) == "abcdefg.", f"cut at {cut}"


def test_an_unterminated_escape_string_holds_back_only_so_much() -> None:
    safe = TerminalFilter()
    assert safe("text \x1b]0;no end") == "text "
    assert safe(" more") == ""  # still inside the string, as a terminal would be
    assert safe("x" * 300).endswith("x" * 300)  # too long to be a title: let it go


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


async def test_the_terminal_streams_through_the_pump_and_ends_with_the_final_text() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    character = Character(name="Aria", description="A librarian.")
    await sink.begin(character)
    for piece in ("Hello", " there", ", traveller."):
        await sink.delta(piece)
        await asyncio.sleep(0.05)
    assert out.getvalue() == "Aria: Hello there, traveller."  # shown as it came
    await sink.finish("Hello there, traveller.")
    assert out.getvalue() == "Aria: Hello there, traveller.\n"

    await sink.begin(character)
    await sink.delta("Hmm")
    await asyncio.sleep(0.05)
    await sink.finish("Something else entirely.")  # the final text wins, written whole
    assert out.getvalue().endswith("Aria: Hmm\nAria: Something else entirely.\n")

    await sink.begin(character)
    await sink.delta("flagged words")
    await asyncio.sleep(0.05)
    await sink.retract("*Aria changes the subject.*")
    assert out.getvalue().endswith(
        "Aria: flagged words\n[the reply above was withdrawn]\nAria: *Aria changes the subject.*\n"
    )
