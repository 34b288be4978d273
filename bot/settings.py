"""Every setting Troupe reads from the environment, as one typed object.

:class:`Settings` has one section per concern (storage, M2-her, conversation, each platform,
health, logs, shutdown). Each field names its environment variable and says in its docstring
what it does; secrets are :class:`~pydantic.SecretStr`. Build it with
:meth:`Settings.from_environ` (``os.environ`` or any mapping): a malformed value is a
:class:`ConfigError` naming the variable, and every malformed value is reported at once. An
empty or blank variable counts as unset.

The file ``troupe.yaml`` (policy, prices) is not read here: :mod:`bot.configfile` does that.
This module imports nothing of Troupe's but :mod:`bot.errors` and the M2-her limits in
:mod:`bot.llm.types`, so any layer may import it.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.errors import TroupeError
from bot.llm.types import CONTEXT_WINDOW, DEFAULT_BASE_URL, MAX_COMPLETION_TOKENS, ApiStyle

__all__ = [
    "AdvancedRoles",
    "ConfigError",
    "ConversationSettings",
    "DiscordSettings",
    "HealthSettings",
    "LogSettings",
    "M2HerSettings",
    "Settings",
    "ShutdownSettings",
    "StorageSettings",
    "TelegramSettings",
]

#: Where the data goes when ``DATABASE_URL`` is unset: a file in the working directory.
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///troupe.sqlite3"
#: Seconds between two sends or edits in one Discord channel while streaming. Discord allows
#: about five message operations per five seconds per channel; this stays under that.
DEFAULT_DISCORD_EDIT_INTERVAL = 1.2
DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org/bot"
DEFAULT_SHUTDOWN_SECONDS = 20.0
#: Failures in a row, and seconds they must span, before a platform is reported unhealthy.
DEFAULT_UNHEALTHY_AFTER_FAILURES = 5
DEFAULT_UNHEALTHY_AFTER_SECONDS = 60.0

#: What Telegram allows in ``secret_token``.
_TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_QUIET_HOURS = re.compile(r"([01]?\d|2[0-3]):[0-5]\d\s*-\s*([01]?\d|2[0-3]):[0-5]\d")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Whether requests use M2-her's advanced roles (``bot.llm.roles``): probed, always or never.
AdvancedRoles = Literal["auto", "on", "off"]

#: How ``troupe config`` shows a secret that is set.
SECRET_SHOWN = "*** (set)"
NOT_SET = "not set"


class ConfigError(TroupeError, ValueError):
    """A setting in the environment is missing or malformed; the message says which and why."""


def _problem(text: str) -> PydanticCustomError:
    """A validation failure whose text follows the variable's name (``"must be ..."``), or
    stands alone when raised for a whole section."""
    return PydanticCustomError("setting", "{problem}", {"problem": text})


def _variable(name: str, default: Any = None, *, repr: bool = True) -> Any:
    """A field read from the environment variable ``name``."""
    return Field(default, validation_alias=name, repr=repr)


# Parsers of the raw text. Values given in Python (tests, embedders) are already typed and
# only pass the checks that follow the parsers.


def _parsed(convert: Callable[[str], Any], complaint: str) -> BeforeValidator:
    """Text turned into a value by ``convert``; ``"<complaint>, got '<text>'"`` if it fails."""

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return convert(value)
        except ValueError:
            raise _problem(f"{complaint}, got {value!r}") from None

    return BeforeValidator(parse)


def _at_least(minimum: int) -> AfterValidator:
    def check(value: int) -> int:
        if value < minimum:
            raise _problem(f"must be at least {minimum}, got {value}")
        return value

    return AfterValidator(check)


def _not_negative(value: float) -> float:
    if not value >= 0:  # also refuses NaN
        raise _problem("must not be negative")
    return value


def _more_than_zero(value: float) -> float:
    if not value > 0:
        raise _problem("must be more than 0")
    return value


def _port_range(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 65535:
        raise _problem(f"must be between 1 and 65535, got {value}")
    return value


def _listen_port(value: Any) -> Any:
    text = str(value)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _problem(f"must be a port number, not {text!r}")
    return int(text)


def _quiet_hours(value: str) -> str:
    if value.strip().lower() in ("", "off", "none"):
        return "off"
    if not _QUIET_HOURS.fullmatch(value.strip()):
        raise _problem(f"must be HH:MM-HH:MM (like 22:00-08:00) or off, got {value!r}")
    return value.strip()


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise _problem(f"must be a time zone name like Europe/Berlin, got {value!r}") from None
    return value.strip()


def _one_of(choices: tuple[str, ...], normal: Callable[[str], str]) -> BeforeValidator:
    """Text that is one of ``choices`` once made ``normal`` (upper or lower case)."""
    named = ", ".join(choices[:-1]) + f" or {choices[-1]}"

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = normal(value)
        if text not in choices:
            raise _problem(f"must be {named}, got {text!r}")
        return text

    return BeforeValidator(check)


def _shard_count(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.lower()
    if text == "auto":
        return text
    try:
        count = int(text)
    except ValueError:
        raise _problem(f"must be a number or 'auto', got {text!r}") from None
    if count < 1:
        raise _problem("must be at least 1")
    return count


def _shard_ids(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    ids = []
    for part in value.split(","):
        try:
            ids.append(int(part.strip()))
        except ValueError:
            raise _problem(f"must be numbers, got {part.strip()!r}") from None
    return tuple(ids)


def _telegram_api_url(url: str) -> str:
    """``http://host:8081`` or ``http://host:8081/bot`` → the form PTB wants (``.../bot``)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise _problem(f"must be an http(s) URL, not {url!r}")
    url = url.rstrip("/")
    return url if url.endswith("/bot") else url + "/bot"


