"""Secrets never come out of the logs: planted in messages, arguments and exceptions."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.observability.logs import SecretMasker
from bot.settings import Settings
from tests.observability.conftest import Configure

API_KEY = "sk-api-plant-0c41d9e7b2a8"
DISCORD_TOKEN = "MTA5OTk5.plant.discord-Zx81Qw"
TELEGRAM_TOKEN = "7012345678:AAH-plantedTelegramToken_0123456789ab"
WEBHOOK_SECRET = "webhook-plant-5521"
DB_PASSWORD = "p@ss:w/rd plant"  # written percent-encoded in the URL
DB_PASSWORD_ENCODED = "p%40ss%3Aw%2Frd%20plant"

ENVIRON = {
    "MINIMAX_API_KEY": API_KEY,
    "DISCORD_TOKEN": DISCORD_TOKEN,
    "TELEGRAM_TOKEN": TELEGRAM_TOKEN,
    "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "DATABASE_URL": f"postgresql+asyncpg://troupe:{DB_PASSWORD_ENCODED}@db:5432/troupe",
}
SECRETS = (API_KEY, DISCORD_TOKEN, TELEGRAM_TOKEN, WEBHOOK_SECRET, DB_PASSWORD, DB_PASSWORD_ENCODED)

log = logging.getLogger("bot.test.secrets")


def assert_clean(output: str) -> None:
    """None of the planted secrets, nor a recognisable piece of one, is in ``output``."""
    for secret in SECRETS:
        assert secret not in output
    assert "plant" not in output


@pytest.fixture(params=["text", "json"])
def stream(request: pytest.FixtureRequest, configure: Configure) -> io.StringIO:
    """Logging configured with the planted secrets, in each format."""
    return configure({**ENVIRON, "TROUPE_LOG_FORMAT": request.param, "TROUPE_LOG_LEVEL": "DEBUG"})


@pytest.mark.parametrize("secret", SECRETS)
def test_a_secret_in_the_message_is_masked(stream: io.StringIO, secret: str) -> None:
    log.warning(f"connecting with {secret} now")

    assert_clean(stream.getvalue())
    assert "connecting with *** now" in stream.getvalue()


@pytest.mark.parametrize("secret", SECRETS)
def test_a_secret_in_the_arguments_is_masked(stream: io.StringIO, secret: str) -> None:
    log.info("headers: %r, url: %s", {"Authorization": secret}, f"https://x/{secret}/getMe")

    assert_clean(stream.getvalue())
    assert "***" in stream.getvalue()


def test_secrets_in_an_exception_and_its_traceback_are_masked(stream: io.StringIO) -> None:
    def connect() -> None:
        raise ConnectionError(f"refused for {ENVIRON['DATABASE_URL']} with key {API_KEY}")

    try:
        try:
            connect()
        except ConnectionError as error:
            raise RuntimeError(f"start-up failed: {TELEGRAM_TOKEN}") from error
    except RuntimeError:
        log.exception("could not start")

    output = stream.getvalue()
    assert_clean(output)
    assert "ConnectionError: refused for postgresql+asyncpg://troupe:***@db:5432/troupe" in output
    assert "RuntimeError: start-up failed: ***" in output


def test_stack_info_is_masked(stream: io.StringIO) -> None:
    # The stack text quotes this source line, literal secret included.
    log.warning("at %s", "webhook-plant-5521", stack_info=True)

    assert "Stack (most recent call last)" in stream.getvalue()
    assert 'log.warning("at %s", "***", stack_info=True)' in stream.getvalue().replace("\\", "")
    assert_clean(stream.getvalue())


def test_bearer_and_telegram_looking_tokens_are_masked_without_the_environment(
    configure: Configure,
) -> None:
    stream = configure({"TROUPE_LOG_FORMAT": "json"})

    log.warning("sent Authorization: Bearer eyJhbGciOi.J9-abc_def")
    log.warning("POST https://api.telegram.org/bot123456789:AAF0sdfkjh3498sdfKJH34kjh_ad-fq/getMe")

    first, second = (json.loads(line)["message"] for line in stream.getvalue().splitlines())
    assert first == "sent Authorization: Bearer ***"
    assert second == "POST https://api.telegram.org/bot***/getMe"


def test_arguments_that_do_not_fit_are_masked_not_raised(stream: io.StringIO) -> None:
    log.warning("two slots %s %s", API_KEY)  # a bug in a log call must not leak or crash

    assert_clean(stream.getvalue())
    assert "***" in stream.getvalue()


def test_every_handler_sees_masked_records(configure: Configure) -> None:
    # One handler on the root from before, one on a logger that doesn't propagate.
    earlier = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(earlier)
    isolated = logging.getLogger("bot.test.isolated")
    own = logging.StreamHandler(io.StringIO())
    isolated.addHandler(own)
    isolated.propagate = False
    try:
        configure(ENVIRON)
        log.error("key %s", API_KEY)
        isolated.error("token %s", TELEGRAM_TOKEN)
    finally:
        logging.getLogger().removeHandler(earlier)
        isolated.removeHandler(own)
        isolated.propagate = True

    assert isinstance(earlier.stream, io.StringIO)
    assert isinstance(own.stream, io.StringIO)
    assert earlier.stream.getvalue() == "key ***\n"
    assert own.stream.getvalue() == "token ***\n"


def test_configuring_again_masks_the_new_secrets_only(configure: Configure) -> None:
    configure({"MINIMAX_API_KEY": "old-key-1234"})
    stream = configure({"MINIMAX_API_KEY": API_KEY})

    log.warning("%s %s", "old-key-1234", API_KEY)

    assert stream.getvalue().endswith(": old-key-1234 ***\n")


def test_a_secret_containing_another_is_masked_whole() -> None:
    masker = SecretMasker(["abcd", "xxabcdxx", ""])

    assert masker.mask("1 xxabcdxx 2 abcd 3") == "1 *** 2 *** 3"
    assert masker.mask("nothing secret") == "nothing secret"


def test_a_database_url_without_password_masks_nothing() -> None:
    settings = Settings.from_environ({"DATABASE_URL": "sqlite+aiosqlite:///troupe.db"})
    masker = SecretMasker.from_settings(settings)

    assert masker.mask("sqlite+aiosqlite:///troupe.db") == "sqlite+aiosqlite:///troupe.db"
