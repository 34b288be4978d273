"""Benchmark delivery: how soon replies are on screen through ``troupe run`` (Discord, Telegram).

Run: ``.venv/bin/python bench/delivery.py`` (about 2–3 minutes). ``troupe run`` is a real
subprocess (``python -m bot run``) pointed at the Discord stand-in, then at the Telegram stand-in,
both on 127.0.0.1 in this process with their platform-like rate limits on (Discord: 5 message
writes per 5 s per channel and per webhook; Telegram: its flood control per chat). The fake
M2-her runs in a child process and answers every turn in one of two modes:

* ``stream``: 300 characters in 25 deltas, 58 ms before each (the last one 1.45 s after the
  request), by the magic word ``[[long:300:58]]``;
* ``instant``: 3,000 characters at once (``[[long:3000]]``).

Each platform (Discord channels, Telegram private chats, Telegram groups) has ``--channels``
channels talking at once, each sending ``--rounds`` messages per mode one after the other (the
next one ``--pause`` seconds, 5 by default, after the previous reply is whole on screen).
Figures per platform, p50 over every reply:

* ``first_visible_p50_s``: from the model's first delta (stamped by the fake when it sent it)
  to the first text on screen (a Telegram draft counts; stamped by the stand-in);
* ``finish_lag_p50_s``: from the model's last delta to the whole reply on screen (for
  Telegram's private chats: in messages, since a draft is not a message);
* ``instant_3000_full_p50_s`` (and ``…first_visible…``): from the user's message to the whole
  (first) text of an instant 3,000-character reply on screen;
* ``max_writes_per_channel_5s``: the most sends, edits and deletes in one channel within any
  5 s (``…60s`` too, for Telegram groups' 20 a minute); ``writes_per_reply``: all of them
  (buttons included) over the replies; ``rate_limited``: the 429s;
* ``cpu_ms_per_reply``: the bot process's CPU time (``/proc/PID/stat``) over the replies.

Every time is ``time.monotonic()``, one clock for all processes on Linux. The targets are
printed with the figures; the last line is one JSON object with everything.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import functools
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stand-ins live in tests/

from fake_process import fake_in_child, serve_until_stdin_closes  # noqa: E402

from bot.llm.fake import FakeM2Her, StreamTimes, long_text  # noqa: E402
from tests.standins.discord import Channel as DiscordChannel  # noqa: E402
from tests.standins.discord import DiscordStandIn  # noqa: E402
from tests.standins.discord import Message as DiscordMessage  # noqa: E402
from tests.standins.telegram import Chat, RateLimit, TelegramStandIn  # noqa: E402
from tests.standins.telegram import Message as TelegramMessage  # noqa: E402

KEY = "sk-bench"
#: Seconds between a reply being whole on screen and the channel's next message: a person
#: reading it and typing. Much faster, a channel is bound by the platform's own limits
#: (Discord's 5 writes per 5 s cannot carry a post, an edit and a final text per second);
#: ``--pause`` measures that case.
PAUSE = 5.0
#: Seconds one reply may take before the bench gives up on it.
REPLY_TIMEOUT = 60.0
#: Seconds ``troupe run`` may take to start, and to stop after SIGTERM before it is killed.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Mode:
    """How the fake answers: ``chars`` characters, the magic word that asks for them."""

    name: str
    chars: int
    magic: str


STREAM = Mode("stream", 300, "[[long:300:58]]")
INSTANT = Mode("instant", 3000, "[[long:3000]]")
MODES = (STREAM, INSTANT)

#: Upper bounds per platform (issue 12); a figure meets its target when it is at most this.
TARGETS: dict[str, dict[str, float]] = {
    "discord": {
        "first_visible_p50_s": 0.05,
        "finish_lag_p50_s": 0.1,
        "instant_3000_full_p50_s": 0.3,
        "max_writes_per_channel_5s": 5,
        "rate_limited": 0,
        "cpu_ms_per_reply": 25,
    },
    "telegram_private": {
        "first_visible_p50_s": 0.05,
        "max_writes_per_channel_5s": 5,
        "rate_limited": 0,
        "cpu_ms_per_reply": 25,
    },
    "telegram_group": {
        "first_visible_p50_s": 0.05,
        "max_writes_per_channel_60s": 20,
        "rate_limited": 0,
        "cpu_ms_per_reply": 25,
    },
}

#: (time, message id, text shown from then on; None once deleted)
Event = tuple[float, int, str | None]


@dataclass
class Sample:
    """One reply: when it was asked for, and what the screen showed when."""

    tag: str
    mode: Mode
    asked_at: float
    events: list[Event]
    #: First preview (a Telegram draft) that is not a message, if any.
    preview_at: float | None = None


@dataclass
class PlatformRun:
    """Everything measured on one platform."""

    samples: list[Sample] = field(default_factory=list)
    #: Per channel: the times of the bot's sends, edits and deletes.
    writes: list[list[float]] = field(default_factory=list)
    rate_limited: int = 0
    cpu_seconds: float = 0.0


def shown(text: str) -> str:
    """Text as compared on screen: split messages lose the whitespace at their cut."""
    return " ".join(text.split())


def full_since(events: Iterable[Event], expected: str) -> float | None:
    """When the screen started showing exactly ``expected`` for good, or None if it never did."""
    state: dict[int, str | None] = {}
    since: float | None = None
    for at, key, text in sorted(events, key=lambda e: (e[0], e[1])):
        state[key] = text
        now = shown(" ".join(t for _, t in sorted(state.items()) if t))
        since = (since or at) if now == expected else None
    return since


def first_shown(sample: Sample) -> float | None:
    """When the first text of the reply became visible (a preview or a message)."""
    times = [at for at, _, text in sample.events if text]
    if sample.preview_at is not None:
        times.append(sample.preview_at)
    return min(times, default=None)


def max_in_window(times: Sequence[float], seconds: float) -> int:
    """The most of ``times`` within any ``seconds``-long window."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + seconds) - i for i, t in enumerate(ordered)), default=0
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- troupe run ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def troupe_run(environ: dict[str, str], folder: Path) -> AsyncIterator[int]:
    """Run ``python -m bot run`` with ``environ`` until it says it runs; yield its pid.

    It is stopped with SIGTERM afterwards, and killed if it does not exit in time."""
    own = ("DISCORD_", "TELEGRAM_", "TROUPE_", "MINIMAX_", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}",
            "TROUPE_CHARACTERS_DIR": str(ROOT / "characters"),
            # Bram has no completion cap of his own, so 3,000 characters are not cut.
            "TROUPE_DEFAULT_CHARACTER": "bram",
            "TROUPE_SHUTDOWN_SECONDS": "2",
            **environ,
        }
    )
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "run"),
        cwd=folder,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []

    async def read_until_running() -> None:
        assert process.stdout is not None
        while "Running:" not in (line := (await process.stdout.readline()).decode()):
            if not line:
                raise RuntimeError("troupe run ended:\n" + "".join(output))
            output.append(line)

    async def drain() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            output.append(line.decode())

    draining: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(read_until_running(), START_TIMEOUT)
        draining = asyncio.create_task(drain())
        yield process.pid
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
        if draining is not None:
            await asyncio.wait_for(draining, STOP_TIMEOUT)
        warnings = [line for line in output if "Traceback" in line or "ERROR" in line]
        if warnings:
            print(f"troupe run said {len(warnings)} error line(s), e.g. {warnings[0]!r}")


