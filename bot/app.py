"""Wiring: settings → storage, characters, M2-her client and the conversation manager.

Everything opened here is closed on exit of :func:`open_engine`; nothing is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.characters.loader import (
    CharacterLibrary,
    CharacterLoadError,
    LoadReport,
    read_characters,
)
from bot.characters.prompt import Budget
from bot.characters.watch import CharacterWatcher, broken_characters_notice
from bot.configfile import config_path, load_config_file
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.conversation.nudges import NudgeDefaults
from bot.conversation.policy import PolicyTree
from bot.conversation.services import BrokenCharactersHook, PlatformServices
from bot.llm.client import M2HerClient
from bot.llm.errors import M2HerError
from bot.llm.fake import FakeM2Her
from bot.llm.roles import REPROBE_SECONDS, RoleSupport
from bot.observability.cost import Prices
from bot.observability.delivery import DeliveryMonitor
from bot.platforms.registry import PLATFORMS
from bot.settings import ConfigError, ConversationSettings, Settings
from bot.storage import Storage, open_storage
from bot.storage.database import parse_url, redacted


@dataclass(frozen=True, slots=True)
class Engine:
    """The running engine: what ``troupe run`` and the terminal need."""

    manager: ConversationManager
    storage: Storage
    #: Reloads character files when they change on disk.
    watcher: CharacterWatcher
    #: One line saying which M2-her this engine talks to (real or the built-in fake).
    backend: str
    #: Whether requests carry M2-her's advanced roles or fold them into ``system``.
    roles: RoleSupport
    #: The M2-her client the manager uses (for start-up checks).
    client: M2HerClient | None = None
    #: What loading the character files said at start (the broken ones are left out).
    loaded: LoadReport | None = None

    def characters_summary(self) -> str:
        """Lines for the start-up output: the characters, the default one and why, and the
        files left out or warned about."""
        manager = self.manager
        configured = manager.configured_default
        why = (
            "TROUPE_DEFAULT_CHARACTER"
            if configured
            else "the first by id; set TROUPE_DEFAULT_CHARACTER to choose"
        )
        lines = [
            f"Characters: {', '.join(manager.characters.ids())}; "
            f"default: {manager.default_character.id} ({why})."
        ]
        if self.loaded is not None:
            lines += [f"warning: {warning}" for warning in self.loaded.warnings]
            if self.loaded.problems:
                files = len({problem.path for problem in self.loaded.problems})
                lines.append(f"Left out: {files} broken character file(s), until fixed:")
                lines += [str(problem) for problem in self.loaded.problems]
        return "\n".join(lines)

    def services(self, delivery: DeliveryMonitor) -> PlatformServices:
        """What a platform whose requests ``delivery`` watches gets of this engine."""
        return PlatformServices(
            manager=self.manager,
            delivery=delivery,
            on_broken_characters=broken_edits_of(self.watcher),
        )


def broken_edits_of(watcher: CharacterWatcher) -> Callable[[BrokenCharactersHook], None]:
    """Subscribes a hook to ``watcher``'s broken edits, told in words for the owner."""

    def subscribe(hook: BrokenCharactersHook) -> None:
        async def tell(error: CharacterLoadError) -> None:
            await hook(broken_characters_notice(error))

        watcher.add_error_hook(tell)

    return subscribe


def manager_settings(
    settings: ConversationSettings, *, characters: CharacterLibrary | None = None
) -> ManagerSettings:
    """The manager's settings: the default character, the token budget, how long owed turns
    are resumed and a turn claim lasts, and the policy and prices of ``troupe.yaml``, whose
    character ids are checked against ``characters``."""
    budget = token_budget(settings)
    policy, prices = PolicyTree(), Prices()
    path = config_path(settings.config_file)
    if path is not None:
        ids = set(characters.ids()) if characters is not None else None
        config = load_config_file(path, character_ids=ids)
        policy = config.policy_tree()
        if config.prices is not None:
            prices = Prices(config.prices.input_per_million, config.prices.output_per_million)
    return ManagerSettings(
        default_character=settings.default_character,
        budget=budget,
        policy=policy,
        prices=prices,
        claim_lease=timedelta(seconds=settings.claim_lease),
        resume_max_age=timedelta(seconds=settings.resume_max_age),
        nudges=NudgeDefaults(
            quiet_minutes=settings.nudge_quiet_minutes,
            quiet_hours=settings.nudge_quiet_hours,
            timezone=settings.nudge_timezone,
            max_per_day=settings.nudge_max_per_day,
        ),
    )


def token_budget(settings: ConversationSettings) -> Budget:
    """The token budget of every request (and of the characters' check)."""
    try:
        return Budget(
            context_window=settings.context_window,
            max_completion_tokens=settings.max_reply_tokens,
        )
    except ValueError as error:
        raise ConfigError(f"TROUPE_CONTEXT_WINDOW / TROUPE_MAX_REPLY_TOKENS: {error}") from None


