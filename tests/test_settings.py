"""The settings object: every variable's name, default and rule, errors that name the
variable, secrets that never show, and the help and ``troupe config`` texts made from it."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.conversation.manager import ManagerSettings
from bot.settings import ConfigError, Settings, help_text

REPO = Path(__file__).resolve().parents[1]

#: Every variable Troupe reads, with its default (``None``: unset).
DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "sqlite+aiosqlite:///troupe.sqlite3",
    "MINIMAX_API_KEY": None,
    "MINIMAX_BASE_URL": "https://api.minimax.io",
    "MINIMAX_ADVANCED_ROLES": "auto",
    "MINIMAX_API_STYLE": "minimax",
    "TROUPE_CHARACTERS_DIR": Path("characters"),
    "TROUPE_DEFAULT_CHARACTER": None,
    "TROUPE_CONFIG": None,
    "TROUPE_CONTEXT_WINDOW": 65_536,
    "TROUPE_MAX_REPLY_TOKENS": 2048,
    "TROUPE_RESUME_MAX_AGE": 900.0,
    "TROUPE_CLAIM_LEASE_SECONDS": 30.0,
    "TROUPE_NUDGE_QUIET_MINUTES": 180,
    "TROUPE_NUDGE_QUIET_HOURS": "22:00-08:00",
    "TROUPE_NUDGE_TIMEZONE": "UTC",
    "TROUPE_NUDGE_MAX_PER_DAY": 3,
    "DISCORD_TOKEN": None,
    "DISCORD_API_BASE_URL": None,
    "DISCORD_GATEWAY_URL": None,
    "DISCORD_SHARD_COUNT": None,
    "DISCORD_SHARD_IDS": None,
    "DISCORD_GUILD_READY_TIMEOUT": 2.0,
    "DISCORD_IDENTIFY_DELAY": None,
    "DISCORD_EDIT_INTERVAL": 1.2,
    "TELEGRAM_TOKEN": None,
    "TELEGRAM_API_BASE_URL": "https://api.telegram.org/bot",
    "TELEGRAM_WEBHOOK_URL": None,
    "TELEGRAM_WEBHOOK_SECRET": None,
    "TELEGRAM_LISTEN_HOST": "0.0.0.0",
    "TELEGRAM_LISTEN_PORT": 8443,
    "TROUPE_HEALTH_PORT": None,
    "TROUPE_UNHEALTHY_AFTER_FAILURES": 5,
    "TROUPE_UNHEALTHY_AFTER_SECONDS": 60.0,
    "TROUPE_LOG_LEVEL": None,
    "TROUPE_LOG_FORMAT": "text",
    "TROUPE_SHUTDOWN_SECONDS": 20.0,
}
SECRETS = {"MINIMAX_API_KEY", "DISCORD_TOKEN", "TELEGRAM_TOKEN", "TELEGRAM_WEBHOOK_SECRET"}


def values(settings: Settings) -> dict[str, Any]:
    return {v.name: settings.value_of(v) for v in Settings.variables()}


def test_every_variable_and_its_default() -> None:
    assert values(Settings.from_environ({})) == DEFAULTS
    assert {v.name for v in Settings.variables() if v.secret} == SECRETS


def test_the_code_reads_no_variable_outside_the_settings() -> None:
    quoted = re.compile(
        r"""["']((?:TROUPE|DISCORD|TELEGRAM|MINIMAX)_[A-Z0-9_]+|DATABASE_URL)["']"""
    )
    named = {
        name
        for path in (REPO / "bot").rglob("*.py")
        for name in quoted.findall(path.read_text(encoding="utf-8"))
    }
    assert named == set(DEFAULTS)


def test_the_managers_own_defaults_are_the_settings_defaults() -> None:
    conversation = Settings.from_environ({}).conversation
    manager = ManagerSettings()
    assert timedelta(seconds=conversation.resume_max_age) == manager.resume_max_age
    assert timedelta(seconds=conversation.claim_lease) == manager.claim_lease