def _webhook_url(url: str | None) -> str | None:
    if url is not None and urlsplit(url).scheme not in ("http", "https"):
        raise _problem("must be an https:// URL")
    return url


def _webhook_secret(secret: SecretStr | None) -> SecretStr | None:
    if secret is not None and not _TELEGRAM_SECRET.fullmatch(secret.get_secret_value()):
        raise _problem("may only use A-Z, a-z, 0-9, _ and - (1 to 256 characters)")
    return secret


Seconds = Annotated[
    float, _parsed(float, "must be a number of seconds"), AfterValidator(_not_negative)
]
PositiveWholeNumber = Annotated[int, _parsed(int, "must be a whole number"), _at_least(1)]


class _Section(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, use_attribute_docstrings=True
    )


class StorageSettings(_Section):
    """Where conversations are kept."""

    database_url: str = _variable("DATABASE_URL", DEFAULT_DATABASE_URL, repr=False)  # a password
    """The database: sqlite+aiosqlite:///file.sqlite3, or postgresql://user:password@host/db."""


class M2HerSettings(_Section):
    """The MiniMax M2-her API."""

    api_key: SecretStr | None = _variable("MINIMAX_API_KEY")
    """The API key (platform.minimax.io); unset: the built-in fake M2-her answers."""
    base_url: str = _variable("MINIMAX_BASE_URL", DEFAULT_BASE_URL)
    """The API's address (https://api.minimaxi.com for keys of the mainland-China site)."""
    advanced_roles: Annotated[AdvancedRoles, _one_of(get_args(AdvancedRoles), str.lower)] = (
        _variable("MINIMAX_ADVANCED_ROLES", "auto")
    )
    """Send the user persona, scene and examples as M2-her's own roles (on), fold them into the
    system message (off), or probe at start and fold only if M2-her refuses them (auto)."""
    api_style: Annotated[ApiStyle, _one_of(get_args(ApiStyle), str.lower)] = _variable(
        "MINIMAX_API_STYLE", "minimax"
    )
    """minimax (/v1/text/chatcompletion_v2), or openai (the OpenAI-compatible
    /v1/chat/completions); the same model, roles and replies either way."""