def load_for_engine(settings: ConversationSettings) -> LoadReport:
    """The good characters of the folder, and what is wrong with the rest; raises
    :class:`CharacterLoadError` when none is good (there is nothing to run), or when the
    configured default is missing and some file is broken (it may well be that one)."""
    report = read_characters(settings.characters_dir, budget=token_budget(settings))
    default = settings.default_character
    if not len(report.library) or (report.problems and default and default not in report.library):
        raise report.error()
    return report


@asynccontextmanager
async def open_engine(
    settings: Settings, *, force_fake: bool = False, reprobe_seconds: float = REPROBE_SECONDS
) -> AsyncIterator[Engine]:
    """Open the engine ``settings`` describe.

    Uses M2-her when ``MINIMAX_API_KEY`` is set (and ``force_fake`` is not), otherwise starts
    the built-in fake M2-her on a loopback port for the engine's lifetime. Character files
    are watched and reloaded while it runs; while M2-her refuses the advanced roles (or has
    not said) they are probed again every ``reprobe_seconds``. Broken character files are
    left out (and told to the moderators); none good is a :class:`CharacterLoadError`.
    """
    folder = settings.conversation.characters_dir
    loaded = load_for_engine(settings.conversation)
    characters = loaded.library
    async with AsyncExitStack() as stack:
        fake = settings.m2her.api_key is None or force_fake
        roles = RoleSupport.from_settings(settings.m2her, fake=fake)
        if not fake:
            client = M2HerClient.from_settings(settings.m2her)
            backend = f"Using MiniMax M2-her at {client.base_url}."
        else:
            server = await stack.enter_async_context(FakeM2Her())
            client = M2HerClient(
                "fake-key", base_url=server.base_url, api_style=settings.m2her.api_style
            )
            reason = "--fake given" if force_fake else "MINIMAX_API_KEY is not set"
            backend = f"Using the built-in fake M2-her ({reason}); replies are canned echoes."
        await stack.enter_async_context(client)
        storage = await open_storage(settings.storage.database_url)
        stack.push_async_callback(storage.close)
        manager = ConversationManager(
            storage=storage,
            characters=characters,
            client=client,
            settings=manager_settings(settings.conversation, characters=characters),
            roles=roles,
        )
        stack.push_async_callback(manager.aclose)
        watcher = CharacterWatcher(
            folder,
            on_reload=manager.use_characters,
            library=characters,
            problems=loaded.error() if loaded.problems else None,
            budget=token_budget(settings.conversation),
        )
        watching = asyncio.create_task(watcher.run())
        stack.push_async_callback(_cancel, watching)
        reprobing = asyncio.create_task(roles.keep_probing(client, reprobe_seconds))
        stack.push_async_callback(_cancel, reprobing)
        yield Engine(
            manager=manager,
            storage=storage,
            watcher=watcher,
            backend=backend,
            client=client,
            roles=roles,
            loaded=loaded,
        )


async def role_support(settings: Settings, *, probe: bool) -> RoleSupport:
    """Whether requests carry M2-her's advanced roles, as the settings say or, with ``probe``
    (and ``MINIMAX_ADVANCED_ROLES=auto`` and a key), as M2-her answers now."""
    roles = RoleSupport.from_settings(settings.m2her)
    if probe and roles.probing:
        async with M2HerClient.from_settings(settings.m2her) as client:
            # A probe that got no answer says so in the state it leaves.
            with contextlib.suppress(M2HerError):
                await roles.probe(client)
    return roles


def describe_configuration(
    settings: Settings, *, roles: RoleSupport | None = None
) -> dict[str, Any]:
    """``troupe config``: the effective configuration, secrets masked, as plain data;
    ``roles`` is what is known of M2-her's advanced roles (else what the settings say)."""
    roles = roles or RoleSupport.from_settings(settings.m2her)
    characters = load_for_engine(settings.conversation).library
    manager = manager_settings(settings.conversation, characters=characters)
    shown = settings.shown()
    shown["storage"]["DATABASE_URL"] = redacted(parse_url(settings.storage.database_url))
    tree = manager.policy
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
    path = config_path(settings.conversation.config_file)
    return {
        "settings": shown,
        "platforms": {
            platform.name: "on" if platform.enabled(settings) else "off (no token)"
            for platform in PLATFORMS
        },
        "m2her_advanced_roles": roles.describe(),
        "config_file": str(path) if path else "none (built-in defaults)",
        "characters": characters.ids(),
        "default_character": characters.default(manager.default_character).id,
        "budget": _plain(manager.budget),
        "prices_usd_per_million_tokens": _plain(manager.prices),
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
