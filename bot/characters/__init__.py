"""Characters: YAML files, their validation, and the M2-her requests built from them.

* :mod:`bot.characters.schema`: :class:`Character`, the fields of a character file;
* :mod:`bot.characters.loader` and :mod:`bot.characters.library`: loading and checking files
  into a :class:`CharacterLibrary` (by id or name, with "did you mean" hints);
* :mod:`bot.characters.watch`: :class:`CharacterWatcher`, live reload of a folder;
* :mod:`bot.characters.prompt` and :mod:`bot.characters.budget`: the request a character and
  a history make (:func:`build_prompt`), kept inside the token :class:`Budget`;
* :mod:`bot.characters.fold`: :func:`fold_advanced_roles`, the same request for an M2-her that
  refuses its advanced roles;
* :mod:`bot.characters.templates` and :mod:`bot.characters.names`: ``{{char}}`` / ``{{user}}``
  and the other macros, and the names M2-her accepts;
* :mod:`bot.characters.lore`: lorebooks (a character's own, a card's, shared world books): which
  entries fire in a turn and where they go in the request;
* :mod:`bot.characters.cards`: SillyTavern character cards in (``troupe import-card``, cards
  in the folder) and out (``troupe export-card``).

Below it is only :mod:`bot.llm` (the request types and the token estimate), besides the
shared :mod:`bot.errors` and YAML helpers.
"""

from bot.characters.budget import Budget, PromptTooLong
from bot.characters.fold import fold_advanced_roles
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
from bot.characters.watch import CharacterWatcher, broken_characters_notice

__all__ = [
    "Budget",
    "Character",
    "CharacterLibrary",
    "CharacterLoadError",
    "CharacterProblem",
    "CharacterWatcher",
    "ExampleExchange",
    "Generation",
    "HistoryEntry",
    "Prompt",
    "PromptTooLong",
    "Scene",
    "TokenEstimator",
    "UnknownCharacter",
    "broken_characters_notice",
    "build_prompt",
    "character_json_schema",
    "check_paths",
    "fold_advanced_roles",
    "load_character",
    "load_characters",
    "preview_body",
    "render",
    "sanitize_name",
]
