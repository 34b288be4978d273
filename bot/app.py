"""Wiring: environment → storage, characters, M2-her client and the conversation manager.

Everything opened here is closed on exit of :func:`open_engine`; nothing is global.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.characters.loader import CharacterLibrary, load_characters
from bot.characters.prompt import Budget
from bot.config import ConfigError, env_int
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.llm.client import M2HerClient
from bot.llm.fake import FakeM2Her
from bot.llm.types import CONTEXT_WINDOW, MAX_COMPLETION_TOKENS
from bot.storage import Storage, database_url_from_env, open_storage

DEFAULT_CHARACTERS_DIR = "characters"


@dataclass(frozen=True, slots=True)
class Engine:
    """The running engine: what adapters and the terminal need."""

    manager: ConversationManager
    storage: Storage
    characters: CharacterLibrary
    #: One line saying which M2-her this engine talks to (real or the built-in fake).
    backend: str


def characters_dir_from_env(environ: Mapping[str, str] = os.environ) -> Path:
    """``TROUPE_CHARACTERS_DIR``, default ``./characters``."""
    return Path(environ.get("TROUPE_CHARACTERS_DIR") or DEFAULT_CHARACTERS_DIR)


def manager_settings_from_env(environ: Mapping[str, str] = os.environ) -> ManagerSettings:
    """``TROUPE_DEFAULT_CHARACTER``, and the token budget from ``TROUPE_CONTEXT_WINDOW`` and
    ``TROUPE_MAX_REPLY_TOKENS`` (M2-her's 65,536 and 2,048 by default)."""
    window = env_int(environ, "TROUPE_CONTEXT_WINDOW", CONTEXT_WINDOW, minimum=1)
    reply = env_int(environ, "TROUPE_MAX_REPLY_TOKENS", MAX_COMPLETION_TOKENS, minimum=1)
    try:
        budget = Budget(context_window=window, max_completion_tokens=reply)
    except ValueError as error:
        raise ConfigError(f"TROUPE_CONTEXT_WINDOW / TROUPE_MAX_REPLY_TOKENS: {error}") from None
    return ManagerSettings(
        default_character=environ.get("TROUPE_DEFAULT_CHARACTER") or None, budget=budget
    )


@asynccontextmanager
async def open_engine(
    *, force_fake: bool = False, environ: Mapping[str, str] = os.environ
) -> AsyncIterator[Engine]:
    """Open the engine from the environment.

    Uses M2-her when ``MINIMAX_API_KEY`` is set (and ``force_fake`` is not), otherwise starts
    the built-in fake M2-her on a loopback port for the engine's lifetime.
    """
    characters = load_characters(characters_dir_from_env(environ))
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
        settings = manager_settings_from_env(environ)
        manager = ConversationManager(
            storage=storage, characters=characters, client=client, settings=settings
        )
        yield Engine(manager=manager, storage=storage, characters=characters, backend=backend)