async def measure_modes(
    pid: int, run: PlatformRun, channels: int, ask: Callable[[int, Mode], Any]
) -> None:
    """Each mode in turn: ``ask(channel, mode)`` in every channel at once; CPU time counted."""
    for mode in MODES:
        before = cpu_seconds(pid)
        await asyncio.gather(*(ask(channel, mode) for channel in range(channels)))
        run.cpu_seconds += cpu_seconds(pid) - before


# -- Discord ---------------------------------------------------------------------------------

DISCORD_WRITES = {
    "channel": (
        "POST /channels/{channel_id}/messages",
        "PATCH /channels/{channel_id}/messages/{message_id}",
        "DELETE /channels/{channel_id}/messages/{message_id}",
    ),
    "webhook": (
        "POST /webhooks/{webhook_id}/{webhook_token}",
        "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
        "DELETE /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
    ),
}


def discord_events(standin: DiscordStandIn, messages: list[DiscordMessage]) -> list[Event]:
    """Every state of ``messages``: as posted (from the call that posted it), edits, deletion."""
    posted = {
        int(c.response["id"]): str((c.json or {}).get("content") or "")
        for c in standin.calls
        if c.method == "POST" and isinstance(c.response, dict) and "id" in c.response
    }
    deleted = discord_deletions(standin)
    events: list[Event] = []
    for message in messages:
        events.append((message.created_at, message.id, posted.get(message.id, message.content)))
        events.extend((edit.at, message.id, edit.content) for edit in message.edits)
        if message.id in deleted:
            events.append((deleted[message.id], message.id, None))
    return events


