"""The director: who speaks next in a scene of several characters, and why.

Pure logic over the scene and its recent lines; time comes in as an argument and chance from
an injectable RNG, so that every rule can be tested exactly (``docs/design.md``, "Scenes and
the director").

* A human spoke: the character addressed (reply to its message, its name or a nickname) answers;
  otherwise the best :class:`Score` — relevance (its names and its own lorebook keys in the
  recent lines), how long it
  has been quiet, and its ``talkativeness``.
* A character spoke: another one may answer it, while the human message's budget of character
  turns lasts. The one it addressed by name answers; otherwise the best-scored other character,
  with a chance equal to its talkativeness. Never the one that just spoke.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.characters.lore.keys import ScanText
from bot.characters.schema import Character
from bot.conversation.incoming import ConversationKey
from bot.conversation.trigger import addressed_character, alias_pattern

__all__ = [
    "Director",
    "DirectorWeights",
    "Keywords",
    "Pick",
    "SceneLine",
    "Score",
    "TypingNotes",
    "name_keywords",
    "says_lore_of",
]

#: The words that make a line relevant to a character (the default is the character's name and
#: nicknames; the keys of its own lorebook entries count too, see :func:`says_lore_of`).
Keywords = Callable[[Character], Sequence[str]]


def name_keywords(character: Character) -> Sequence[str]:
    """A character's name and nicknames: the default :data:`Keywords`."""
    return (character.name, *character.nicknames)


def says_lore_of(character: Character, text: str) -> bool:
    """Whether ``text`` says a key of an entry in one of ``character``'s own lorebooks (its
    world: places, people, things it knows about). Searched through each book's key index,
    so a big book costs a few lookups, not a search per key."""
    if not character.lorebooks:
        return False
    scan = ScanText(text)
    return any(next(book.all_keys.matches(scan), None) is not None for book in character.lorebooks)


@dataclass(frozen=True, slots=True)
class SceneLine:
    """One recent line of the scene as the director sees it."""

    #: The character that said it; ``None`` for a human (or another bot).
    character_id: str | None
    text: str
    at: datetime
    #: Its stored id (later lines have larger ids).
    message_id: int = 0


@dataclass(frozen=True, slots=True)
class DirectorWeights:
    """How much each part of a :class:`Score` counts; each part is between 0 and 1."""

    relevance: float = 0.5
    quiet: float = 0.25
    talkativeness: float = 0.25
    #: Seconds of silence after which a character counts as fully quiet.
    quiet_seconds: float = 300.0
    #: How many recent lines relevance looks at; each older line counts half the one after it.
    recent_lines: int = 8


@dataclass(frozen=True, slots=True)
class Score:
    """Why a character would speak: its parts and their weighted total."""

    character: Character
    relevance: float
    quiet: float
    talkativeness: float
    total: float

    def explain(self) -> str:
        """The score in words, e.g. for ``troupe preview --scene``."""
        return (
            f"{self.character.name}: {self.total:.2f} (relevance {self.relevance:.2f}, "
            f"quiet {self.quiet:.2f}, talkativeness {self.talkativeness:.2f})"
        )


@dataclass(frozen=True, slots=True)
class Pick:
    """Who speaks, why, and the scores the choice was made from (empty when addressed)."""

    character: Character
    reason: str
    scores: tuple[Score, ...] = ()

    def explain(self) -> list[str]:
        """Who speaks and why, then every score (best first), one line each."""
        tied = len(self.scores) > 1 and self.scores[0].total == self.scores[1].total
        tie = " (a tie, broken at random)" if tied else ""
        return [
            f"{self.character.name} answers: {self.reason}{tie}.",
            *(f"  {score.explain()}" for score in self.scores),
        ]


