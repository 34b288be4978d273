"""A failed M2-her call as a turn sees it: the metric's labels (the HTTP status, the API
code, or ``none``), the Trace-Id in the stored usage record, and a whole turn over the
OpenAI-compatible route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.conversation.turn import TurnStatus
from bot.llm.client import ApiStyle, M2HerClient, Timeouts
from bot.llm.errors import (
    AuthenticationError,
    M2HerError,
    RateLimited,
    RequestTimeout,
    ServerError,
    StreamInterrupted,
)
from bot.llm.fake import OPENAI_PATH, Drop, Error, FakeM2Her, HttpError, Reply
from bot.storage.models import ModelCallRow
from tests.conftest import FAST_RETRY, TEST_API_KEY
from tests.conversation.conftest import Engine, RecordingSink, said
from tests.conversation.test_delivery import _rows as stored_rows
from tests.observability.scrape import samples

#: Short enough for a timeout test, long enough for every loopback answer.
TIMEOUTS = Timeouts(connect=2.0, first_byte=0.5, chunk_gap=0.5)


@pytest.fixture
def api_style() -> ApiStyle:
    return "minimax"


@pytest.fixture
async def m2her_client(fake_m2her: FakeM2Her, api_style: ApiStyle) -> AsyncIterator[M2HerClient]:
    """The engines' client (overrides the shared one): a short first-byte timeout, and the
    route a test asks for with ``api_style``."""
    async with M2HerClient(
        TEST_API_KEY,
        base_url=fake_m2her.base_url,
        api_style=api_style,
        retry=FAST_RETRY,
        timeouts=TIMEOUTS,
    ) as client:
        yield client


async def model_calls(database_url: str) -> list[tuple[Any, ...]]:
    """The stored usage records (ok, error_code, trace_id, total_tokens), oldest first."""
    columns = ("ok", "error_code", "trace_id", "total_tokens")
    return await stored_rows(database_url, ModelCallRow.__table__, *columns)


def api_error_samples(engine: Engine) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["code"], dict(labels)["kind"]): count
        for (name, labels), count in samples(engine.manager.metrics.render()).items()
        if name == "troupe_api_errors_total"
    }


@pytest.mark.parametrize(
    ("script", "label", "error_type"),
    [
        pytest.param([HttpError(401)], "401", AuthenticationError, id="401"),
        pytest.param([HttpError(429)] * 4, "429", RateLimited, id="429"),
        pytest.param([HttpError.gateway(500)] * 4, "500", ServerError, id="500-json"),
        pytest.param([HttpError(502)] * 4, "502", ServerError, id="502-html"),
        pytest.param([HttpError(503)] * 4, "503", ServerError, id="503"),
        pytest.param([Reply(delay=1.0)] * 2, "none", RequestTimeout, id="timeout"),
        pytest.param([Drop()] * 4, "none", StreamInterrupted, id="dropped"),
        pytest.param([Error(1002)] * 4, "1002", RateLimited, id="base-resp-1002"),
    ],
)
async def test_api_errors_are_labelled_by_http_status_code_or_none(
    engine: Engine, script: list[Any], label: str, error_type: type[M2HerError]
) -> None:
    engine.fake.enqueue(*script)
    outcome = await engine.manager.handle(said("hello"), RecordingSink())
    assert outcome.status is TurnStatus.FAILED
    assert type(outcome.error) is error_type
    assert api_error_samples(engine) == {(label, error_type.__name__): 1}


@pytest.mark.parametrize(
    "script",
    [
        pytest.param([HttpError.gateway(500)] * 4, id="500-json"),
        pytest.param([HttpError(502)] * 4, id="502-html"),
        pytest.param([HttpError(401)], id="401"),
    ],
)
async def test_the_trace_id_of_a_failed_call_is_stored_with_its_usage(
    engine: Engine, database_url: str, script: list[Any]
) -> None:
    engine.fake.enqueue(*script)
    outcome = await engine.manager.handle(said("hello"), RecordingSink())
    assert outcome.error is not None
    trace_id = outcome.error.trace_id
    assert trace_id is not None
    assert len(trace_id) == 32
    assert await model_calls(database_url) == [(False, outcome.error.code, trace_id, 0)]


@pytest.mark.parametrize("api_style", ["openai"])
async def test_a_whole_turn_over_the_openai_route(engine: Engine, database_url: str) -> None:
    sink = RecordingSink()
    outcome = await engine.manager.handle(said("Evening! Mind if I dry off?"), sink)

    assert outcome.status is TurnStatus.ANSWERED
    assert [r.path for r in engine.fake.requests] == [OPENAI_PATH]
    assert engine.fake.requests[0].body["stream"] is True
    assert "".join(sink.of("delta")) == sink.of("finish")[0] == outcome.reply
    assert outcome.reply is not None
    assert outcome.reply.startswith("Aria heard Sam")
    ((ok, code, trace_id, total),) = await model_calls(database_url)
    assert (ok, code) == (True, None)
    assert trace_id is not None
    assert total > 0

    # Errors on this route reach the turn as the same typed errors.
    engine.fake.enqueue(*[Error(1002)] * 4)
    failed = await engine.manager.handle(said("again"), RecordingSink())
    assert type(failed.error) is RateLimited
    assert (failed.error.code, failed.error.http_status) == (1002, 429)
    assert api_error_samples(engine) == {("429", "RateLimited"): 1}
