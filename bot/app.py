"""Wiring: environment → storage, characters, M2-her client and the conversation manager.

Everything opened here is closed on exit of :func:`open_engine`; nothing is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.characters.loader import CharacterLibrary, load_characters
from bot.characters.prompt import Budget
from bot.characters.watch import CharacterWatcher
from bot.config import ConfigError, env_int, env_seconds
from bot.configfile import config_path_from_env, load_config_file
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.conversation.policy import PolicyTree
from bot.llm.client import M2HerClient
from bot.llm.fake import FakeM2Her
from bot.llm.types import CONTEXT_WINDOW, MAX_COMPLETION_TOKENS
from bot.observability.cost import Prices
from bot.observability.delivery import DeliveryMonitors, delivery_monitors_from_env
from bot.storage import Storage, database_url_from_env, open_storage
from bot.storage.database import parse_url, redacted

DEFAULT_CHARACTERS_DIR = "characters"


@dataclass(frozen=True, slots=True)
class Engine:
    """The running engine: what adapters and the terminal need."""

    manager: ConversationManager
    storage: Storage
    #: Reloads character files when they change on disk; add error hooks to hear of bad edits.
    watcher: CharacterWatcher
    #: One line saying which M2-her this engine talks to (real or the built-in fake).
    backend: str
    #: The M2-her client the manager uses (for start-up checks).
    client: M2HerClient | None = None
    #: Whether each platform still takes requests (adapters report, ``/healthz`` reads).
    delivery: DeliveryMonitors = field(default_factory=DeliveryMonitors)

    @property
    def characters(self) -> CharacterLibrary:
        """The characters in use now (they change on live reload)."""
        return self.manager.characters


def characters_dir_from_env(environ: Mapping[str, str] = os.environ) -> Path:
    """``TROUPE_CHARACTERS_DIR``, default ``./characters``."""
    return Path(environ.get("TROUPE_CHARACTERS_DIR") or DEFAULT_CHARACTERS_DIR)


def manager_settings_from_env(
    environ: Mapping[str, str] = os.environ, *, characters: CharacterLibrary | None = None
) -> ManagerSettings:
    """``TROUPE_DEFAULT_CHARACTER``, the token budget from ``TROUPE_CONTEXT_WINDOW`` and
    ``TROUPE_MAX_REPLY_TOKENS`` (M2-her's 65,536 and 2,048 by default), how long owed turns
    are resumed (``TROUPE_RESUME_MAX_AGE``, seconds, default 900) and a turn claim lasts
    (``TROUPE_CLAIM_LEASE_SECONDS``, default 30), and the policy and prices of
    ``troupe.yaml`` (``TROUPE_CONFIG``), whose character ids are checked against
    ``characters``."""
    window = env_int(environ, "TROUPE_CONTEXT_WINDOW", CONTEXT_WINDOW, minimum=1)
    reply = env_int(environ, "TROUPE_MAX_REPLY_TOKENS", MAX_COMPLETION_TOKENS, minimum=1)
    try:
        budget = Budget(context_window=window, max_completion_tokens=reply)
    except ValueError as error:
        raise ConfigError(f"TROUPE_CONTEXT_WINDOW / TROUPE_MAX_REPLY_TOKENS: {error}") from None
    policy, prices = PolicyTree(), Prices()
    path = config_path_from_env(environ)
    if path is not None:
        ids = set(characters.ids()) if characters is not None else None
        config = load_config_file(path, character_ids=ids)
        policy = config.policy_tree()
        if config.prices is not None:
            prices = Prices(config.prices.input_per_million, config.prices.output_per_million)
    defaults = ManagerSettings()
    resume_max_age = env_seconds(
        environ, "TROUPE_RESUME_MAX_AGE", defaults.resume_max_age.total_seconds()
    )
    lease = env_seconds(environ, "TROUPE_CLAIM_LEASE_SECONDS", defaults.claim_lease.total_seconds())
    if lease <= 0:
        raise ConfigError("TROUPE_CLAIM_LEASE_SECONDS must be more than 0")
    return ManagerSettings(
        default_character=environ.get("TROUPE_DEFAULT_CHARACTER") or None,
        budget=budget,
        policy=policy,
        prices=prices,
        claim_lease=timedelta(seconds=lease),
        resume_max_age=timedelta(seconds=resume_max_age),
    )


@asynccontextmanager
async def open_engine(
    *, force_fake: bool = False, environ: Mapping[str, str] = os.environ
) -> AsyncIterator[Engine]:
    """Open the engine from the environment.

    Uses M2-her when ``MINIMAX_API_KEY`` is set (and ``force_fake`` is not), otherwise starts
    the built-in fake M2-her on a loopback port for the engine's lifetime. Character files
    are watched and reloaded while it runs.
    """
    folder = characters_dir_from_env(environ)
    characters = load_characters(folder)
    async with AsyncExitStack() as stack:
        if environ.get("MINIMAX_API_KEY") and not force_fake:
            client = M2HerClient.from_env(environ)
            backend = f"Using MiniMax M2-her at {client.base_url}."
        else:
            fake = await stack.enter_async_context(FakeM2Her())
            client = M2HerClient("fake-key", base_url=fake.base_url)
            reason = "--fake given" if force_fake else "MINIMAX_API_KEY is not set"
            backend = f"Using the built-in fake M2-her ({reason}); replies are canned echoes."
        await stack.enter_async_context(client)
        storage = await open_storage(database_url_from_env(environ))
        stack.push_async_callback(storage.close)
        settings = manager_settings_from_env(environ, characters=characters)
        manager = ConversationManager(
            storage=storage, characters=characters, client=client, settings=settings
        )
        stack.push_async_callback(manager.aclose)
        watcher = CharacterWatcher(folder, on_reload=manager.use_characters)
        watching = asyncio.create_task(watcher.run())
        stack.push_async_callback(_cancel, watching)
        yield Engine(
            manager=manager,
            storage=storage,
            watcher=watcher,
            backend=backend,
            client=client,
            delivery=delivery_monitors_from_env(
                environ, on_failure=manager.metrics.platform_request_failed
            ),
        )


#: Environment variables Troupe reads, and whether each holds a secret.
ENVIRONMENT = (
    ("MINIMAX_API_KEY", True),
    ("MINIMAX_BASE_URL", False),
    ("DATABASE_URL", False),
    ("TROUPE_CHARACTERS_DIR", False),
    ("TROUPE_DEFAULT_CHARACTER", False),
    ("TROUPE_CONFIG", False),
    ("TROUPE_CONTEXT_WINDOW", False),
    ("TROUPE_MAX_REPLY_TOKENS", False),
    ("TROUPE_LOG_LEVEL", False),
    ("TROUPE_LOG_FORMAT", False),
    ("TROUPE_HEALTH_PORT", False),
    ("TROUPE_SHUTDOWN_SECONDS", False),
    ("TROUPE_RESUME_MAX_AGE", False),
    ("TROUPE_CLAIM_LEASE_SECONDS", False),
    ("TROUPE_UNHEALTHY_AFTER_FAILURES", False),
    ("TROUPE_UNHEALTHY_AFTER_SECONDS", False),
    ("DISCORD_TOKEN", True),
    ("DISCORD_API_BASE_URL", False),
    ("DISCORD_GATEWAY_URL", False),
    ("DISCORD_SHARD_COUNT", False),
    ("DISCORD_SHARD_IDS", False),
    ("TELEGRAM_TOKEN", True),
    ("TELEGRAM_API_BASE_URL", False),
    ("TELEGRAM_WEBHOOK_URL", False),
    ("TELEGRAM_WEBHOOK_SECRET", True),
    ("TELEGRAM_LISTEN_HOST", False),
    ("TELEGRAM_LISTEN_PORT", False),
)


def describe_configuration(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """``troupe config``: the effective configuration, secrets masked, as plain data."""
    characters = load_characters(characters_dir_from_env(environ))
    settings = manager_settings_from_env(environ, characters=characters)
    shown: dict[str, str] = {}
    for name, secret in ENVIRONMENT:
        value = environ.get(name)
        if name == "DATABASE_URL":
            value = redacted(parse_url(database_url_from_env(environ)))
        if value:
            shown[name] = "*** (set)" if secret else value
    tree = settings.policy
    policies: dict[str, Any] = {"global": _plain(tree.base)}
    for platform, overrides in tree.platforms.items():
        policies[f"platforms.{platform}"] = overrides
    for (platform, server_id), overrides in tree.servers.items():
        policies[f"platforms.{platform}.servers.{server_id}"] = overrides
    for (platform, chat_id), overrides in tree.chats.items():
        policies[f"platforms.{platform}.chat {chat_id}"] = {
            **overrides,
            "characters": list(tree.chat_characters.get((platform, chat_id), ())),
        }
    for character_id, overrides in tree.characters.items():
        policies[f"characters.{character_id}"] = overrides
    path = config_path_from_env(environ)
    return {
        "environment": shown,
        "config_file": str(path) if path else "none (built-in defaults)",
        "characters": characters.ids(),
        "default_character": characters.default(settings.default_character).id,
        "budget": _plain(settings.budget),
        "prices_usd_per_million_tokens": _plain(settings.prices),
        "policy (each layer overrides the one above)": _plain(policies),
    }


def _plain(value: Any) -> Any:
    """Dataclasses as dicts, enums as their values, durations in minutes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, timedelta):
        return f"{value.total_seconds() / 60:g} min"
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
