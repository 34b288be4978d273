"""The terminal as a platform: a writer talks to a character before it goes live.

Interactive on a TTY (a prompt, streamed replies); on a pipe it answers each input line in
turn and exits at end of input, so scripts can drive it.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import os
import re
import stat
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TextIO

from bot.characters.schema import Character
from bot.conversation import commands
from bot.conversation.commands import Caller, Question
from bot.conversation.incoming import ConversationKey, Incoming
from bot.conversation.manager import ConversationManager
from bot.conversation.sink import DeliveryFailed, ReplySink, SwipeControls
from bot.conversation.swipes import SwipeAction
from bot.errors import Refusal
from bot.platforms.streaming import Pace, StreamingReply, WriteBudget

PLATFORM = "console"

HELP = """Commands:
  /character        who is in the scene, and who could be
  /character NAME   talk to another character (NAME: file name or character name)
  /scene NAME       bring a character into the scene, or send it out
  /persona TEXT     who you are in the story (/persona alone shows it, /persona clear clears it)
  /lorebooks        the world books used here (/lorebooks add BOOK, /lorebooks remove BOOK)
  /regen            write the last reply again (another alternative)
  /prev, /next      show the last reply's previous or next alternative
  /continue         let the character go on with its last reply
  /usage            tokens used and their cost
  /nudges on|off    let the character write first after a quiet while (/nudges alone: when)
  /memory           what the character remembers (/memory forget N, /memory fix N TEXT)
  /reset            forget this conversation's history
  /forget           erase everything stored about you
  /help             this text
  /quit             leave (Ctrl-D works too)"""
#: The terminal's swipe commands.
_SWIPES = {
    "/regen": SwipeAction.REGENERATE,
    "/prev": SwipeAction.PREVIOUS,
    "/next": SwipeAction.NEXT,
    "/continue": SwipeAction.CONTINUE,
}
#: The answer that confirms a question; any other cancels it.
YES = "yes"


#: The opening of an escape string (OSC, DCS, SOS, PM, APC), 7- and 8-bit, and its body.
_STRING = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x00-\x1f\x7f-\x9f]*"
#: Terminal escape sequences: CSI, escape strings up to their terminator, any other escape.
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]" rf"|{_STRING}(?:\x07|\x1b\\|\x9c)" r"|\x1b[ -/]*[0-~]"
)
#: An escape sequence that has begun but not ended at the end of the text.
_UNFINISHED = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*\Z" rf"|{_STRING}\x1b?\Z" r"|\x1b[ -/]*\Z")
#: C0 and C1 control characters and DEL, except newline and tab.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: The longest unfinished escape sequence held back for the next piece of text.
_HOLD = 256


def terminal_safe(text: str) -> str:
    """``text`` without escape sequences or control characters other than newline and tab, so
    that model text cannot move the cursor, recolour, retitle or clear the terminal."""
    return _CONTROL.sub("", _ESCAPE.sub("", text))


class TerminalFilter:
    """:func:`terminal_safe` for text written in pieces (streamed deltas): an escape sequence
    cut between two pieces is held back until its end arrives, so no half of it shows."""

    def __init__(self) -> None:
        self._held = ""

    def __call__(self, text: str) -> str:
        text = self._held + text
        unfinished = _UNFINISHED.search(text)
        cut = unfinished.start() if unfinished else len(text)
        if len(text) - cut > _HOLD:
            cut = len(text)
        self._held = text[cut:]
        return terminal_safe(text[:cut])


class TerminalScreen:
    """The terminal as the streaming pump sees it: a reply is written as it grows (its
    preview), and the final text completes it, or is written again whole if it differs.
    Nothing written can be taken back, and there is no limit to keep to."""

    limit = sys.maxsize

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._safe = TerminalFilter()
        #: What the reply being written shows so far on its line.
        self._shown = ""

    def measure(self, text: str) -> int:
        """A terminal has no length limit to measure against."""
        return len(text)

    async def show(self, text: str) -> None:
        """Write what ``text`` adds to the reply on screen."""
        if not text.startswith(self._shown):
            self._write("\n")
            self._shown = ""
        self._write(text[len(self._shown) :])
        self._shown = text

    async def clear(self) -> None:
        """Say that the reply on screen was withdrawn."""
        self._write("\n[the reply above was withdrawn]\n")
        self._shown = ""

    async def send(self, text: str) -> str:
        """End the reply with exactly ``text``."""
        if self._shown and text.startswith(self._shown):
            self._write(text[len(self._shown) :] + "\n")
        else:
            self._write(("\n" if self._shown else "") + text + "\n")
        self._shown = ""
        return ""

    async def edit(self, message_id: str, text: str) -> None:
        """A written line cannot change: write the new text."""
        await self.send(text)

    async def delete(self, message_id: str) -> None:
        """A written line cannot be taken back."""

    async def typing(self) -> None:
        """A terminal shows no typing."""

    def line(self, text: str) -> None:
        """Write ``text`` on a line of its own."""
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        with _delivery():
            self._out.write(self._safe(text))
            self._out.flush()


class ConsoleSink:
    """A :class:`~bot.conversation.sink.ReplySink` that streams to a text stream, through the
    same pump as every platform."""

    def __init__(self, out: TextIO) -> None:
        self._screen = TerminalScreen(out)
        self._budget = WriteBudget(Pace((), preview_gap=0.0))
        self._reply: StreamingReply | None = None
        self._controls: SwipeControls | None = None

    async def begin(self, character: Character) -> None:
        """A reply from ``character`` starts: its name, then its words as they come."""
        screen = self._screen
        self._reply = StreamingReply(
            screen, self._budget, header=f"{character.name}: ", preview=screen
        )
        await self._reply.begin()

    async def begin_over(
        self, character: Character, message_ids: Sequence[str], shown: str, *, keep: bool
    ) -> None:
        """A written line cannot change: a rewritten reply is written anew, whole."""
        await self.begin(character)
        if keep and self._reply is not None:
            await self._reply.delta(shown)

    async def offer_controls(self, controls: SwipeControls) -> None:
        """A terminal has no buttons: once a reply has alternatives, the line after it says
        which is shown."""
        self._controls = controls

    async def delta(self, text: str) -> None:
        """More of the reply."""
        if self._reply is not None:
            await self._reply.delta(text)

    async def finish(self, text: str) -> Sequence[str]:
        """Show ``text``; a terminal has no message ids, so none are returned."""
        if self._reply is None:
            raise RuntimeError("finish() before begin()")
        await self._reply.finish(text)
        controls, self._controls = self._controls, None
        if controls is not None and controls.count > 1:
            self._screen.line(f"* {controls.label} (/prev, /next, /regen)")
        return []

    async def retract(self, replacement: str | None = None) -> None:
        """Say the reply was withdrawn; with ``replacement``, write that instead."""
        if self._reply is not None:
            await self._reply.retract(replacement)

    async def notice(self, text: str) -> None:
        """A short notice on a line of its own."""
        self._screen.line(f"* {text}")


class LineReader:
    """Reads lines from ``stdin`` without parking a thread in a blocking read on a terminal or
    a pipe: the event loop waits for input instead, so Ctrl-C ends the chat at once (a thread
    stuck in ``readline()`` kept the process alive until Enter). Files and in-memory streams,
    which never keep a read waiting, are read in a worker thread."""

    def __init__(self, stdin: TextIO) -> None:
        self._stdin = stdin
        self._fd = _pollable_fd(stdin)
        self._decoder = codecs.getincrementaldecoder(stdin.encoding or "utf-8")("replace")
        self._pending = ""
        self._ended = False

    async def readline(self) -> str:
        """The next line with its newline; the rest without one at end of input; then ``""``."""
        if self._fd is None:
            return await asyncio.to_thread(self._stdin.readline)
        while "\n" not in self._pending and not self._ended:
            chunk = await self._read(self._fd)
            self._ended = not chunk
            self._pending += self._decoder.decode(chunk, final=self._ended)
        line, newline, self._pending = self._pending.partition("\n")
        return line + newline

    @staticmethod
    async def _read(fd: int) -> bytes:
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        try:
            loop.add_reader(fd, wake)
        except (OSError, NotImplementedError):  # e.g. /dev/null, or an event loop without it
            return await asyncio.to_thread(os.read, fd, 65536)
        try:
            await readable
        finally:
            loop.remove_reader(fd)
        return os.read(fd, 65536)


def _pollable_fd(stream: TextIO) -> int | None:
    """The file descriptor behind ``stream`` when the event loop could wait on it."""
    with contextlib.suppress(AttributeError, ValueError, io.UnsupportedOperation):
        fd = stream.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
    return None


@contextlib.contextmanager
def _delivery() -> Iterator[None]:
    """A closed terminal or pipe takes nothing again: :class:`DeliveryFailed`, permanent."""
    try:
        yield
    except (OSError, ValueError) as error:  # ValueError: the stream was closed
        raise DeliveryFailed(f"the terminal is gone: {error}", permanent=True) from None


class ConsoleChat:
    """One terminal session with one user name, who administers their own conversation.

    With ``confirm``, ``/reset`` and ``/forget`` ask first and the next line answers; without
    (a script on a pipe, which has decided already) they act at once.
    """

    def __init__(
        self,
        manager: ConversationManager,
        *,
        character: str,
        user_name: str,
        out: TextIO,
        confirm: bool = True,
        scene: Sequence[str] = (),
    ) -> None:
        self._manager = manager
        #: Characters brought into the scene at the start, besides ``character``.
        self._scene = scene
        self._user = user_name
        self._key = ConversationKey(PLATFORM, manager.characters.get(character).id)
        self._caller = Caller(self._key, user_name)
        self._sink = ConsoleSink(out)
        self._confirm = confirm
        #: What the answer to the question just asked would do.
        self._pending: Callable[[], Awaitable[str]] | None = None

    async def start(self) -> None:
        """Bind the chosen character and greet when the conversation is new."""
        character = await self._manager.set_character(self._key, self._key.chat_id)
        for name in self._scene:
            await self._manager.add_to_scene(self._key, name)
        others = [c.name for c in await self._manager.scene(self._key)][1:]
        with_them = f" with {', '.join(others)}" if others else ""
        await self._sink.notice(
            f"Talking to {character.name}{with_them} as {self._user}. /help for commands."
        )
        await self._manager.greet(self._key, self._sink, user_name=self._user)
        # With /nudges on, the character may speak first in this session.
        self._manager.nudges.register(PLATFORM, self._nudge_sink, only=self._key)

    async def _nudge_sink(self, key: ConversationKey) -> ReplySink:
        return self._sink

    async def handle_line(self, line: str) -> bool:
        """Answer one line of input; ``False`` means the user asked to quit."""
        text = line.strip()
        if self._pending is not None:
            action, self._pending = self._pending, None
            await self._sink.notice(await action() if text.lower() == YES else commands.CANCELLED)
            return True
        if not text:
            return True
        if text.startswith("/"):
            try:
                return await self._command(text)
            except Refusal as refusal:
                await self._sink.notice(str(refusal))
                return True
        incoming = Incoming(
            key=self._key,
            author_id=self._user,
            author_name=self._user,
            text=text,
            is_direct=True,
        )
        await self._manager.handle(incoming, self._sink)
        return True

    async def _command(self, text: str) -> bool:
        command, _, argument = text.partition(" ")
        argument = argument.strip()
        manager, caller, notice = self._manager, self._caller, self._sink.notice
        match command.lower():
            case "/quit" | "/exit":
                return False
            case "/help":
                await notice(HELP)
            case "/character" if argument:
                await notice(await commands.make_main(manager, caller, argument))
            case "/character":
                await notice(await commands.describe_scene(manager, caller))
            case "/scene" if argument:
                await notice(await commands.toggle_in_scene(manager, caller, argument))
            case "/persona":
                await notice(await commands.persona_command(manager, caller, argument))
            case "/lorebooks":
                await notice(await commands.chat_lorebooks(manager, caller, argument.split()))
            case "/regen" | "/prev" | "/next" | "/continue":
                await self._swipe(_SWIPES[command.lower()])
            case "/memory":
                await notice(await commands.memory_command(manager, caller, argument))
            case "/usage":
                await notice(
                    await commands.describe_usage(manager, caller, chat_noun="conversation")
                )
            case "/nudges":
                words = argument.split()
                await notice(await commands.nudges_command(manager, caller, words, private=True))
            case "/reset":
                question = await commands.ask_reset(manager, caller)
                await self._ask(question, lambda: commands.reset(manager, caller))
            case "/forget":
                await self._ask(commands.FORGET_QUESTION, lambda: commands.forget(manager, caller))
            case _:
                await notice(f"Unknown command {command}. /help lists them.")
        return True

    async def _swipe(self, action: SwipeAction) -> None:
        """Change the last reply (the sink says which alternative is shown)."""
        await commands.swipe(self._manager, self._caller, action, self._sink)

    async def _ask(self, question: Question, action: Callable[[], Awaitable[str]]) -> None:
        """Ask ``question``; the next line's answer runs ``action`` or cancels it."""
        if not self._confirm:
            await self._sink.notice(await action())
            return
        await self._sink.notice(f"{question.text} Type {YES} to confirm; anything else cancels.")
        self._pending = action


async def run_console(
    manager: ConversationManager,
    *,
    character: str,
    user_name: str,
    stdin: TextIO,
    out: TextIO,
    scene: Sequence[str] = (),
) -> int:
    """Run a chat until ``/quit`` or end of input. Returns the exit code.

    Ctrl-C cancels the task running this (``asyncio.run`` does that), which stops at once,
    even at the prompt; ``troupe chat`` then exits with 130.
    """
    interactive = stdin.isatty()
    chat = ConsoleChat(
        manager,
        character=character,
        user_name=user_name,
        out=out,
        confirm=interactive,
        scene=scene,
    )
    await chat.start()
    lines = LineReader(stdin)
    try:
        while True:
            if interactive:
                out.write(f"{user_name}> ")
                out.flush()
            line = await lines.readline()
            if not line:
                if interactive:
                    out.write("\n")
                return 0
            if not await chat.handle_line(line):
                return 0
    except asyncio.CancelledError:
        # Ctrl-C (asyncio.run cancels this task): a reply in flight stops here and is not
        # stored, as on the other platforms; what the user said is. Leave the line clean.
        out.write("\n")
        out.flush()
        raise