class ConversationSettings(_Section):
    """Characters, the token budget and turn recovery."""

    characters_dir: Path = _variable("TROUPE_CHARACTERS_DIR", Path("characters"))
    """The folder of character files (reloaded live when they change)."""
    default_character: str | None = _variable("TROUPE_DEFAULT_CHARACTER")
    """The character a new conversation starts with (an id or a name); unset: the first by id."""
    config_file: Path | None = _variable("TROUPE_CONFIG")
    """The policy and prices file; unset: ./troupe.yaml if there is one."""
    context_window: PositiveWholeNumber = _variable("TROUPE_CONTEXT_WINDOW", CONTEXT_WINDOW)
    """Tokens one request may hold, the prompt and the reply together."""
    max_reply_tokens: PositiveWholeNumber = _variable(
        "TROUPE_MAX_REPLY_TOKENS", MAX_COMPLETION_TOKENS
    )
    """Tokens reserved for a reply (a character's own setting wins)."""
    resume_max_age: Seconds = _variable("TROUPE_RESUME_MAX_AGE", 900.0)
    """Seconds: turns owed for younger messages are resumed at start; older ones are given up."""
    claim_lease: Annotated[Seconds, AfterValidator(_more_than_zero)] = _variable(
        "TROUPE_CLAIM_LEASE_SECONDS", 30.0
    )
    """Seconds a turn's claim lasts unless renewed (several processes on one database)."""
    nudge_quiet_minutes: Annotated[int, _parsed(int, "must be a whole number"), _at_least(0)] = (
        _variable("TROUPE_NUDGE_QUIET_MINUTES", 180)
    )
    """Where characters may speak first: minutes without a message before one opens a topic
    (0: greetings only); each chat's admins may set their own."""
    nudge_quiet_hours: Annotated[str, AfterValidator(_quiet_hours)] = _variable(
        "TROUPE_NUDGE_QUIET_HOURS", "22:00-08:00"
    )
    """Local time (HH:MM-HH:MM, or off) in which no character speaks first."""
    nudge_timezone: Annotated[str, AfterValidator(_timezone)] = _variable(
        "TROUPE_NUDGE_TIMEZONE", "UTC"
    )
    """The time zone of quiet hours, days and greeting schedules (e.g. Europe/Berlin)."""
    nudge_max_per_day: Annotated[int, _parsed(int, "must be a whole number"), _at_least(1)] = (
        _variable("TROUPE_NUDGE_MAX_PER_DAY", 3)
    )
    """The most times a day a character speaks first in one chat (a private chat's user may
    ask for fewer, never more)."""


class DiscordSettings(_Section):
    """The Discord adapter; it runs when the token is set."""

    token: SecretStr | None = _variable("DISCORD_TOKEN")
    """The bot token (Discord Developer Portal → Bot)."""
    api_base_url: str | None = _variable("DISCORD_API_BASE_URL")
    """The REST API base, e.g. a rate-limit proxy; unset: discord.py's default."""
    gateway_url: str | None = _variable("DISCORD_GATEWAY_URL")
    """The gateway websocket; unset: discord.py's default."""
    shard_count: Annotated[int | Literal["auto"] | None, BeforeValidator(_shard_count)] = _variable(
        "DISCORD_SHARD_COUNT"
    )
    """Shards in all (a number, or auto for Discord's recommendation); unset: one connection."""
    shard_ids: Annotated[tuple[int, ...] | None, BeforeValidator(_shard_ids)] = _variable(
        "DISCORD_SHARD_IDS"
    )
    """The shards this process runs, e.g. 0,1 (needs DISCORD_SHARD_COUNT); unset: all."""
    guild_ready_timeout: Seconds = _variable("DISCORD_GUILD_READY_TIMEOUT", 2.0)
    """Seconds discord.py waits after the last server arrives before it is ready."""
    identify_delay: Seconds | None = _variable("DISCORD_IDENTIFY_DELAY")
    """Seconds between two shards' logins; unset: discord.py's 5 s, Discord's own limit."""
    edit_interval: Seconds = _variable("DISCORD_EDIT_INTERVAL", DEFAULT_DISCORD_EDIT_INTERVAL)
    """Seconds between two sends or edits in one channel while a reply streams."""

    @model_validator(mode="after")
    def _shards_fit(self) -> Self:
        if self.shard_ids is None:
            return self
        if not isinstance(self.shard_count, int):
            raise _problem("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT set to a number")
        for shard in self.shard_ids:
            if not 0 <= shard < self.shard_count:
                raise _problem(f"shard id {shard} is outside 0..{self.shard_count - 1}")
        return self


