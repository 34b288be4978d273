"""The token budget (property-based) and the calibrated token estimator."""

from __future__ import annotations

import math

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from bot.characters import (
    Budget,
    Character,
    HistoryEntry,
    PromptTooLong,
    TokenEstimator,
    build_prompt,
    sanitize_name,
)
from bot.llm.tokens import estimate_prompt_tokens
from bot.llm.types import ChatMessage, Role

# Strategies ------------------------------------------------------------------------

# Long texts are built from repeated units so hypothesis stays fast; short ones are free-form.
long_texts = st.builds(
    lambda unit, count: unit * count,
    st.sampled_from(["word ", "漢字", "é", "a", "🙂 ", "line\n"]),
    st.integers(min_value=0, max_value=2500),
)
texts = st.one_of(st.text(max_size=40), long_texts)
names = st.text(max_size=24)
entries = st.builds(
    HistoryEntry, role=st.sampled_from(["user", "assistant"]), name=names, text=texts
)
examples = st.lists(st.fixed_dictionaries({"user": texts, "ai": texts}), max_size=3)


@st.composite
def characters(draw: st.DrawFn) -> Character:
    return Character(
        name=draw(st.sampled_from(["Pip", "Mara Quill", "Bram"])),
        description=draw(st.text(min_size=1, max_size=400)) + "{{char}} and {{user}}",
        personality=draw(texts),
        user_persona=draw(st.sampled_from(["", "{{user}} is a guest."])),
        scene=draw(st.sampled_from([None, {"name": "Garden", "text": "Dusk."}])),
        examples=draw(examples),
        generation={"max_completion_tokens": draw(st.none() | st.integers(1, 2048))},
    )


@st.composite
def budgets(draw: st.DrawFn) -> Budget:
    completion = draw(st.integers(min_value=1, max_value=2048))
    margin = draw(st.integers(min_value=0, max_value=512))
    # Windows from "barely anything fits" up to M2-her's real 65,536.
    smallest = 2048 + margin + 1
    window = draw(st.integers(smallest, smallest + 8000) | st.integers(smallest, 65_536))
    return Budget(context_window=window, max_completion_tokens=completion, safety_margin=margin)


def as_message(entry: HistoryEntry, character: Character) -> ChatMessage:
    """What one history entry should become, written out independently of the builder."""
    if entry.role == "assistant":
        return ChatMessage(Role.ASSISTANT, entry.text, name=character.name)
    return ChatMessage(Role.USER, entry.text, name=sanitize_name(entry.name))


# The budget's properties -------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    character=characters(),
    history=st.lists(entries, max_size=40),
    budget=budgets(),
    factor=st.floats(min_value=0.5, max_value=3.0),
    user=names,
)
def test_budget_properties(
    character: Character,
    history: list[HistoryEntry],
    budget: Budget,
    factor: float,
    user: str,
) -> None:
    estimator = TokenEstimator(factor=factor)
    fixed = build_prompt(character, [], user_name=user, estimator=estimator).request.messages
    limit = budget.prompt_limit(character.generation.max_completion_tokens)
    wanted = [as_message(entry, character) for entry in history]

    try:
        prompt = build_prompt(
            character, history, user_name=user, budget=budget, estimator=estimator
        )
    except PromptTooLong:
        # Refused only when the character alone, or with just the newest message, is too big.
        needed = estimator.estimate(fixed) + (estimator.estimate(wanted[-1:]))
        assert needed > limit
        event("refused: too long")
        return

    messages = prompt.request.messages
    # Never over budget, and the estimate reported is the estimate of what is sent.
    assert prompt.estimated_tokens == estimator.estimate(messages)
    assert prompt.estimated_tokens <= limit
    # Persona, user persona, scene and examples are always all there, first and intact.
    assert messages[: len(fixed)] == fixed
    # What remains is a run of whole, unaltered messages ending with the newest one.
    kept = list(messages[len(fixed) :])
    assert kept == wanted[len(wanted) - len(kept) :]
    assert prompt.history_kept == len(kept)
    assert prompt.history_dropped == len(history) - len(kept)
    if history:
        assert kept
        assert kept[-1] == wanted[-1]
    # The oldest go first, and only as many as needed: the next older one would not fit.
    event("history trimmed" if prompt.history_dropped else "history kept whole")
    if prompt.history_dropped:
        next_older = wanted[prompt.history_dropped - 1]
        assert prompt.estimated_tokens + estimator.estimate_message(next_older) > limit


