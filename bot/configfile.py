"""``troupe.yaml``: the owner's settings besides secrets, validated like character files.

Secrets (tokens, the API key, passwords) stay in the environment; the file holds policy,
layered global → platform → server → channel (chat) → character::

    trigger: {follow_up_seconds: 60}
    limits: {user_daily_tokens: 200000}
    platforms:
      discord:
        servers:
          "123456789012345678":
            moderation: {on_blocked_input: silent, moderators_chat: "234567890123456789"}
            channels:
              "345678901234567890": {trigger: {answer_all: true}, characters: [bram, aria]}
    characters:
      mara: {limits: {in_character_notice: true}}

Every problem is reported at once with file, line and field, e.g.
``troupe.yaml:7: platforms.discord.servers.123.trigger.anser_all: unknown field; did you
mean 'answer_all'?``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bot.conversation.moderation import ModerationAction
from bot.conversation.policy import ChatPolicy, Overrides, PolicyTree, apply_overrides
from bot.platforms.registry import policy_platforms
from bot.yamlcheck import FileProblem, validate_yaml_file

DEFAULT_CONFIG_FILE = "troupe.yaml"


def _known_platform(name: str) -> str:
    known = [repr(platform) for platform in policy_platforms()]
    if name not in policy_platforms():
        raise ValueError(f"input should be {', '.join(known[:-1])} or {known[-1]}, got {name!r}")
    return name


#: A platform of the registry, or the terminal.
Platform = Annotated[str, AfterValidator(_known_platform)]


class ConfigFileError(Exception):
    """``troupe.yaml`` is broken; ``problems`` lists every problem."""

    def __init__(self, problems: list[FileProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class TriggerOverrides(_Strict):
    """When characters speak up (see the trigger policy)."""

    answer_all: bool | None = None
    """Answer every message in the channel, not only those addressed to a character."""
    follow_up_seconds: float | None = Field(default=None, ge=0)
    """How long someone who just talked to a character may go on without addressing it."""
    random_chance: float | None = Field(default=None, ge=0, le=1)
    """Chance of joining in unaddressed just after being addressed (0 = never)."""
    random_half_life_seconds: float | None = Field(default=None, gt=0)
    """The chance halves every this many seconds since a character was last addressed."""
    allow_bots: bool | None = None
    """Answer other bots and webhooks."""
    max_consecutive_bot_turns: int | None = Field(default=None, ge=0)
    """With allow_bots: bot messages answered in a row before a human must speak."""
    scene_turns: int | None = Field(default=None, ge=1, le=10)
    """In a scene: character turns one human message may lead to, the first answer included."""
    scene_pause_seconds: float | None = Field(default=None, ge=0, le=60)
    """In a scene: seconds before a character answers another (a human may cut in)."""


class ModerationOverrides(_Strict):
    """What happens when M2-her flags a message."""

    on_blocked_input: ModerationAction | None = None
    """in_character, notice or silent."""
    on_blocked_output: ModerationAction | None = None
    """in_character, notice or silent."""
    cooldown_after: int | None = Field(default=None, ge=0)
    """Flags within the window after which a user is not answered (0 = never)."""
    cooldown_minutes: float | None = Field(default=None, gt=0)
    """The window over which flags count."""
    moderators_chat: str | None = None
    """Channel or chat id where moderation events are reported."""


class LimitsOverrides(_Strict):
    """Limits that protect the owner's wallet and the community (0 = off)."""

    user_messages_per_minute: int | None = Field(default=None, ge=0)
    user_daily_tokens: int | None = Field(default=None, ge=0)
    chat_daily_tokens: int | None = Field(default=None, ge=0)
    server_daily_tokens: int | None = Field(default=None, ge=0)
    in_character_notice: bool | None = None
    """Say the limit notice in character instead of plainly."""


class MemoryOverrides(_Strict):
    """What the characters remember beyond the conversation's window."""

    enabled: bool | None = None
    """Summarise what falls out of the window and keep facts users state (default true)."""
    shared: bool | None = None
    """Share what a user told a character with their other chats with it that share too."""