class TelegramSettings(_Section):
    """The Telegram adapter; it runs when the token is set."""

    token: SecretStr | None = _variable("TELEGRAM_TOKEN")
    """The bot token (from @BotFather)."""
    api_base_url: Annotated[str, AfterValidator(_telegram_api_url)] = _variable(
        "TELEGRAM_API_BASE_URL", DEFAULT_TELEGRAM_API_URL
    )
    """The Bot API server (a self-hosted one, say)."""
    webhook_url: Annotated[str | None, AfterValidator(_webhook_url)] = _variable(
        "TELEGRAM_WEBHOOK_URL"
    )
    """The public https:// address Telegram posts updates to; unset: long polling."""
    webhook_secret: Annotated[SecretStr | None, AfterValidator(_webhook_secret)] = _variable(
        "TELEGRAM_WEBHOOK_SECRET"
    )
    """What Telegram must send with each update (A-Z, a-z, 0-9, _ and -); unset: random."""
    listen_host: str = _variable("TELEGRAM_LISTEN_HOST", "0.0.0.0")
    """Where the webhook server listens."""
    listen_port: Annotated[int, BeforeValidator(_listen_port)] = _variable(
        "TELEGRAM_LISTEN_PORT", 8443
    )
    """The webhook server's port."""


class HealthSettings(_Section):
    """``/healthz`` and ``/metrics``, and when a platform counts as unhealthy."""

    port: Annotated[
        int | None, _parsed(int, "must be a port number"), AfterValidator(_port_range)
    ] = _variable("TROUPE_HEALTH_PORT")
    """The port of /healthz and /metrics; unset: no server."""
    unhealthy_after_failures: PositiveWholeNumber = _variable(
        "TROUPE_UNHEALTHY_AFTER_FAILURES", DEFAULT_UNHEALTHY_AFTER_FAILURES
    )
    """Failed requests in a row after which a platform is unhealthy (see the next one)."""
    unhealthy_after_seconds: Seconds = _variable(
        "TROUPE_UNHEALTHY_AFTER_SECONDS", DEFAULT_UNHEALTHY_AFTER_SECONDS
    )
    """Seconds those failures must span before a platform is unhealthy."""


class LogSettings(_Section):
    """What is logged, and how."""

    level: Annotated[str | None, _one_of(_LOG_LEVELS, str.upper)] = _variable("TROUPE_LOG_LEVEL")
    """DEBUG, INFO, WARNING, ERROR or CRITICAL; unset: WARNING (ERROR in troupe chat)."""
    format: Annotated[Literal["text", "json"], _one_of(("text", "json"), str.lower)] = _variable(
        "TROUPE_LOG_FORMAT", "text"
    )
    """text, or json for one JSON object per line."""


