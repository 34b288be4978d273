"""Structured logs: the formats, the levels and the per-turn id."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import re
from typing import Any

import pytest

from bot.llm.client import M2HerClient
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import HttpError, Reply
from bot.llm.types import ChatMessage, ChatRequest, Role
from bot.observability.logs import configure_logging, current_turn_id, new_turn_id
from bot.settings import ConfigError, Settings
from tests.conftest import FAST_RETRY, FAST_TIMEOUTS, TEST_API_KEY
from tests.observability.conftest import Configure

log = logging.getLogger("bot.test")


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Each line of ``stream`` parsed as one JSON object."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_is_one_object_per_line(configure: Configure) -> None:
    stream = configure({"TROUPE_LOG_FORMAT": "json", "TROUPE_LOG_LEVEL": "info"})

    log.info("first %s", "line")
    log.warning("two\nlines\u2028and a café")

    first, second = json_lines(stream)
    assert first["level"] == "INFO"
    assert first["logger"] == "bot.test"
    assert first["message"] == "first line"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    assert "turn_id" not in first
    assert "exc_info" not in first
    assert second["message"] == "two\nlines\u2028and a café"


def test_json_carries_the_traceback(configure: Configure) -> None:
    stream = configure({"TROUPE_LOG_FORMAT": "json"})

    try:
        raise KeyError("lost")
    except KeyError:
        log.exception("could not look it up")

    (entry,) = json_lines(stream)
    assert entry["level"] == "ERROR"
    assert entry["message"] == "could not look it up"
    assert entry["exc_info"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'lost'" in entry["exc_info"]


def test_text_is_the_default_and_readable(configure: Configure) -> None:
    stream = configure({})

    def turn() -> str:
        turn_id = new_turn_id()
        log.error("inside a turn")
        return turn_id

    log.warning("the %s is %d", "answer", 42)
    turn_id = contextvars.copy_context().run(turn)  # no turn id leaks into other tests

    outside, inside = stream.getvalue().splitlines()
    assert outside.endswith(" WARNING bot.test: the answer is 42")
    assert inside.endswith(f" ERROR bot.test [turn {turn_id}]: inside a turn")


def test_level_comes_from_the_environment_else_the_default(configure: Configure) -> None:
    stream = configure({"TROUPE_LOG_LEVEL": "ERROR"})
    log.warning("dropped")
    log.error("kept")
    assert stream.getvalue().count("\n") == 1
    assert "kept" in stream.getvalue()

    quiet = io.StringIO()
    configure_logging(Settings.from_environ({}), stream=quiet, default_level="CRITICAL")
    log.error("dropped too")
    assert quiet.getvalue() == ""


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"TROUPE_LOG_LEVEL": "LOUD"}, "TROUPE_LOG_LEVEL"),
        ({"TROUPE_LOG_FORMAT": "xml"}, "TROUPE_LOG_FORMAT"),
    ],
)
def test_bad_settings_name_the_variable(
    configure: Configure, environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        configure(environ)


def test_configuring_again_replaces_only_its_own_handler(configure: Configure) -> None:
    foreign = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(foreign)
    try:
        first = configure({})
        second = configure({"TROUPE_LOG_FORMAT": "json"})
        log.warning("once")
    finally:
        logging.getLogger().removeHandler(foreign)

    assert first.getvalue() == ""
    assert [entry["message"] for entry in json_lines(second)] == ["once"]
    assert isinstance(foreign.stream, io.StringIO)
    assert foreign.stream.getvalue() == "once\n"


def test_turn_ids_are_fresh_short_hex() -> None:
    def turns() -> tuple[set[str], str | None]:
        return {new_turn_id() for _ in range(100)}, current_turn_id()

    ids, current = contextvars.copy_context().run(turns)

    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{12}", turn_id) for turn_id in ids)
    assert current in ids


async def test_the_turn_id_follows_each_turn_across_awaits_and_tasks(
    configure: Configure,
) -> None:
    stream = configure({"TROUPE_LOG_FORMAT": "json", "TROUPE_LOG_LEVEL": "INFO"})
    before = current_turn_id()
    both_started = asyncio.Barrier(2)

    async def model_call(tag: str) -> None:
        await asyncio.sleep(0)
        log.info("%s: model call", tag)

    async def post_reply(tag: str) -> None:
        log.info("%s: reply posted", tag)

    async def turn(tag: str) -> str:
        turn_id = new_turn_id()
        log.info("%s: message received", tag)
        await both_started.wait()  # the two turns interleave from here on
        await model_call(tag)
        await asyncio.create_task(post_reply(tag))
        return turn_id

    ids = await asyncio.wait_for(asyncio.gather(turn("a"), turn("b")), timeout=5)

    entries = json_lines(stream)
    assert len(entries) == 6
    for tag, turn_id in zip("ab", ids, strict=True):
        mine = [e for e in entries if e["message"].startswith(f"{tag}:")]
        assert [e["turn_id"] for e in mine] == [turn_id] * 3
    assert ids[0] != ids[1]
    assert current_turn_id() == before  # the turns' tasks kept their ids to themselves


async def test_the_turn_id_reaches_the_model_client_logs(
    configure: Configure, fake_m2her: FakeM2Her
) -> None:
    stream = configure({"TROUPE_LOG_FORMAT": "json", "MINIMAX_API_KEY": TEST_API_KEY})
    fake_m2her.enqueue(HttpError(status=502), Reply(text="Kettle's on."))
    request = ChatRequest((ChatMessage(Role.USER, "Evening!", "Sam"),))

    async def turn() -> tuple[str, str]:
        turn_id = new_turn_id()
        async with M2HerClient(
            TEST_API_KEY, base_url=fake_m2her.base_url, retry=FAST_RETRY, timeouts=FAST_TIMEOUTS
        ) as client:
            result = await client.complete(request)
        return turn_id, result.text

    turn_id, text = await asyncio.wait_for(asyncio.create_task(turn()), timeout=10)

    assert text == "Kettle's on."
    (retry,) = [e for e in json_lines(stream) if e["logger"] == "bot.llm"]
    assert "failed on attempt 1" in retry["message"]
    assert retry["turn_id"] == turn_id
