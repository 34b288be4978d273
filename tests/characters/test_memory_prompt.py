"""The memory in the prompt: where it goes, that the budget counts it, when it is left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.characters import Budget, Character, HistoryEntry, build_prompt, load_characters
from bot.characters.prompt import MEMORY_NAME
from bot.llm.tokens import estimate_prompt_tokens
from bot.llm.types import Role

CHARACTERS = Path(__file__).parents[2] / "characters"
MEMORY = "Sam came ashore in a storm.\n\nWhat Mara knows about the people here:\n- Sam: is a nurse"


@pytest.fixture(scope="module")
def mara() -> Character:
    return next(c for c in load_characters(CHARACTERS) if c.id == "mara")


def _history(n: int) -> list[HistoryEntry]:
    return [
        HistoryEntry("user" if i % 2 else "assistant", "Sam", f"line {i} " * 20) for i in range(n)
    ]


def test_the_memory_follows_the_scene_and_precedes_the_examples_and_history(
    mara: Character,
) -> None:
    plain = build_prompt(mara, _history(4), user_name="Sam")
    prompt = build_prompt(mara, _history(4), user_name="Sam", memory=MEMORY)
    roles = [m.role for m in prompt.request.messages]
    at = next(i for i, m in enumerate(prompt.request.messages) if m.name == MEMORY_NAME)
    assert roles[at] is Role.GROUP
    assert prompt.request.messages[at].content == MEMORY
    assert roles[at - 1] is Role.GROUP  # Mara's scene
    assert set(roles[:at]) <= {Role.SYSTEM, Role.USER_SYSTEM, Role.GROUP}
    assert list(prompt.request.messages[:at]) + list(prompt.request.messages[at + 1 :]) == list(
        plain.request.messages
    )
    assert prompt.memory_tokens == estimate_prompt_tokens(prompt.request.messages) - (
        estimate_prompt_tokens(plain.request.messages)
    )
    assert prompt.estimated_tokens == estimate_prompt_tokens(prompt.request.messages)


def test_the_memory_takes_its_room_from_the_history(mara: Character) -> None:
    history = _history(400)
    tight = Budget(context_window=12_000, max_completion_tokens=1000)
    plain = build_prompt(mara, history, user_name="Sam", budget=tight)
    prompt = build_prompt(mara, history, user_name="Sam", budget=tight, memory=MEMORY)
    assert plain.history_dropped > 0
    assert prompt.memory_tokens > 0
    assert prompt.history_kept < plain.history_kept
    assert prompt.estimated_tokens <= tight.prompt_limit(mara.generation.max_completion_tokens)


def test_a_memory_that_does_not_fit_is_left_out(mara: Character) -> None:
    tight = Budget(context_window=6_000, max_completion_tokens=1000)
    huge = "Long ago. " * 5_000
    prompt = build_prompt(mara, _history(3), user_name="Sam", budget=tight, memory=huge)
    assert prompt.memory_tokens == 0
    assert all(m.name != MEMORY_NAME for m in prompt.request.messages)
    assert prompt.history_kept >= 1
    # The character's own part is never what gives way.
    assert prompt.request.messages[0].role is Role.SYSTEM


def test_the_folded_form_carries_the_memory_in_the_system_message(mara: Character) -> None:
    prompt = build_prompt(mara, _history(2), user_name="Sam", memory=MEMORY, fold_roles=True)
    system = prompt.request.messages[0].content or ""
    assert f"[Scene: {MEMORY_NAME}]\n{MEMORY}" in system
    assert {m.role for m in prompt.request.messages} <= {Role.SYSTEM, Role.USER, Role.ASSISTANT}
