"""Characters: YAML files, their validation, and the M2-her requests built from them."""

from bot.characters.budget import Budget, PromptTooLong
from bot.characters.library import CharacterLibrary, UnknownCharacter
from bot.characters.loader import (
    CharacterLoadError,
    CharacterProblem,
    check_paths,
    load_character,
    load_characters,
)
from bot.characters.names import sanitize_name
from bot.characters.prompt import HistoryEntry, Prompt, build_prompt, preview_body
from bot.characters.schema import (
    Character,
    ExampleExchange,
    Generation,
    Scene,
    character_json_schema,
)
from bot.characters.templates import render
from bot.characters.tokens import TokenEstimator

__all__ = [
    "Budget",
    "Character",
    "CharacterLibrary",
    "CharacterLoadError",
    "CharacterProblem",
    "ExampleExchange",
    "Generation",
    "HistoryEntry",
    "Prompt",
    "PromptTooLong",
    "Scene",
    "TokenEstimator",
    "UnknownCharacter",
    "build_prompt",
    "character_json_schema",
    "check_paths",
    "load_character",
    "load_characters",
    "preview_body",
    "render",
    "sanitize_name",
]
