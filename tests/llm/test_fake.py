"""The fake M2-her server's wire behaviour, checked with a bare aiohttp client."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.llm.fake import (
    ECHO_CHARS,
    Drop,
    Error,
    FakeM2Her,
    HttpError,
    Reply,
    StreamVariant,
    from_magic_words,
    long_text,
    reply_text,
)
from bot.llm.fake.limiter import RateLimiter
from tests.conftest import TEST_API_KEY

PATH = "/v1/text/chatcompletion_v2"
AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}
MESSAGES = [
    {"role": "system", "name": "Aria", "content": "Aria keeps the lighthouse."},
    {"role": "user", "name": "Sam", "content": "Evening!"},
]
SUCCESS_KEYS = {
    "id", "choices", "created", "model", "object", "usage", "input_sensitive",
    "output_sensitive", "input_sensitive_type", "output_sensitive_type",
    "output_sensitive_int", "base_resp",
}  # fmt: skip


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession,
    fake: FakeM2Her,
    body: Any,
    headers: dict[str, str] | None = None,
) -> tuple[aiohttp.ClientResponse, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(
        fake.base_url + PATH,
        data=data,
        headers=AUTH if headers is None else headers,
    ) as response:
        return response, await response.read()


def events(raw: bytes) -> list[Any]:
    lines = raw.decode().split("\n\n")
    return [
        json.loads(line[6:]) if line != "data: [DONE]" else "[DONE]"
        for line in lines
        if line.startswith("data: ")
    ]


async def test_success_envelope_follows_the_reference(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession
) -> None:
    before = int(time.time())
    response, raw = await post(http, fake_m2her, {"model": "M2-her", "messages": MESSAGES})
    body = json.loads(raw)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert set(body) == SUCCESS_KEYS
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert response.headers["Trace-Id"] == body["id"]
    assert before <= body["created"] <= int(time.time())
    assert (body["model"], body["object"]) == ("M2-her", "chat.completion")
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["index"] == 0
    assert choice["message"] == {
        "content": reply_text(MESSAGES),
        "role": "assistant",
        "name": "Aria",
        "audio_content": "",
    }
    assert set(body["usage"]) == {
        "total_tokens", "total_characters", "prompt_tokens", "completion_tokens"
    }  # fmt: skip
    assert body["usage"]["total_characters"] == 0
    assert body["input_sensitive"] is body["output_sensitive"] is False
    assert body["input_sensitive_type"] == body["output_sensitive_type"] == 0
    assert body["output_sensitive_int"] == 0
    assert body["base_resp"] == {"status_code": 0, "status_msg": ""}


async def test_message_name_defaults_without_a_system_name(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession
) -> None:
    _, raw = await post(
        http, fake_m2her, {"model": "M2-her", "messages": [{"role": "user", "content": "Hi"}]}
    )
    message = json.loads(raw)["choices"][0]["message"]
    assert message["name"] == "MiniMax AI"
    assert message["content"].startswith("MiniMax AI heard User: “Hi”")


def test_reply_text_echo_is_collapsed_and_cut() -> None:
    long = "word  \n " * 40
    text = reply_text([{"role": "system", "name": "Aria"}, {"role": "user", "content": long}])
    echo = " ".join(long.split())[:ECHO_CHARS] + "…"
    assert text == f"Aria heard User: “{echo}” (a fake M2-her reply, 2 messages in context)"


async def test_standard_stream_is_deltas_then_summary(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession
) -> None:
    body = {"model": "M2-her", "messages": MESSAGES, "stream": True}
    response, raw = await post(http, fake_m2her, body)
    assert response.content_type == "text/event-stream"
    stream = events(raw)
    *deltas, last_delta, final = stream
    assert all(e["object"] == "chat.completion.chunk" for e in [*deltas, last_delta])
    assert all("finish_reason" not in e["choices"][0] for e in deltas)
    assert last_delta["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in last_delta
    assert "base_resp" not in last_delta
    text = "".join(e["choices"][0]["delta"]["content"] for e in [*deltas, last_delta])
    assert final["object"] == "chat.completion"
    assert final["choices"][0]["message"]["content"] == text == reply_text(MESSAGES)
    assert list(final["usage"]) == ["total_tokens"]
    assert final["base_resp"] == {"status_code": 0, "status_msg": ""}
    assert {e["id"] for e in stream} == {response.headers["Trace-Id"]}
    assert raw.endswith(b"\n\n")
    assert b"[DONE]" not in raw


async def test_stream_variants(fake_m2her: FakeM2Her, http: aiohttp.ClientSession) -> None:
    body = {"model": "M2-her", "messages": MESSAGES, "stream": True}
    fake_m2her.stream_variant = StreamVariant.RICH
    rich = events((await post(http, fake_m2her, body))[1])
    for _i, event in enumerate(rich[:-1]):
        assert {"input_sensitive", "output_sensitive_int", "usage"} <= set(event)
        assert event["usage"] in (None, {"total_tokens": 0, "total_characters": 0})
        assert event["choices"][0]["delta"]["name"] == "Aria"
        assert event["choices"][0]["delta"]["audio_content"] == ""
    assert set(rich[-1]["usage"]) == {
        "total_tokens", "total_characters", "prompt_tokens", "completion_tokens"
    }  # fmt: skip

    fake_m2her.stream_variant = StreamVariant.DONE
    done = events((await post(http, fake_m2her, body))[1])
    assert done[-1] == "[DONE]"
    assert done[-2]["object"] == "chat.completion"

    fake_m2her.stream_variant = StreamVariant.NO_SUMMARY
    bare = events((await post(http, fake_m2her, body))[1])
    assert all(e["object"] == "chat.completion.chunk" for e in bare)
    assert bare[-1]["choices"][0]["finish_reason"] == "stop"
    assert bare[-1]["usage"]["prompt_tokens"] > 0


async def test_missing_or_wrong_authorization(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession
) -> None:
    body = {"model": "M2-her", "messages": MESSAGES}
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": TEST_API_KEY}):
        response, raw = await post(http, fake_m2her, body, headers)
        assert response.status == 200
        assert json.loads(raw)["base_resp"]["status_code"] == 1004
        assert set(json.loads(raw)) == {"base_resp"}  # the minimal form
    _, raw = await post(http, fake_m2her, body, {"Authorization": "Bearer sk-invalid"})
    assert json.loads(raw)["base_resp"] == {"status_code": 2049, "status_msg": "invalid api key"}
    assert len(fake_m2her.requests) == 4


def _with(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "M2-her", "messages": MESSAGES}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "request body must be a JSON object"),
        ([1, 2], "request body must be a JSON object"),
        (_with(model=...), "binding: expr_path=model, cause=missing required parameter"),
        (_with(model="m2-her"), "unknown model 'm2-her'"),
        (_with(messages=...), "messages must be a non-empty array"),
        (_with(messages=[]), "messages must be a non-empty array"),
        (_with(messages="hi"), "messages must be a non-empty array"),
        (_with(messages=[{"role": "narrator"}]), "messages[0]: unknown role 'narrator'"),
        (
            _with(messages=[{"role": "user", "content": [1]}]),
            "messages[0]: content must be a string",
        ),
        (_with(messages=[{"role": "user", "name": 3}]), "messages[0]: name must be a string"),
        (_with(messages=["hi"]), "messages[0]: must be an object"),
        (_with(messages=[{"role": "system", "name": "A"}]), "chat content is empty"),
        (_with(temperature=0), "temperature must be in (0, 1]"),
        (_with(temperature=1.01), "temperature must be in (0, 1]"),
        (_with(temperature=True), "temperature must be in (0, 1]"),
        (_with(top_p=0), "top_p must be in (0, 1]"),
        (_with(top_p="0.5"), "top_p must be in (0, 1]"),
        (_with(max_completion_tokens=0), "max_completion_tokens must be in [1, 2048]"),
        (_with(max_completion_tokens=2049), "max_completion_tokens must be in [1, 2048]"),
        (_with(max_completion_tokens=1.5), "max_completion_tokens must be in [1, 2048]"),
        (_with(stream="yes"), "stream must be a boolean"),
        (
            _with(messages=[{"role": "user", "content": "word " * 52_000}]),
            "context window exceeds limit",
        ),
    ],
)
async def test_validation_answers_2013_with_a_detail(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession, body: Any, detail: str
) -> None:
    response, raw = await post(http, fake_m2her, body)
    assert response.status == 200
    base_resp = json.loads(raw)["base_resp"]
    assert base_resp == {"status_code": 2013, "status_msg": f"invalid params, {detail}"}


async def test_lenient_where_the_reference_is_unsure(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession
) -> None:
    body = _with(
        messages=[{"role": "system", "name": "Aria"}, {"role": "user", "content": "Hi"}],
        mask_sensitive_info=True,
        stream_options={"include_usage": True},
        temperature=1,
        max_completion_tokens=2048,
    )
    _, raw = await post(http, fake_m2her, body)
    assert json.loads(raw)["base_resp"]["status_code"] == 0


async def test_errors_on_a_stream_are_one_sse_event_or_plain_json(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession
) -> None:
    body = _with(stream=True)
    fake_m2her.enqueue(Error(1026, input_sensitive_type=3), Error(2056, as_json=True))
    response, raw = await post(http, fake_m2her, body)
    assert response.content_type == "text/event-stream"
    (event,) = events(raw)
    assert event["choices"] is None
    assert (event["input_sensitive"], event["input_sensitive_type"]) == (True, 3)
    assert event["base_resp"] == {"status_code": 1026, "status_msg": "input new_sensitive"}
    response, raw = await post(http, fake_m2her, body)
    assert response.content_type == "application/json"
    assert json.loads(raw)["base_resp"]["status_code"] == 2056


async def test_mid_stream_1027_and_late_output_flag(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession
) -> None:
    fake_m2her.enqueue(
        Error(1027, after_chunks=2), Reply("Fine words, then a bad one.", output_sensitive_type=7)
    )
    first, _second, error = events((await post(http, fake_m2her, _with(stream=True)))[1])
    assert first["choices"][0]["delta"]["content"]
    assert error["output_sensitive"] is True
    assert error["base_resp"]["status_code"] == 1027
    flagged = events((await post(http, fake_m2her, _with(stream=True)))[1])
    assert flagged[-1]["output_sensitive"] is True
    assert flagged[-1]["output_sensitive_type"] == 7
    assert flagged[0]["output_sensitive"] is False  # the flag comes late


async def test_502_page_and_dropped_connections(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession
) -> None:
    fake_m2her.enqueue(HttpError(), Drop(), Drop(after_chunks=1))
    response, raw = await post(http, fake_m2her, _with())
    assert response.status == 502
    assert b"Bad Gateway" in raw
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(http, fake_m2her, _with())
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(http, fake_m2her, _with(stream=True))


async def test_delays_before_the_first_byte(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession
) -> None:
    fake_m2her.enqueue(Reply(delay=0.2))
    started = time.monotonic()
    await post(http, fake_m2her, _with())
    assert time.monotonic() - started >= 0.2


async def test_other_paths_are_404(fake_m2her: FakeM2Her, http: aiohttp.ClientSession) -> None:
    # (/v1/chat/completions is served too: the OpenAI-compatible route.)
    async with http.post(fake_m2her.base_url + "/v1/responses", headers=AUTH) as response:
        assert response.status == 404


async def test_rate_limiter_answers_1002(http: aiohttp.ClientSession) -> None:
    async with FakeM2Her(rpm=2) as fake:
        codes = [
            json.loads((await post(http, fake, _with()))[1])["base_resp"]["status_code"]
            for _ in range(3)
        ]
    assert codes == [0, 0, 1002]
    async with FakeM2Her(tpm=10) as fake:
        _, raw = await post(http, fake, _with())
    assert json.loads(raw)["base_resp"] == {"status_code": 1002, "status_msg": "rate limit"}


def test_rate_limiter_window_slides() -> None:
    now = [0.0]
    limiter = RateLimiter(rpm=2, tpm=100, window=60.0, clock=lambda: now[0])
    assert limiter.admit(10)
    assert limiter.admit(10)
    assert not limiter.admit(10)  # rpm
    now[0] = 60.0
    assert limiter.admit(90)
    assert not limiter.admit(20)  # tpm: 10 + 90 + 20 > 100 within the window... the first went
    now[0] = 120.0
    assert limiter.admit(100)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi [[fault:1002]]", Error(1002)),
        ("[[fault:1008:json]]", Error(1008, as_json=True)),
        ("[[fault:1027:mid]]", Error(1027, after_chunks=2)),
        ("[[sensitive:input:5]]", Error(1026, input_sensitive_type=5)),
        ("[[sensitive:output:2]]", Error(1027, output_sensitive_type=2, after_chunks=2)),
        ("[[flag:input:5]]", Reply(input_sensitive_type=5)),
        ("[[flag:output:2]]", Reply(output_sensitive_type=2)),
        ("[[drop]]", Drop(after_chunks=2)),
        ("[[slow]]", Reply(delay=1.0, chunk_delay=0.25)),
        ("[[http:503]]", HttpError(503)),
        ("[[long:3000]]", Reply(text=long_text(3000))),
        ("[[long:300:58]]", Reply(text=long_text(300), chunk_delay=0.058)),
        ("[[sensitive:sideways:2]]", None),
        ("[[fault]]", None),
        ("no magic here", None),
    ],
)
def test_magic_words(text: str, expected: object) -> None:
    assert from_magic_words(text) == expected


async def test_magic_word_in_the_last_user_message(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession
) -> None:
    body = _with(messages=[{"role": "user", "content": "please [[sensitive:input:6]]"}])
    _, raw = await post(http, fake_m2her, body)
    answer = json.loads(raw)
    assert answer["base_resp"]["status_code"] == 1026
    assert answer["input_sensitive_type"] == 6


def test_long_text_is_prose_of_exactly_the_length_asked() -> None:
    for length in (1, 300, 3000):
        text = long_text(length)
        assert len(text) == length
        assert text.endswith(".")
    assert "\n\n" in long_text(3000)


async def test_the_summary_follows_the_last_delta_at_once_and_stream_times_are_recorded(
    fake_m2her: FakeM2Her, http: aiohttp.ClientSession
) -> None:
    said = "tell me [[long:24:500]]"  # two 12-character deltas, 0.5 s before each
    body = _with(messages=[{"role": "user", "content": said}], stream=True)
    arrived: list[tuple[float, Any]] = []
    started = time.monotonic()
    async with http.post(fake_m2her.base_url + PATH, json=body, headers=AUTH) as response:
        async for line in response.content:
            if line.startswith(b"data: "):
                arrived.append((time.monotonic(), json.loads(line[6:])))
    (first_at, _), (last_at, last), (summary_at, summary) = arrived
    assert "finish_reason" in last["choices"][0]
    assert summary["choices"][0]["message"]["content"] == long_text(24)
    assert summary_at - last_at < 0.25  # the deltas were 0.5 s apart
    [times] = fake_m2her.streams
    assert times.said == said
    assert started < times.first_delta_at <= first_at
    assert times.last_delta_at - times.first_delta_at >= 0.5
    assert times.last_delta_at <= last_at


async def test_run_fake_server_prints_its_url_and_stops_cleanly() -> None:
    code = (
        "import sys; from bot.llm.fake import run_fake_server as run;"
        "sys.exit(run('127.0.0.1', 0, 'sk-x'))"
    )
    for stop in (signal.SIGTERM, signal.SIGINT):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
            url = re.search(r"http://127\.0\.0\.1:\d+", line)
            assert url is not None
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    url.group() + PATH,
                    json=_with(),
                    headers={"Authorization": "Bearer sk-x"},
                ) as response,
            ):
                assert (await response.json())["base_resp"]["status_code"] == 0
            process.send_signal(stop)
            assert await asyncio.wait_for(process.wait(), 20) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