class Layer(_Strict):
    """Settings that apply at one level of the hierarchy."""

    trigger: TriggerOverrides | None = None
    moderation: ModerationOverrides | None = None
    limits: LimitsOverrides | None = None
    memory: MemoryOverrides | None = None

    def overrides(self) -> Overrides:
        """The fields this layer sets, by section."""
        sections = {
            "trigger": self.trigger,
            "moderation": self.moderation,
            "limits": self.limits,
            "memory": self.memory,
        }
        return {
            name: values
            for name, section in sections.items()
            if section is not None and (values := section.model_dump(exclude_none=True))
        }


class ChatLayer(Layer):
    """One channel, group or chat (by its platform id)."""

    characters: list[str] | None = None
    """The characters a new conversation here starts with, the main one first."""


class ServerLayer(Layer):
    """One Discord server or Telegram group (by its platform id)."""

    channels: dict[str, ChatLayer] = {}


class PlatformLayer(Layer):
    """Everything on one platform."""

    servers: dict[str, ServerLayer] = {}
    chats: dict[str, ChatLayer] = {}
    """Chats outside any server (Telegram private chats, Discord DMs) and channels by id."""


class PricesFile(_Strict):
    """What M2-her costs, in US dollars per million tokens (for /usage and budgets' notices)."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


class TroupeFile(Layer):
    """The whole ``troupe.yaml``; its top-level sections are the global layer."""

    prices: PricesFile | None = None
    platforms: dict[Platform, PlatformLayer] = {}
    characters: dict[str, Layer] = {}
    """Per character id: settings that follow the character wherever it speaks."""

    def policy_tree(self) -> PolicyTree:
        """The file as a :class:`PolicyTree` over the built-in defaults."""
        platforms: dict[str, Overrides] = {}
        servers: dict[tuple[str, str], Overrides] = {}
        chats: dict[tuple[str, str], Overrides] = {}
        chat_characters: dict[tuple[str, str], tuple[str, ...]] = {}

        def add_chat(platform: str, chat_id: str, layer: ChatLayer) -> None:
            chats[(platform, chat_id)] = layer.overrides()
            if layer.characters:
                chat_characters[(platform, chat_id)] = tuple(layer.characters)

        for platform, platform_layer in self.platforms.items():
            platforms[platform] = platform_layer.overrides()
            for server_id, server in platform_layer.servers.items():
                servers[(platform, server_id)] = server.overrides()
                for chat_id, chat in server.channels.items():
                    add_chat(platform, chat_id, chat)
            for chat_id, chat in platform_layer.chats.items():
                add_chat(platform, chat_id, chat)
        return PolicyTree(
            base=apply_overrides(ChatPolicy(), self.overrides()),
            platforms=platforms,
            servers=servers,
            chats=chats,
            characters={cid: layer.overrides() for cid, layer in self.characters.items()},
            chat_characters=chat_characters,
        )


def config_path(named: Path | None) -> Path | None:
    """``named`` (``TROUPE_CONFIG``), else ``./troupe.yaml`` if it exists, else no file."""
    if named is not None:
        return named
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_config_file(path: Path, *, character_ids: set[str] | None = None) -> TroupeFile:
    """Load and validate ``path``; :class:`ConfigFileError` lists every problem.

    With ``character_ids``, characters the file names must exist.
    """
    config, document, problems = validate_yaml_file(
        path, TroupeFile, expected="a mapping of settings (trigger:, platforms:, …)"
    )
    if config is not None and document is not None and character_ids is not None:
        for loc, named in _named_characters(config):
            if named not in character_ids:
                where = ".".join(str(part) for part in loc)
                message = f"no character {named!r} (known: {', '.join(sorted(character_ids))})"
                problems.append(FileProblem(path, document.line_of(loc), where, message))
    if problems or config is None:
        raise ConfigFileError(problems)
    return config


def _named_characters(config: TroupeFile) -> list[tuple[tuple[Any, ...], str]]:
    named: list[tuple[tuple[Any, ...], str]] = [
        (("characters", cid), cid) for cid in config.characters
    ]
    for platform, layer in config.platforms.items():
        chats: list[tuple[tuple[Any, ...], ChatLayer]] = [
            (("platforms", platform, "chats", cid), c) for cid, c in layer.chats.items()
        ]
        for server_id, server in layer.servers.items():
            base = ("platforms", platform, "servers", server_id, "channels")
            chats += [((*base, cid), c) for cid, c in server.channels.items()]
        for loc, chat in chats:
            for index, cid in enumerate(chat.characters or []):
                named.append(((*loc, "characters", index), cid))
    return named