def test_values_are_read_trimmed_and_blank_counts_as_unset() -> None:
    settings = Settings.from_environ(
        {
            "DATABASE_URL": "   ",
            "TROUPE_CONTEXT_WINDOW": " 3000 ",
            "TROUPE_LOG_LEVEL": "info",
            "TROUPE_LOG_FORMAT": "JSON",
            "DISCORD_TOKEN": " token ",
            "DISCORD_SHARD_COUNT": "AUTO",
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/",
            "TROUPE_CONFIG": "conf/troupe.yaml",
        }
    )
    assert settings.storage.database_url == DEFAULTS["DATABASE_URL"]
    assert settings.conversation.context_window == 3000
    assert (settings.logs.level, settings.logs.format) == ("INFO", "json")
    assert settings.discord.token is not None
    assert settings.discord.token.get_secret_value() == "token"
    assert settings.discord.shard_count == "auto"
    assert settings.telegram.api_base_url == "http://127.0.0.1:8081/bot"
    assert settings.conversation.config_file == Path("conf/troupe.yaml")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "TROUPE_CONTEXT_WINDOW",
            "lots",
            "TROUPE_CONTEXT_WINDOW must be a whole number, got 'lots'",
        ),
        ("TROUPE_MAX_REPLY_TOKENS", "0", "TROUPE_MAX_REPLY_TOKENS must be at least 1, got 0"),
        ("TROUPE_RESUME_MAX_AGE", "soon", "TROUPE_RESUME_MAX_AGE must be a number of seconds"),
        ("TROUPE_RESUME_MAX_AGE", "nan", "TROUPE_RESUME_MAX_AGE must not be negative"),
        ("TROUPE_CLAIM_LEASE_SECONDS", "0", "TROUPE_CLAIM_LEASE_SECONDS must be more than 0"),
        ("TROUPE_SHUTDOWN_SECONDS", "-1", "TROUPE_SHUTDOWN_SECONDS must not be negative"),
        ("TROUPE_UNHEALTHY_AFTER_SECONDS", "x", "TROUPE_UNHEALTHY_AFTER_SECONDS must be a number"),
        ("DISCORD_GUILD_READY_TIMEOUT", "x", "DISCORD_GUILD_READY_TIMEOUT must be a number"),
        ("DISCORD_IDENTIFY_DELAY", "-2", "DISCORD_IDENTIFY_DELAY must not be negative"),
        ("DISCORD_SHARD_IDS", "0,x", "DISCORD_SHARD_IDS must be numbers, got 'x'"),
        ("TROUPE_HEALTH_PORT", "0", "TROUPE_HEALTH_PORT must be between 1 and 65535, got 0"),
        ("TROUPE_LOG_LEVEL", "loud", "TROUPE_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or"),
        ("MINIMAX_API_STYLE", "anthropic", "MINIMAX_API_STYLE must be minimax or openai, got"),
        ("TROUPE_NUDGE_QUIET_HOURS", "10pm", "TROUPE_NUDGE_QUIET_HOURS must be HH:MM-HH:MM"),
        ("TROUPE_NUDGE_QUIET_HOURS", "25:00-08:00", "TROUPE_NUDGE_QUIET_HOURS must be HH:MM"),
        ("TROUPE_NUDGE_TIMEZONE", "Mars/Olympus", "TROUPE_NUDGE_TIMEZONE must be a time zone"),
        ("TROUPE_NUDGE_MAX_PER_DAY", "0", "TROUPE_NUDGE_MAX_PER_DAY must be at least 1, got 0"),
        ("TROUPE_NUDGE_QUIET_MINUTES", "-5", "TROUPE_NUDGE_QUIET_MINUTES must be at least 0"),
    ],
)
def test_a_malformed_value_is_an_error_naming_the_variable(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_environ({name: value})
    assert str(caught.value).startswith(message)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_every_malformed_value_is_reported_at_once_without_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_environ(
            {
                "TROUPE_CONTEXT_WINDOW": "lots",
                "TELEGRAM_WEBHOOK_SECRET": "not a secret-value-4242",
                "DISCORD_SHARD_COUNT": "2",
                "DISCORD_SHARD_IDS": "5",
            }
        )
    assert str(caught.value).splitlines() == [
        "TROUPE_CONTEXT_WINDOW must be a whole number, got 'lots'",
        "shard id 5 is outside 0..1",
        "TELEGRAM_WEBHOOK_SECRET may only use A-Z, a-z, 0-9, _ and - (1 to 256 characters)",
    ]
    assert "4242" not in str(caught.value)


def test_settings_built_plainly_read_this_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TROUPE_CONTEXT_WINDOW", "4096")
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:abc")
    settings = Settings()
    assert settings.conversation.context_window == 4096
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == "123:abc"


def test_shown_settings_mask_secrets_and_passwords() -> None:
    settings = Settings.from_environ(
        {
            "MINIMAX_API_KEY": "sk-very-secret",
            "TELEGRAM_WEBHOOK_SECRET": "tg_hook_value_77",
            "DATABASE_URL": "postgresql://troupe:pw-secret@db/troupe",
            "DISCORD_SHARD_COUNT": "2",
            "DISCORD_SHARD_IDS": "0,1",
        }
    )
    shown = settings.shown()
    text = repr(shown) + repr(settings)
    for secret in ("sk-very-secret", "tg_hook_value_77", "pw-secret"):
        assert secret not in text
    assert shown["m2her"]["MINIMAX_API_KEY"] == "*** (set)"
    assert shown["discord"]["DISCORD_TOKEN"] == "not set"
    assert shown["discord"]["DISCORD_SHARD_IDS"] == [0, 1]
    assert shown["storage"]["DATABASE_URL"] == "postgresql://troupe:***@db/troupe"
    assert shown["conversation"]["TROUPE_CHARACTERS_DIR"] == "characters"
    assert sorted(settings.secrets()) == ["sk-very-secret", "tg_hook_value_77"]


def test_the_help_text_lists_the_variables_asked_for_with_their_defaults() -> None:
    text = help_text(["logs", "conversation.characters_dir"])
    listed = [line.split("=")[0].strip() for line in text.splitlines() if line.startswith("  T")]
    assert listed == ["TROUPE_LOG_LEVEL", "TROUPE_LOG_FORMAT", "TROUPE_CHARACTERS_DIR"]
    assert "  TROUPE_LOG_FORMAT=text\n" in text
    assert "  TROUPE_CHARACTERS_DIR=characters\n" in text
    assert "The folder of character files" in text
    everything = help_text([])
    assert all(f"  {name}" in everything for name in DEFAULTS)
    assert "  TROUPE_SHUTDOWN_SECONDS=20\n" in everything