class ShutdownSettings(_Section):
    """A graceful stop (SIGTERM, Ctrl-C)."""

    seconds: Seconds = _variable("TROUPE_SHUTDOWN_SECONDS", DEFAULT_SHUTDOWN_SECONDS)
    """Seconds replies in flight may take to finish before they are stopped."""


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable of :class:`Settings`, for help texts and ``troupe config``."""

    section: str
    field: str
    name: str
    description: str
    default: Any
    secret: bool


class Settings(BaseSettings):
    """Everything Troupe reads from the environment, by section."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    storage: StorageSettings = StorageSettings()
    m2her: M2HerSettings = M2HerSettings()
    conversation: ConversationSettings = ConversationSettings()
    discord: DiscordSettings = DiscordSettings()
    telegram: TelegramSettings = TelegramSettings()
    health: HealthSettings = HealthSettings()
    logs: LogSettings = LogSettings()
    shutdown: ShutdownSettings = ShutdownSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then this process's environment, by Troupe's variable names."""
        return init_settings, Environment(settings_cls, os.environ)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """The settings in ``environ``; :class:`ConfigError` names every malformed variable
        (never repeating a secret's value)."""
        try:
            return cls(_build_sources=((Environment(cls, environ),), {}))
        except ValidationError as error:
            raise ConfigError("\n".join(_explain(error))) from None

    @classmethod
    def variables(cls, *paths: str) -> Iterator[Variable]:
        """The variables of the sections (``"logs"``) or fields (``"conversation.config_file"``)
        in ``paths``, in that order; every variable without ``paths``."""
        for path in paths or tuple(cls.model_fields):
            section, _, only = path.partition(".")
            model = _section_model(cls.model_fields[section])
            for name, info in model.model_fields.items():
                if only and name != only:
                    continue
                yield Variable(
                    section=section,
                    field=name,
                    name=str(info.validation_alias),
                    description=info.description or "",
                    default=info.default,
                    secret=_is_secret(info),
                )

    def value_of(self, variable: Variable) -> Any:
        """The effective value of ``variable``."""
        return getattr(getattr(self, variable.section), variable.field)

    def secrets(self) -> list[str]:
        """The values of the secrets that are set (for masking them in logs)."""
        values = (self.value_of(v) for v in self.variables() if v.secret)
        return [value.get_secret_value() for value in values if value is not None]

    def shown(self) -> dict[str, dict[str, Any]]:
        """Every variable's effective value by section, secrets masked, as plain data."""
        shown: dict[str, dict[str, Any]] = {}
        for variable in self.variables():
            value = self.value_of(variable)
            if value is None:
                text: Any = NOT_SET
            elif variable.secret:
                text = SECRET_SHOWN
            elif isinstance(value, str):
                text = _without_password(value)
            elif isinstance(value, Path):
                text = str(value)
            elif isinstance(value, tuple):
                text = list(value)
            else:
                text = value
            shown.setdefault(variable.section, {})[variable.name] = text
        return shown


def help_text(paths: Iterable[str]) -> str:
    """The variables of ``paths`` (see :meth:`Settings.variables`), each as ``NAME=default``
    over its description: the end of a command's ``--help``."""
    lines = ["environment (blank counts as unset):"]
    for variable in Settings.variables(*paths):
        default = variable.default
        if isinstance(default, float):
            default = f"{default:g}"
        lines.append(f"  {variable.name}" + ("" if default is None else f"={default}"))
        lines += textwrap.wrap(
            variable.description, 88, initial_indent=" " * 6, subsequent_indent=" " * 6
        )
    return "\n".join(lines)


class Environment(PydanticBaseSettingsSource):
    """A settings source reading Troupe's variable names (``DISCORD_TOKEN``, not
    ``discord__token``) from a mapping; blank values count as unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Not used: :meth:`__call__` reads whole sections."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for section, info in self.settings_cls.model_fields.items():
            values = {}
            for field in _section_model(info).model_fields.values():
                name = str(field.validation_alias)
                text = self._environ.get(name, "").strip()
                if text:
                    values[name] = text
            found[section] = values
        return found


def _section_model(info: FieldInfo) -> type[BaseModel]:
    model = info.annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"a settings section must be a model, not {model!r}")
    return model


def _without_password(text: str) -> str:
    """``text`` with the password of a URL (``scheme://user:password@host``) masked."""
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return text
    if not password:
        return text
    return parts._replace(netloc=parts.netloc.replace(f":{password}@", ":***@")).geturl()


def _is_secret(info: FieldInfo) -> bool:
    return info.annotation is SecretStr or SecretStr in get_args(info.annotation)


def _explain(error: ValidationError) -> Iterator[str]:
    """One line per problem: ``NAME must ...`` for a variable, the whole text for a section's."""
    for detail in error.errors(include_url=False, include_input=False):
        text = detail.get("ctx", {}).get("problem") or detail["msg"]
        loc = detail["loc"]
        yield f"{loc[-1]} {text}" if len(loc) > 1 else str(text)