@settings(max_examples=100, deadline=None)
@given(
    character=characters(),
    history=st.lists(entries, min_size=1, max_size=30),
    small=budgets(),
    extra=st.integers(min_value=0, max_value=30_000),
)
def test_a_bigger_budget_never_keeps_less(
    character: Character, history: list[HistoryEntry], small: Budget, extra: int
) -> None:
    big = Budget(
        context_window=small.context_window + extra,
        max_completion_tokens=small.max_completion_tokens,
        safety_margin=small.safety_margin,
    )
    try:
        kept_small = build_prompt(character, history, user_name="Sam", budget=small).history_kept
    except PromptTooLong:
        kept_small = 0
    try:
        kept_big = build_prompt(character, history, user_name="Sam", budget=big).history_kept
    except PromptTooLong:
        assert kept_small == 0
        return
    assert kept_big >= kept_small


def test_long_history_is_cut_to_the_real_window() -> None:
    character = Character(name="Pip", description="A sprite.")
    history = [HistoryEntry("user", "Sam", f"message {i} " + "blah " * 400) for i in range(400)]
    prompt = build_prompt(character, history, user_name="Sam")
    assert prompt.history_dropped > 0
    assert prompt.estimated_tokens <= 65_536 - 2048 - 1024
    assert prompt.request.messages[-1].content == history[-1].text
    assert prompt.request.messages[1].content == history[prompt.history_dropped].text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_completion_tokens": 0},
        {"max_completion_tokens": 4096},
        {"safety_margin": -1},
        {"context_window": 3000, "safety_margin": 1000},
    ],
)
def test_impossible_budgets_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"max_completion_tokens|safety_margin|no room"):
        Budget(**kwargs)


# The estimator -------------------------------------------------------------------


MESSAGES = [
    ChatMessage(Role.SYSTEM, "Pip is a sprite who lives in a teacup.", name="Pip"),
    ChatMessage(Role.USER, "你好，小精灵！ Do you like tea?", name="Sam"),
]


def test_uncalibrated_estimate_is_the_shared_heuristic() -> None:
    assert TokenEstimator().estimate(MESSAGES) == estimate_prompt_tokens(MESSAGES)


def test_observations_move_the_factor_smoothly_towards_the_real_ratio() -> None:
    estimator = TokenEstimator()
    base = estimate_prompt_tokens(MESSAGES)
    estimator.observe(MESSAGES, prompt_tokens=2 * base)
    assert estimator.factor == pytest.approx(1.2)  # one step of 20 % towards 2.0
    previous = estimator.factor
    for _ in range(40):
        estimator.observe(MESSAGES, prompt_tokens=2 * base)
        assert previous < estimator.factor <= 2.0
        previous = estimator.factor
    assert estimator.factor == pytest.approx(2.0, abs=1e-3)
    assert estimator.observations == 41
    assert estimator.estimate_message(MESSAGES[0]) == math.ceil(
        estimate_prompt_tokens(MESSAGES[:1]) * estimator.factor
    )


def test_an_outlier_moves_the_factor_only_a_bounded_step() -> None:
    estimator = TokenEstimator()
    base = estimate_prompt_tokens(MESSAGES)
    estimator.observe(MESSAGES, prompt_tokens=100 * base)
    assert estimator.factor == pytest.approx(1.4)  # the ratio is clamped to 3.0 first
    for _ in range(100):
        estimator.observe(MESSAGES, prompt_tokens=1)
    assert estimator.factor == pytest.approx(0.5)  # never below min_factor


def test_observations_without_usage_are_ignored() -> None:
    estimator = TokenEstimator(factor=1.5)
    estimator.observe(MESSAGES, prompt_tokens=0)
    estimator.observe([], prompt_tokens=100)
    assert estimator.factor == 1.5
    assert estimator.observations == 0


@given(
    observations=st.lists(
        st.tuples(st.integers(min_value=-5, max_value=10**7), st.integers(0, 3)), max_size=50
    )
)
def test_the_factor_always_stays_in_bounds(observations: list[tuple[int, int]]) -> None:
    estimator = TokenEstimator(min_factor=0.5, max_factor=3.0)
    for tokens, count in observations:
        estimator.observe(MESSAGES[:count], prompt_tokens=tokens)
        assert 0.5 <= estimator.factor <= 3.0


def test_calibration_changes_what_fits() -> None:
    character = Character(name="Pip", description="A sprite.")
    history = [HistoryEntry("user", "Sam", "word " * 200) for _ in range(100)]
    budget = Budget(context_window=12_000, safety_margin=0)
    plain = build_prompt(character, history, user_name="Sam", budget=budget)
    learnt = TokenEstimator()
    for _ in range(30):
        learnt.observe(plain.request.messages, prompt_tokens=2 * plain.estimated_tokens)
    calibrated = build_prompt(character, history, user_name="Sam", budget=budget, estimator=learnt)
    assert calibrated.history_kept < plain.history_kept
    assert calibrated.estimated_tokens <= budget.prompt_limit()


@pytest.mark.parametrize(
    "kwargs",
    [{"min_factor": 0}, {"min_factor": 2, "max_factor": 1}, {"smoothing": 0}, {"smoothing": 1.5}],
)
def test_estimator_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"factor|smoothing"):
        TokenEstimator(**kwargs)