@dataclass
class Director:
    """Chooses speakers in scenes; stateless apart from its RNG."""

    rng: random.Random = field(default_factory=random.Random)
    keywords: Keywords = name_keywords
    weights: DirectorWeights = field(default_factory=DirectorWeights)

    def scores(
        self, candidates: Sequence[Character], lines: Sequence[SceneLine], now: datetime
    ) -> list[Score]:
        """Each candidate's score over ``lines`` (oldest first) at ``now``, best first
        (ties in the scene's order)."""
        weights = self.weights
        recent = list(reversed(lines[-weights.recent_lines :])) if weights.recent_lines else []
        scored = []
        for character in candidates:
            relevance = min(1.0, self._relevance(character, recent))
            quiet = self._quiet(character, lines, now)
            talk = character.talkativeness
            total = (
                weights.relevance * relevance + weights.quiet * quiet + weights.talkativeness * talk
            )
            scored.append(Score(character, relevance, quiet, talk, round(total, 6)))
        return sorted(scored, key=lambda score: -score.total)

    def first(
        self,
        scene: Sequence[Character],
        lines: Sequence[SceneLine],
        now: datetime,
        *,
        replied_to: Character | None = None,
    ) -> Pick:
        """Who answers a human's message, the newest of ``lines``; ``replied_to`` is the
        character whose message it replies to, if any."""
        if replied_to is not None:
            return Pick(replied_to, "replies to its message")
        text = lines[-1].text if lines else ""
        named = addressed_character(text, scene)
        if named is not None:
            return Pick(named, "addressed by name")
        return self._best(self.scores(scene, lines, now), "the best score")

    def next(
        self, scene: Sequence[Character], lines: Sequence[SceneLine], now: datetime
    ) -> Pick | None:
        """Who answers the character that said the newest of ``lines``, if anyone does.

        Never that character itself. One it names answers; otherwise the best-scored other
        one, with a chance equal to its talkativeness.
        """
        if not lines or lines[-1].character_id is None:
            return None
        others = [c for c in scene if c.id != lines[-1].character_id]
        if not others:
            return None
        named = addressed_character(lines[-1].text, others)
        if named is not None:
            return Pick(named, "addressed by name")
        pick = self._best(self.scores(others, lines, now), "the best score")
        if self.rng.random() >= pick.character.talkativeness:
            return None
        return pick

    def _best(self, scores: list[Score], reason: str) -> Pick:
        top = [score for score in scores if score.total == scores[0].total]
        chosen = top[0] if len(top) == 1 else self.rng.choice(top)
        return Pick(chosen.character, reason, tuple(scores))

    def _relevance(self, character: Character, newest_first: Sequence[SceneLine]) -> float:
        patterns = [alias_pattern(word) for word in self.keywords(character) if word.strip()]
        relevance = 0.0
        for age, line in enumerate(newest_first):
            # What a character says about itself does not make it more relevant.
            if line.character_id == character.id:
                continue
            if any(pattern.search(line.text) for pattern in patterns) or says_lore_of(
                character, line.text
            ):
                relevance += 0.5**age
        return relevance

    def _quiet(self, character: Character, lines: Sequence[SceneLine], now: datetime) -> float:
        spoke = [line.at for line in lines if line.character_id == character.id]
        if not spoke:
            return 1.0
        silent = max(0.0, (now - max(spoke)).total_seconds())
        return min(1.0, silent / self.weights.quiet_seconds)


#: How long a typing indicator lasts (Discord shows one for 10 seconds).
TYPING = timedelta(seconds=10)


class TypingNotes:
    """When a human last started typing in each conversation, for as long as it matters."""

    #: Past this many conversations, notes older than :data:`TYPING` are swept out.
    SWEEP_AT = 1024

    def __init__(self) -> None:
        self._typed: dict[ConversationKey, datetime] = {}

    def note(self, key: ConversationKey, at: datetime) -> None:
        """A human started typing in ``key`` at ``at``."""
        self._typed[key] = at
        if len(self._typed) > self.SWEEP_AT:
            self._typed = {k: t for k, t in self._typed.items() if at - t < TYPING}

    def typing_since(self, key: ConversationKey, since: datetime, now: datetime) -> bool:
        """Whether a human started typing in ``key`` after ``since`` and may still be."""
        typed = self._typed.get(key)
        return typed is not None and typed > since and now - typed < TYPING
