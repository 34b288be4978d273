"""The director's rules on their own: who answers a human, who answers a character, and why."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from bot.characters.lore.book import Lorebook
from bot.characters.schema import Character
from bot.conversation.director import (
    TYPING,
    Director,
    DirectorWeights,
    SceneLine,
    TypingNotes,
    name_keywords,
)
from bot.conversation.incoming import ConversationKey
from tests.characters.lore.helpers import book

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class FixedChance(random.Random):
    """An RNG whose ``random()`` is always ``value`` (ties still go by its seed)."""

    def __init__(self, value: float, seed: int = 1) -> None:
        super().__init__(seed)
        self.value = value

    def random(self) -> float:
        return self.value


def character(cid: str, name: str, *nicknames: str, talkativeness: float = 0.5) -> Character:
    return Character(
        id=cid,
        name=name,
        nicknames=list(nicknames),
        description="someone",
        talkativeness=talkativeness,
    )


def character_with_books(cid: str, name: str, *books: Lorebook) -> Character:
    made = character(cid, name)
    made.attach_lorebooks(books)
    return made


ARIA = character("aria", "Aria", "Ari")
BRAM = character("bram", "Bram Oakbarrel", "Bram", "barkeep")
MARA = character("mara", "Mara Quill", "Mara")
SCENE = [ARIA, BRAM, MARA]


def human(text: str, seconds_ago: float = 0) -> SceneLine:
    return SceneLine(None, text, NOW - timedelta(seconds=seconds_ago))


def by(who: Character, text: str, seconds_ago: float = 0) -> SceneLine:
    return SceneLine(who.id, text, NOW - timedelta(seconds=seconds_ago))


def names(scores: Sequence[object]) -> list[str]:
    return [score.character.id for score in scores]  # type: ignore[attr-defined]


def test_a_named_character_answers_a_human_whatever_the_scores() -> None:
    lines = [by(ARIA, "hello", 600), human("Mara, what do you think?")]
    pick = Director(rng=FixedChance(0.9)).first(SCENE, lines, NOW)
    assert (pick.character, pick.reason, pick.scores) == (MARA, "addressed by name", ())


def test_a_reply_to_a_characters_message_goes_to_it() -> None:
    pick = Director().first(SCENE, [human("Mara, sure?")], NOW, replied_to=BRAM)
    assert (pick.character, pick.reason) == (BRAM, "replies to its message")


def test_relevance_counts_keywords_in_recent_lines_newest_most() -> None:
    lines = [
        human("where is the barkeep", 30),  # Bram, three lines back: 0.25
        by(ARIA, "Mara knows", 20),  # Mara, two back: 0.5
        human("anyone?", 10),
        human("hm", 0),
    ]
    scores = {s.character.id: s for s in Director().scores(SCENE, lines, NOW)}
    assert scores["bram"].relevance == pytest.approx(0.125)
    assert scores["mara"].relevance == pytest.approx(0.25)
    assert scores["aria"].relevance == 0


def test_what_a_character_says_about_itself_does_not_count() -> None:
    scores = Director().scores([ARIA], [by(ARIA, "I am Aria")], NOW)
    assert scores[0].relevance == 0


def test_only_the_recent_lines_count() -> None:
    lines = [human("Mara!", 100), *[human("...", 99 - n) for n in range(8)]]
    director = Director(weights=DirectorWeights(recent_lines=8))
    assert director.scores([MARA], lines, NOW)[0].relevance == 0
    wider = Director(weights=DirectorWeights(recent_lines=9))
    assert wider.scores([MARA], lines, NOW)[0].relevance == pytest.approx(0.5**8)


def test_quiet_grows_with_the_time_since_it_last_spoke() -> None:
    weights = DirectorWeights(quiet_seconds=300)
    lines = [by(ARIA, "one", 150), by(BRAM, "two", 30), by(ARIA, "three", 60)]
    scores = {s.character.id: s for s in Director(weights=weights).scores(SCENE, lines, NOW)}
    assert scores["aria"].quiet == pytest.approx(0.2)  # her newest line counts
    assert scores["bram"].quiet == pytest.approx(0.1)
    assert scores["mara"].quiet == 1.0  # never spoke: fully quiet
    later = NOW + timedelta(seconds=600)
    assert Director(weights=weights).scores([BRAM], lines, later)[0].quiet == 1.0


def test_the_total_weighs_relevance_quiet_and_talkativeness() -> None:
    chatty = character("pip", "Pip", talkativeness=0.9)
    weights = DirectorWeights(relevance=0.5, quiet=0.25, talkativeness=0.25, quiet_seconds=100)
    lines = [by(chatty, "hi", 50), human("Pip?")]
    [score] = Director(weights=weights).scores([chatty], lines, NOW)
    assert score.total == pytest.approx(0.5 * 1 + 0.25 * 0.5 + 0.25 * 0.9)
    assert score.explain() == "Pip: 0.85 (relevance 1.00, quiet 0.50, talkativeness 0.90)"


def test_unaddressed_the_best_score_answers_and_talkativeness_tips_it() -> None:
    shy = character("shy", "Shy", talkativeness=0.1)
    bold = character("bold", "Bold", talkativeness=0.9)
    pick = Director().first([shy, bold], [human("evening, all")], NOW)
    assert (pick.character, pick.reason) == (bold, "the best score")
    assert names(pick.scores) == ["bold", "shy"]


def test_ties_are_broken_by_the_injected_rng() -> None:
    lines = [human("evening, all")]
    chosen = {
        Director(rng=random.Random(seed)).first(SCENE, lines, NOW).character.id
        for seed in range(30)
    }
    assert chosen == {"aria", "bram", "mara"}
    again = [Director(rng=random.Random(7)).first(SCENE, lines, NOW).character.id for _ in range(3)]
    assert len(set(again)) == 1


def test_keywords_can_be_extended_per_character() -> None:
    def lore(c: Character) -> Sequence[str]:
        return [*name_keywords(c), *(["ale", "cellar"] if c.id == "bram" else [])]

    lines = [by(ARIA, "hm", 100), human("is there any ale left?")]
    plain = Director().first([ARIA, BRAM], lines, NOW)
    assert plain.scores[0].character.id == "bram"  # quiet longest
    assert Director().scores([BRAM], lines, NOW)[0].relevance == 0
    assert Director(keywords=lore).scores([BRAM], lines, NOW)[0].relevance == 1.0


def test_a_character_never_answers_itself() -> None:
    lines = [human("Aria?"), by(ARIA, "I am Aria, and Aria again")]
    pick = Director(rng=FixedChance(0.0)).next(SCENE, lines, NOW)
    assert pick is not None
    assert pick.character is not ARIA
    assert "aria" not in names(pick.scores)


def test_the_character_a_line_names_answers_it() -> None:
    lines = [human("hello"), by(ARIA, "Bram will know.")]
    pick = Director(rng=FixedChance(0.99)).next(SCENE, lines, NOW)  # no chance needed
    assert pick is not None
    assert (pick.character, pick.reason) == (BRAM, "addressed by name")


def test_unnamed_the_best_other_answers_with_a_chance_of_its_talkativeness() -> None:
    lines = [human("hello", 5), by(ARIA, "Welcome!")]
    assert Director(rng=FixedChance(0.49)).next(SCENE, lines, NOW) is not None
    assert Director(rng=FixedChance(0.5)).next(SCENE, lines, NOW) is None
    silent = [ARIA, character("bram", "Bram", talkativeness=0.0)]
    assert Director(rng=FixedChance(0.0)).next(silent, lines, NOW) is None


def test_nobody_answers_a_human_line_or_in_a_scene_of_one() -> None:
    director = Director(rng=FixedChance(0.0))
    assert director.next(SCENE, [human("hi")], NOW) is None
    assert director.next([ARIA], [by(ARIA, "hi")], NOW) is None


def test_typing_counts_after_the_message_and_for_ten_seconds() -> None:
    key, other = ConversationKey("test", "a"), ConversationKey("test", "b")
    notes = TypingNotes()
    arrived = NOW
    notes.note(key, NOW - timedelta(seconds=1))  # typed before the message: that message
    assert not notes.typing_since(key, arrived, NOW)
    notes.note(key, NOW + timedelta(seconds=2))
    assert notes.typing_since(key, arrived, NOW + timedelta(seconds=3))
    assert not notes.typing_since(key, arrived, NOW + timedelta(seconds=2) + TYPING)
    assert not notes.typing_since(other, arrived, NOW + timedelta(seconds=3))


def test_typing_notes_are_swept_once_stale() -> None:
    notes = TypingNotes()
    for n in range(TypingNotes.SWEEP_AT):
        notes.note(ConversationKey("test", str(n)), NOW)
    notes.note(ConversationKey("test", "late"), NOW + TYPING)
    assert len(notes._typed) == 1


def test_a_line_that_says_a_key_of_a_characters_own_lorebook_makes_it_relevant() -> None:
    harbour = book({"keys": ["lighthouse", "Port Sable"], "content": "The old light."})
    keeper = character_with_books("keeper", "Edda", harbour)
    scene = [ARIA, keeper]
    lines = [human("who keeps the lighthouse these days?")]
    pick = Director(rng=FixedChance(0.9)).first(scene, lines, NOW)
    assert pick.character == keeper
    relevance = {score.character.id: score.relevance for score in pick.scores}
    assert relevance == {"keeper": 1.0, "aria": 0.0}
    # Without the book the same line is nobody's: the tie goes by the RNG's seed.
    plain = character("keeper", "Edda")
    unaddressed = Director(rng=FixedChance(0.9)).first([ARIA, plain], lines, NOW)
    assert {score.relevance for score in unaddressed.scores} == {0.0}
