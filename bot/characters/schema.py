"""The schema of a character file (pydantic v2).

A character is one YAML file. Its fields follow SillyTavern character cards so cards
convert cleanly (``first_mes`` is ``greeting``, ``mes_example`` is ``examples``, …, see
:data:`SILLYTAVERN_FIELDS`). Every text field may use the ``{{char}}`` / ``{{user}}``
templates; they are filled when a prompt is built, with the real user's name.

The loader validates with a context (``source_path``) so that a relative ``avatar`` is
checked beside the YAML file and ``id`` defaults to the file's name.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.characters.lore.spec import LorebookSpec
from bot.characters.names import sanitize_name
from bot.characters.templates import render as fill_templates
from bot.llm.types import MAX_COMPLETION_TOKENS

if TYPE_CHECKING:
    from bot.characters.lore.book import Lorebook

#: What a character id looks like: lower-case letters, digits, ``_`` and ``-``.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
#: Longest name accepted for a character (M2-her's ``name`` is a short display name).
MAX_NAME_LENGTH = 64

#: Character card fields (SillyTavern, and the older TavernAI / Pygmalion names) and
#: what they are called here, for "did you mean" hints.
SILLYTAVERN_FIELDS = {
    "char_name": "name",
    "char_greeting": "greeting",
    "char_persona": "personality",
    "world_scenario": "scenario",
    "first_mes": "greeting",
    "mes_example": "examples",
    "character_version": "version",
    "system_prompt": "rules",
    "post_history_instructions": "rules",
    "example_dialogue": "examples",
}

DEFAULT_BLOCKED_REPLY = "*{{char}} pauses, shakes their head, and steers the talk elsewhere.*"
DEFAULT_LIMIT_REPLY = "*{{char}} stifles a yawn.* That's enough talk for today, {{user}}. Tomorrow?"


class _Strict(BaseModel):
    """Base of every schema model: unknown keys are errors, docstrings become help text."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ExampleExchange(_Strict):
    """One example exchange: what the user says and how the character answers."""

    user: str
    """A line the user might say (sent as ``sample_message_user``)."""
    ai: str
    """How the character answers it, in its own voice (sent as ``sample_message_ai``)."""


class Generation(_Strict):
    """Sampling settings sent with every request; unset ones use M2-her's defaults."""

    temperature: float | None = Field(default=None, gt=0, le=1)
    """Randomness, 0 < t <= 1 (M2-her's default is 1.0)."""
    top_p: float | None = Field(default=None, gt=0, le=1)
    """Nucleus sampling, 0 < p <= 1 (M2-her's default is 0.95)."""
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_COMPLETION_TOKENS)
    """Longest reply in tokens, 1..2048; also reserved out of the context window."""