def discord_deletions(standin: DiscordStandIn) -> dict[int, float]:
    """When each deleted message was deleted, by id."""
    return {
        int(c.params["message_id"]): c.at
        for c in standin.calls
        if c.method == "DELETE" and "message_id" in c.params and c.status == 204
    }


def discord_environ(standin: DiscordStandIn, fake_url: str) -> dict[str, str]:
    """What ``troupe run`` needs to talk to the Discord stand-in and the fake M2-her."""
    return {
        "DISCORD_TOKEN": standin.token,
        "DISCORD_API_BASE_URL": standin.api_base_url,
        "DISCORD_GATEWAY_URL": standin.gateway_url,
        "DISCORD_GUILD_READY_TIMEOUT": "0.05",
        "MINIMAX_API_KEY": KEY,
        "MINIMAX_BASE_URL": fake_url,
    }


async def run_discord(
    fake_url: str, folder: Path, channels: int, rounds: int, pause: float
) -> PlatformRun:
    """Measure ``troupe run`` on the Discord stand-in."""
    run = PlatformRun()
    # Each reply and its messages; their states are read at the end, late edits included.
    replies: list[tuple[Sample, list[DiscordMessage]]] = []
    async with DiscordStandIn() as standin:
        guild = standin.create_guild("Bench")
        rooms = [standin.create_text_channel(guild, f"room-{n}") for n in range(channels)]
        alice = standin.create_member(guild, "alice", global_name="Alice")
        for name, routes in DISCORD_WRITES.items():
            standin.rate_limits.limit(*routes, limit=5, per=5.0, bucket=name)
        environ = discord_environ(standin, fake_url)

        def bot_side(room: DiscordChannel, after: int = 0) -> list[DiscordMessage]:
            return [m for m in room.messages if m.id > after and m.author is not alice]

        def is_whole(room: DiscordChannel, after: int, expected: str) -> bool:
            live = (m.content for m in bot_side(room, after) if not m.deleted)
            return shown(" ".join(live)) == expected

        async def ask(channel: int, mode: Mode) -> None:
            room = rooms[channel]
            expected = shown(long_text(mode.chars))
            for round_ in range(rounds):
                tag = f"bench-discord-{mode.name}-{channel}-{round_}"
                asked = await standin.user_says(
                    room, alice, f"{tag} {mode.magic}", mentions=[standin.bot]
                )
                await standin.wait_for(
                    functools.partial(is_whole, room, asked.id, expected),
                    timeout=REPLY_TIMEOUT,
                    what=f"the reply to {tag}",
                )
                sample = Sample(tag, mode, asked.created_at, [])
                replies.append((sample, bot_side(room, asked.id)))
                await asyncio.sleep(pause)

        async with troupe_run(environ, folder) as pid:
            await standin.wait_until_connected(timeout=START_TIMEOUT)
            await asyncio.sleep(0.5)  # discord.py's guild-ready wait, then the adapter's setup
            await measure_modes(pid, run, channels, ask)
        for sample, messages in replies:
            sample.events = discord_events(standin, messages)
            run.samples.append(sample)
        deleted = discord_deletions(standin)
        for room in rooms:
            mine = bot_side(room)
            times = [m.created_at for m in mine] + [e.at for m in mine for e in m.edits]
            run.writes.append(times + [deleted[m.id] for m in mine if m.id in deleted])
        run.rate_limited = sum(1 for c in standin.calls if c.status == 429)
    return run


# -- Telegram --------------------------------------------------------------------------------

TELEGRAM_WRITES = ("sendMessage", "editMessageText", "editMessageReplyMarkup", "deleteMessage")


