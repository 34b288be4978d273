"""Built requests sent to the fake M2-her over a real loopback socket.

The fake validates requests like the real API (roles, ranges, the 65,536-token window)
and reports ``prompt_tokens``, so this checks that what the builder produces is
accepted as sent, that trimming keeps a huge conversation inside the window, and that
the estimator calibrates from the usage a response reports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.characters import Budget, HistoryEntry, TokenEstimator, build_prompt, load_characters
from bot.llm.fake import FakeM2Her
from bot.llm.types import ChatRequest

CHARACTERS = Path(__file__).parents[2] / "characters"
PATH = "/v1/text/chatcompletion_v2"


@pytest.fixture
async def fake() -> AsyncIterator[FakeM2Her]:
    async with FakeM2Her() as server:
        yield server


async def post(fake: FakeM2Her, request: ChatRequest) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            fake.base_url + PATH,
            json=request.to_wire(stream=False),
            headers={"Authorization": "Bearer sk-test"},
        ) as response,
    ):
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


@pytest.mark.parametrize("character_id", ["aria", "bram", "mara"])
async def test_each_example_request_is_accepted_as_sent(fake: FakeM2Her, character_id: str) -> None:
    character = load_characters(CHARACTERS).get(character_id)
    history = [
        HistoryEntry("user", "Finn", "Hello there!"),
        HistoryEntry("assistant", character.name, "Well met."),
        HistoryEntry("user", "Lyra", "What news?"),
    ]
    prompt = build_prompt(character, history, user_name="Lyra")
    body = await post(fake, prompt.request)

    assert body["base_resp"] == {"status_code": 0, "status_msg": ""}
    assert fake.requests[-1].body == prompt.request.to_wire(stream=False)
    reply = body["choices"][0]["message"]["content"]
    assert reply.startswith(f"{character.name} heard Lyra: “What news?”")
    # With no calibration yet, the estimate is exactly what the fake reports.
    assert body["usage"]["prompt_tokens"] == prompt.estimated_tokens


async def test_a_trimmed_huge_conversation_fits_the_real_window(fake: FakeM2Her) -> None:
    character = load_characters(CHARACTERS).get("bram")
    history = [
        HistoryEntry("user", f"Patron {i % 7}", f"Round {i}! " + "more ale " * 300)
        for i in range(200)
    ]
    # A budget far beyond the real window keeps everything: M2-her would refuse that.
    roomy = Budget(context_window=10_000_000)
    untrimmed = build_prompt(character, history, user_name="Patron 0", budget=roomy)
    assert untrimmed.history_dropped == 0
    refused = await post(fake, untrimmed.request)
    assert refused["base_resp"]["status_code"] == 2013
    assert "context window exceeds limit" in refused["base_resp"]["status_msg"]

    prompt = build_prompt(character, history, user_name="Patron 0")
    body = await post(fake, prompt.request)
    assert body["base_resp"]["status_code"] == 0
    assert prompt.history_dropped > 0
    assert body["usage"]["prompt_tokens"] + 2048 <= 65_536
    assert "Round 199!" in body["choices"][0]["message"]["content"]


async def test_the_estimator_calibrates_from_reported_usage(fake: FakeM2Her) -> None:
    character = load_characters(CHARACTERS).get("aria")
    estimator = TokenEstimator(factor=2.0)  # badly off: thinks text costs twice as much
    history = [HistoryEntry("user", "Sam", "Tell me about the moths.")]
    errors = []
    for _ in range(12):
        prompt = build_prompt(character, history, user_name="Sam", estimator=estimator)
        body = await post(fake, prompt.request)
        reported = body["usage"]["prompt_tokens"]
        errors.append(abs(prompt.estimated_tokens - reported))
        estimator.observe(prompt.request.messages, reported)
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < errors[0] / 5
    assert estimator.factor == pytest.approx(1.0, abs=0.1)