class Scene(_Strict):
    """The scene or group the conversation happens in (sent as the ``group`` message)."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    """Short name of the scene or group, e.g. ``The Rusty Flagon``."""
    text: str = ""
    """Optional description of the scene: place, time, mood, who is around."""


class Character(_Strict):
    """A character: who it is, how it talks, and how it is sent to M2-her."""

    id: str = Field(default="", pattern=ID_PATTERN)
    """Stable id used in commands and storage; defaults to the file name without ``.yaml``."""
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    """The character's name, as the model and the users see it."""
    nicknames: list[str] = []
    """Other names people call it; saying one in a group chat gets its attention."""
    talkativeness: float = Field(default=0.5, ge=0, le=1)
    """How readily it speaks up unaddressed in a scene of several characters, from 0 (only
    when addressed) to 1 (whenever it can); 0.5 by default (card: talkativeness)."""
    description: str = Field(min_length=1)
    """The persona: who the character is, its looks, history and knowledge (card: description)."""
    personality: str = ""
    """A short summary of its temperament (card: personality)."""
    scenario: str = ""
    """The situation the conversation starts in (card: scenario)."""
    rules: str = ""
    """Standing instructions on how to play the character (card: system_prompt)."""
    greeting: str = ""
    """The first message the character sends in a new conversation (card: first_mes)."""
    alternate_greetings: list[str] = []
    """Other first messages: a new conversation opens with one of these or ``greeting``,
    picked at random (card: alternate_greetings)."""
    group_only_greetings: list[str] = []
    """First messages for group chats only, picked at random together with the others there
    (card V3: group_only_greetings)."""
    examples: list[ExampleExchange] = []
    """Example exchanges showing the character's voice; 1-3 are best (card: mes_example)."""
    user_persona: str = ""
    """Who the user is in the story, unless the user set their own persona."""
    scene: Scene | None = None
    """The scene or group name (and optional scene text) sent as the ``group`` message."""
    generation: Generation = Generation()
    """Sampling settings: temperature, top_p, max_completion_tokens."""
    avatar: str | None = None
    """An http(s) URL, or an image file path relative to this YAML file."""
    tags: list[str] = []
    """Free-form tags, e.g. ``fantasy``, ``group``."""
    creator: str = ""
    """Who wrote the character."""
    creator_notes: str = ""
    """Notes for people using the character; never sent to the model."""
    version: str = ""
    """The character's own version, e.g. ``1.2`` (card: character_version)."""
    nsfw: bool = False
    """Whether the character is meant for adult-only spaces."""
    blocked_reply: str = DEFAULT_BLOCKED_REPLY
    """Sent in character instead of a reply that the content filter withheld."""
    limit_reply: str = DEFAULT_LIMIT_REPLY
    """Sent in character when a rate limit or daily token budget stops the conversation
    (if the owner chose in-character notices)."""
    lorebook: LorebookSpec | None = None
    """The character's own lorebook: entries whose text joins the request when their keys
    come up (see docs/characters.md, "Lorebooks")."""
    world_books: list[str] = []
    """Shared world books this character uses: file names (without extension) in the
    ``lorebooks/`` folder beside the characters."""
    card: dict[str, Any] = {}
    """What an imported character card holds beyond these fields (``character_book``,
    ``extensions``, ``assets``, …), kept as it was for ``troupe export-card``."""

    _source_path: Path | None = PrivateAttr(default=None)
    _lorebooks: tuple[Any, ...] = PrivateAttr(default=())

    @property
    def source_path(self) -> Path | None:
        """The YAML file this character was loaded from (``None`` if built in code)."""
        return self._source_path

    @property
    def lorebooks(self) -> tuple[Lorebook, ...]:
        """The books this character's requests scan: its own (``lorebook:``, then a card's
        ``character_book``), then its ``world_books``; set when the files are loaded."""
        return self._lorebooks

    def attach_lorebooks(self, books: tuple[Lorebook, ...]) -> None:
        """Set :attr:`lorebooks` (the loader does, once the books are read)."""
        self._lorebooks = books

    @property
    def greetings(self) -> list[str]:
        """Every possible first message, the main greeting first (templates not filled)."""
        return [g for g in (self.greeting, *self.alternate_greetings) if g.strip()]

    def greetings_for(self, *, group: bool) -> list[str]:
        """The first messages a new conversation picks from: in a group chat the
        ``group_only_greetings`` too."""
        extra = [g for g in self.group_only_greetings if g.strip()] if group else []
        return self.greetings + extra

    def render(self, text: str, *, user: str) -> str:
        """``text`` with ``{{char}}`` / ``{{user}}`` filled, e.g. a greeting for ``user``."""
        return fill_templates(text, char=self.name, user=sanitize_name(user))

    @property
    def avatar_file(self) -> Path | None:
        """The avatar as a local file beside the YAML, or ``None`` for a URL or no avatar."""
        if self.avatar is None or _is_url(self.avatar):
            return None
        base = self._source_path.parent if self._source_path else Path()
        return base / self.avatar

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any, info: ValidationInfo) -> Any:
        # The id defaults to the file's stem (made id-safe), else to the name.
        if isinstance(data, dict) and "id" not in data:
            source = _context_path(info)
            basis = source.stem if source else data.get("name")
            if isinstance(basis, str):
                data = {**data, "id": slugify(basis)}
        return data

    @field_validator("name")
    @classmethod
    def _one_line_name(cls, name: str) -> str:
        name = name.strip()
        if not name:
            raise ValueError("must not be blank")
        if any(unicodedata.category(ch)[0] == "C" for ch in name):
            raise ValueError("must be one line without control characters")
        return name

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # YAML reads `version: 1.2` as a float; a version is text.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("avatar")
    @classmethod
    def _avatar_exists(cls, avatar: str | None, info: ValidationInfo) -> str | None:
        if avatar is None or _is_url(avatar):
            return avatar
        if "://" in avatar:
            raise ValueError(f"only http(s) URLs or a file path are allowed, got {avatar!r}")
        source = _context_path(info)
        if source is not None:
            folder = source.parent.resolve()
            # Resolved, symlinks too: a character file must not publish any file on the host.
            file = (folder / avatar).resolve()
            if not file.is_relative_to(folder):
                raise ValueError(
                    f"must be a file inside the characters folder {folder}, got {avatar!r} "
                    f"(which is {file})"
                )
            if not file.is_file():
                raise ValueError(f"file not found: {source.parent / avatar}")
        return avatar

    @model_validator(mode="after")
    def _remember_source(self, info: ValidationInfo) -> Character:
        self._source_path = _context_path(info)
        return self


def slugify(text: str) -> str:
    """Turn a file name or display name into an id: ``"Mara Quill"`` → ``"mara-quill"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_text.lower()).strip("-_")
    return slug[:64]


def character_json_schema() -> dict[str, Any]:
    """The JSON Schema of a character file, for editors (``troupe schema``)."""
    schema = Character.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
    }


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _context_path(info: ValidationInfo) -> Path | None:
    context = info.context
    if isinstance(context, dict):
        source = context.get("source_path")
        if isinstance(source, Path):
            return source
    return None