def telegram_events(tg: TelegramStandIn, messages: list[TelegramMessage]) -> list[Event]:
    """Every state of ``messages`` (sent, edited) and their deletion."""
    deleted = {
        (c.params.get("chat_id"), c.params.get("message_id")): c.at + tg.started_at
        for c in tg.calls
        if c.method == "deleteMessage" and c.ok
    }
    events: list[Event] = []
    for message in messages:
        key = message.message_id
        events.extend((state.at + tg.started_at, key, state.text) for state in message.history)
        if (at := deleted.get((message.chat.id, key))) is not None:
            events.append((at, key, None))
    return events


async def run_telegram(
    fake_url: str, folder: Path, channels: int, rounds: int, pause: float
) -> dict[str, PlatformRun]:
    """Measure ``troupe run`` on the Telegram stand-in: private chats, then groups."""
    runs: dict[str, PlatformRun] = {}
    replies: list[tuple[Sample, list[TelegramMessage]]] = []
    async with TelegramStandIn(rate_limit=RateLimit()) as tg:
        users = [tg.add_user(f"User{n}", f"user{n}") for n in range(channels)]
        kinds = {
            "telegram_private": [tg.private_chat(user) for user in users],
            "telegram_group": [tg.group(f"Bench {n}", [user]) for n, user in enumerate(users)],
        }
        environ = {
            "TELEGRAM_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.base_url,
            "MINIMAX_API_KEY": KEY,
            "MINIMAX_BASE_URL": fake_url,
        }

        def bot_side(chat: Chat, after: int = 0) -> list[TelegramMessage]:
            return [m for m in chat.messages if m.message_id > after and m.sender.is_bot]

        def is_whole(chat: Chat, after: int, expected: str) -> bool:
            live = (m.text for m in bot_side(chat, after) if not m.deleted)
            return shown(" ".join(live)) == expected

        def drafts_since(chat: Chat, since: float) -> list[float]:
            drafts = (c for c in tg.calls if c.method == "sendMessageDraft" and c.ok)
            times = (c.at + tg.started_at for c in drafts if c.params.get("chat_id") == chat.id)
            return [at for at in times if at >= since]

        async with troupe_run(environ, folder) as pid:
            # Polling: the first long poll has arrived (it is answered only when updates come).
            await tg.wait_until(
                lambda: any(c.method == "getUpdates" for c in tg.calls), timeout=START_TIMEOUT
            )
            for kind, chats in kinds.items():

                async def ask(channel: int, mode: Mode, kind: str = kind) -> None:
                    chat, user = kinds[kind][channel], users[channel]
                    expected = shown(long_text(mode.chars))
                    address = "@troupe_bot " if chat.is_group else ""
                    for round_ in range(rounds):
                        tag = f"bench-{kind}-{mode.name}-{channel}-{round_}"
                        asked_at = time.monotonic()
                        asked = tg.user_says(chat, user, f"{address}{tag} {mode.magic}")
                        await tg.wait_until(
                            functools.partial(is_whole, chat, asked.message_id, expected),
                            timeout=REPLY_TIMEOUT,
                            what=f"the reply to {tag}",
                        )
                        preview = min(drafts_since(chat, asked_at), default=None)
                        sample = Sample(tag, mode, asked_at, [], preview_at=preview)
                        replies.append((sample, bot_side(chat, asked.message_id)))
                        await asyncio.sleep(pause)

                runs[kind] = PlatformRun()
                await measure_modes(pid, runs[kind], len(chats), ask)
        for kind, chats in kinds.items():
            run = runs[kind]
            prefix = f"bench-{kind}-"
            for sample, messages in replies:
                if sample.tag.startswith(prefix):
                    sample.events = telegram_events(tg, messages)
                    run.samples.append(sample)
            ids = {chat.id for chat in chats}
            writes = [c for c in tg.calls if c.method in TELEGRAM_WRITES and c.ok]
            for chat in chats:
                mine = (c.at + tg.started_at for c in writes if c.params.get("chat_id") == chat.id)
                run.writes.append(list(mine))
            run.rate_limited = sum(
                1 for c in tg.calls if c.status == 429 and c.params.get("chat_id") in ids
            )
    return runs


# -- figures ---------------------------------------------------------------------------------

TAG = re.compile(r"bench-\w+-\w+-\d+-\d+")


