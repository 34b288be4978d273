"""The client against the fake M2-her over loopback: requests, replies, streaming."""

from __future__ import annotations

import aiohttp
import pytest

from bot.llm.client import M2HerClient
from bot.llm.errors import InputBlocked, OutputBlocked, StreamInterrupted
from bot.llm.fake import Drop, FakeM2Her, Reply, StreamVariant, reply_text
from bot.llm.types import (
    ChatMessage,
    ChatRequest,
    InvalidRequest,
    Role,
    SensitiveFlags,
    SensitiveType,
)
from bot.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.llm.helpers import chat_request, reply, stream_all, stream_until_error

ECHO = "Aria heard Sam: “Evening! Mind if I dry off by your stove?”"


async def test_complete_returns_the_deterministic_reply(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    result = await m2her_client.complete(chat_request())
    assert result.text.startswith(ECHO)
    assert result.finish_reason == "stop"
    assert result.name == "Aria"
    assert result.usage.prompt_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.flags == SensitiveFlags()
    assert result.response_id is not None
    assert len(result.response_id) == 32
    assert result.trace_id == result.response_id


async def test_the_exact_body_and_headers_are_sent(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    request = ChatRequest(
        (
            ChatMessage(Role.SYSTEM, None, "Aria"),
            ChatMessage(Role.USER_SYSTEM, "Sam is a sailor.", "Sam"),
            ChatMessage(Role.GROUP, "Stormy evening"),
            ChatMessage(Role.SAMPLE_MESSAGE_USER, "Bright lamp?", "Sam"),
            ChatMessage(Role.SAMPLE_MESSAGE_AI, "Brighter in fog.", "Aria"),
            ChatMessage(Role.ASSISTANT, "Come in.", "Aria"),
            ChatMessage(Role.USER, "Thanks!", "Sam"),
        ),
        temperature=0.7,
        top_p=0.9,
        max_completion_tokens=512,
    )
    await m2her_client.complete(request)
    (recorded,) = fake_m2her.requests
    assert recorded.path == "/v1/text/chatcompletion_v2"
    assert recorded.headers["Content-Type"] == "application/json"
    assert recorded.headers["Authorization"] == "Bearer <redacted>"
    assert recorded.body == {
        "model": "M2-her",
        "messages": [
            {"role": "system", "name": "Aria"},  # no content key, never null
            {"role": "user_system", "name": "Sam", "content": "Sam is a sailor."},
            {"role": "group", "content": "Stormy evening"},
            {"role": "sample_message_user", "name": "Sam", "content": "Bright lamp?"},
            {"role": "sample_message_ai", "name": "Aria", "content": "Brighter in fog."},
            {"role": "assistant", "name": "Aria", "content": "Come in."},
            {"role": "user", "name": "Sam", "content": "Thanks!"},
        ],
        "temperature": 0.7,
        "top_p": 0.9,
        "max_completion_tokens": 512,
    }


async def test_stream_sends_stream_true_and_yields_several_deltas(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    deltas, result = await stream_all(m2her_client, chat_request())
    assert len(deltas) > 3
    assert "".join(deltas) == result.text
    assert result.text.startswith(ECHO)
    assert result.finish_reason == "stop"
    assert result.usage.total_tokens > 0
    assert fake_m2her.requests[0].body["stream"] is True
    assert fake_m2her.requests[0].headers["Accept"] == "text/event-stream"


@pytest.mark.parametrize(
    "variant",
    [
        StreamVariant.STANDARD,
        StreamVariant.RICH,
        StreamVariant.DONE,
        StreamVariant.NO_SUMMARY,
        StreamVariant.RICH | StreamVariant.DONE | StreamVariant.NO_SUMMARY,
    ],
)
async def test_every_stream_variant_gives_the_same_reply(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient, variant: StreamVariant
) -> None:
    fake_m2her.stream_variant = variant
    deltas, result = await stream_all(m2her_client, chat_request())
    expected = await m2her_client.complete(chat_request())
    assert "".join(deltas) == result.text == expected.text
    assert result.finish_reason == "stop"
    assert result.usage.total_tokens == expected.usage.total_tokens
    if StreamVariant.RICH in variant or StreamVariant.NO_SUMMARY in variant:
        assert result.usage == expected.usage  # the complete usage reached the client


async def test_summary_text_is_authoritative_and_never_appended(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    long_text = "".join(f"word{i} " for i in range(600))  # ~3,000 characters
    fake_m2her.enqueue(Reply(long_text))
    deltas, result = await stream_all(m2her_client, chat_request())
    assert result.text == long_text
    assert "".join(deltas) == long_text


async def test_max_completion_tokens_cuts_the_reply_with_finish_reason_length(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    request = chat_request(max_completion_tokens=5)
    result = await m2her_client.complete(request)
    assert result.finish_reason == "length"
    assert reply_text(fake_m2her.requests[0].body["messages"]).startswith(result.text)
    assert 0 < len(result.text) < len(ECHO)
    _deltas, streamed = await stream_all(m2her_client, request)
    assert streamed.finish_reason == "length"
    assert streamed.text == result.text


async def test_input_flag_with_status_zero_is_returned_not_raised(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    fake_m2her.enqueue(Reply(input_sensitive_type=5), Reply(input_sensitive_type=6))
    result = await m2her_client.complete(chat_request())
    assert result.text.startswith(ECHO)
    assert result.flags.input_sensitive
    assert result.flags.input_sensitive_type is SensitiveType.ABUSE
    _, streamed = await stream_all(m2her_client, chat_request())
    assert streamed.flags.input_sensitive_type is SensitiveType.VIOLENCE


async def test_input_type_without_the_flag_in_chunks_still_flags_the_input(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    # Documented chunks carry input_sensitive_type but not input_sensitive.
    fake_m2her.stream_variant = StreamVariant.NO_SUMMARY
    fake_m2her.enqueue(Reply(input_sensitive_type=3))
    _, streamed = await stream_all(m2her_client, chat_request())
    assert streamed.flags.input_sensitive
    assert streamed.flags.input_sensitive_type is SensitiveType.ADVERTISEMENT


@pytest.mark.parametrize("streaming", [False, True])
async def test_output_flag_with_status_zero_raises_output_blocked_with_the_text(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient, streaming: bool
) -> None:
    fake_m2her.enqueue(Reply("Something unkind.", output_sensitive_type=2))
    with pytest.raises(OutputBlocked) as caught:
        await reply(m2her_client, chat_request(), streaming=streaming)
    assert caught.value.partial_text == "Something unkind."
    assert caught.value.flags.output_sensitive
    assert caught.value.sensitive_type is SensitiveType.PORNOGRAPHY
    assert len(fake_m2her.requests) == 1  # moderation is never retried


async def test_invalid_request_raises_before_anything_is_sent(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        m2her_client.stream(chat_request(temperature=0))
    assert caught.value.field == "temperature"
    assert fake_m2her.requests == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": "M2"}, "model"),
        ({"messages": ()}, "messages"),
        ({"temperature": 1.5}, "temperature"),
        ({"temperature": 0.0}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": float("nan")}, "top_p"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"max_completion_tokens": 2049}, "max_completion_tokens"),
        ({"max_completion_tokens": True}, "max_completion_tokens"),
        ({"messages": (ChatMessage("narrator", "hi"),)}, "messages[0].role"),  # type: ignore[arg-type]
        ({"messages": (ChatMessage(Role.USER, None),)}, "messages[0].content"),
        ({"messages": (ChatMessage(Role.USER, ["hi"]),)}, "messages[0].content"),  # type: ignore[arg-type]
    ],
)
def test_request_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"messages": (ChatMessage(Role.USER, "hi"),), **kwargs}
    with pytest.raises(InvalidRequest) as caught:
        ChatRequest(**args)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert field in str(caught.value)


def test_boundary_values_are_valid() -> None:
    request = ChatRequest(
        (ChatMessage(Role.SYSTEM, None, "Aria"), ChatMessage(Role.USER, "hi")),
        temperature=1,
        top_p=1.0,
        max_completion_tokens=2048,
    )
    assert request.to_wire(stream=False)["max_completion_tokens"] == 2048
    assert ChatRequest((ChatMessage(Role.USER, "hi"),), max_completion_tokens=1)


async def test_one_session_for_the_life_of_the_client(fake_m2her: FakeM2Her) -> None:
    client = M2HerClient(TEST_API_KEY, base_url=fake_m2her.base_url)
    async with client:
        session = client._session
        await client.complete(chat_request())
        await stream_all(client, chat_request())
        assert client._session is session
        assert session is not None
        assert not session.closed
    assert session.closed
    await client.close()  # closing twice is harmless


async def test_a_shared_session_is_used_and_left_open(fake_m2her: FakeM2Her) -> None:
    async with aiohttp.ClientSession() as session:
        async with M2HerClient(
            TEST_API_KEY, base_url=fake_m2her.base_url, session=session
        ) as client:
            await client.complete(chat_request())
        assert not session.closed


def client_from(environ: dict[str, str]) -> M2HerClient:
    return M2HerClient.from_settings(Settings.from_environ(environ).m2her)


def test_from_env_reads_key_and_base_url() -> None:
    client = client_from(
        {"MINIMAX_API_KEY": TEST_API_KEY, "MINIMAX_BASE_URL": "http://127.0.0.1:9/"}
    )
    assert client.base_url == "http://127.0.0.1:9"
    assert client_from({"MINIMAX_API_KEY": "k"}).base_url == "https://api.minimax.io"
    with pytest.raises(ValueError, match="MINIMAX_API_KEY"):
        client_from({})


async def test_iterating_a_stream_twice_or_reading_result_early_is_an_error(
    m2her_client: M2HerClient,
) -> None:
    stream = m2her_client.stream(chat_request())
    with pytest.raises(RuntimeError):
        _ = stream.result
    _ = [delta async for delta in stream]
    with pytest.raises(RuntimeError):
        stream.__aiter__()


async def test_a_stream_abandoned_part_way_releases_its_connection(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    stream = m2her_client.stream(chat_request())
    iterator = stream.__aiter__()
    first = await iterator.__anext__()
    assert first
    await iterator.aclose()  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        _ = stream.result
    # The client still works afterwards.
    assert (await m2her_client.complete(chat_request())).text.startswith(ECHO)


async def test_input_flag_without_text_is_input_blocked(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    fake_m2her.enqueue(Reply("", input_sensitive_type=4))
    with pytest.raises(InputBlocked) as caught:
        await m2her_client.complete(chat_request())
    assert caught.value.sensitive_type is SensitiveType.PROHIBITED


async def test_stream_cut_mid_way_is_interrupted_not_complete(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    fake_m2her.enqueue(Drop(after_chunks=3))
    deltas, error = await stream_until_error(m2her_client, chat_request())
    assert isinstance(error, StreamInterrupted)
    assert len(deltas) == 3
    assert error.partial_text == "".join(deltas)
    assert ECHO.startswith(error.partial_text)
    assert len(fake_m2her.requests) == 1  # text was shown, so no retry