def p50(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def figures(kind: str, run: PlatformRun, streams: dict[str, StreamTimes]) -> dict[str, Any]:
    """The figures of one platform, with its targets and whether they are met."""
    first_visible: list[float] = []
    finish_lag: list[float] = []
    instant_full: list[float] = []
    instant_first: list[float] = []
    unmeasured = 0
    for sample in run.samples:
        times = streams.get(sample.tag)
        full = full_since(sample.events, shown(long_text(sample.mode.chars)))
        first = first_shown(sample)
        if times is None or full is None or first is None:
            unmeasured += 1
        elif sample.mode is STREAM:
            first_visible.append(first - times.first_delta_at)
            finish_lag.append(full - times.last_delta_at)
        else:
            instant_full.append(full - sample.asked_at)
            instant_first.append(first - sample.asked_at)
    result: dict[str, Any] = {
        "replies": len(run.samples),
        "first_visible_p50_s": p50(first_visible),
        "finish_lag_p50_s": p50(finish_lag),
        "instant_3000_full_p50_s": p50(instant_full),
        "instant_3000_first_visible_p50_s": p50(instant_first),
        "max_writes_per_channel_5s": max(max_in_window(w, 5.0) for w in run.writes),
        "max_writes_per_channel_60s": max(max_in_window(w, 60.0) for w in run.writes),
        "writes_per_reply": round(sum(map(len, run.writes)) / max(1, len(run.samples)), 2),
        "rate_limited": run.rate_limited,
        "cpu_ms_per_reply": round(run.cpu_seconds * 1000 / max(1, len(run.samples)), 1),
        "unmeasured": unmeasured,
    }
    targets = TARGETS[kind]
    result["targets"] = targets
    result["targets_met"] = all(
        result[name] is not None and result[name] <= bound for name, bound in targets.items()
    )
    return result


async def serve(timings: Path) -> None:
    """Child process: the fake M2-her; on exit, its stream times go to ``timings``."""
    async with FakeM2Her(api_key=KEY, rpm=10**9, tpm=10**12) as fake:
        await serve_until_stdin_closes(fake)
    # The server is closed: nothing waits on this write.
    timings.write_text(json.dumps([asdict(times) for times in fake.streams]))  # noqa: ASYNC240


async def main(channels: int, rounds: int, pause: float) -> dict[str, Any]:
    """Run every platform; return the figures."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        timings = folder / "streams.json"
        for platform in ("discord", "telegram"):
            (folder / platform).mkdir()
        async with fake_in_child(__file__, str(timings)) as fake_url:
            runs = {
                "discord": await run_discord(fake_url, folder / "discord", channels, rounds, pause)
            }
            runs.update(await run_telegram(fake_url, folder / "telegram", channels, rounds, pause))
        streams: dict[str, StreamTimes] = {}
        for raw in json.loads(timings.read_text()):
            times = StreamTimes(**raw)
            if tag := TAG.search(times.said):
                streams[tag.group()] = times
    setup = {
        "channels": channels,
        "rounds": rounds,
        "pause_s": pause,
        "modes": [asdict(m) for m in MODES],
    }
    return {kind: figures(kind, run, streams) for kind, run in runs.items()} | {"setup": setup}


def command_line(
    doc: str, *, channels: int, channels_help: str, rounds: int, rounds_help: str
) -> argparse.Namespace:
    """A delivery bench's arguments (``--channels``, ``--rounds``, ``--pause``); started as the
    fake's child (``--serve TIMINGS``), it serves the fake and exits instead."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--serve", metavar="TIMINGS", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--channels", type=int, default=channels, help=channels_help)
    parser.add_argument("--rounds", type=int, default=rounds, help=rounds_help)
    parser.add_argument(
        "--pause", type=float, default=PAUSE, help="seconds from a whole reply to the next message"
    )
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve))
        sys.exit(0)
    return args


if __name__ == "__main__":
    args = command_line(
        __doc__,
        channels=10,
        channels_help="channels per platform",
        rounds=5,
        rounds_help="replies per channel and mode",
    )
    started = time.monotonic()
    result = asyncio.run(main(args.channels, args.rounds, args.pause))
    for kind in TARGETS:
        row = result[kind]
        shown_figures = {k: v for k, v in row.items() if k not in ("targets",)}
        print(f"{kind}: {shown_figures}")
        print(f"  targets: {row['targets']}")
    result["setup"]["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result))
