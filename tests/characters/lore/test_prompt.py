"""Lore in the M2-her request: where each entry goes, with which role, within which budget,
in both forms; and the fixed part ``troupe check`` measures."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.characters.budget import Budget
from bot.characters.loader import check_paths
from bot.characters.prompt import HistoryEntry, build_prompt, fixed_tokens
from tests.characters.lore.helpers import book, character

HISTORY = [
    HistoryEntry("user", "Sam", "first"),
    HistoryEntry("assistant", "Mara", "second"),
    HistoryEntry("user", "Sam", "third"),
    HistoryEntry("assistant", "Mara", "fourth"),
    HistoryEntry("user", "Sam", "Tell me about Vance and the docks."),
]


def wire(fold: bool = False, **kwargs: object) -> list[tuple[str, str | None, str]]:
    lore = book(
        {"keys": ["Vance"], "content": "Vance smuggles rum.", "insertion_order": 2},
        {"keys": ["Vance"], "content": "{{user}} owes Vance.", "insertion_order": 1},
        {"constant": True, "position": "after_char", "content": "It rains in Port Ash."},
        {"keys": ["docks"], "position": "depth", "depth": 2, "content": "The docks reek."},
        {"keys": ["docks"], "content": "@@depth 0\n@@role assistant\n*Mara frowns.*"},
        {"keys": ["docks"], "position": "depth", "depth": 99, "role": "user", "content": "Old."},
    )
    mara = character(lore, scenario="A wet night.", rules="Stay in character.")
    prompt = build_prompt(mara, HISTORY, user_name="Sam", fold_roles=fold, **kwargs)  # type: ignore[arg-type]
    return [(m.role.value, m.name, m.content or "") for m in prompt.request.messages]


def test_persona_lore_goes_around_the_persona_and_depth_lore_into_the_history() -> None:
    assert wire() == [
        (
            "system",
            "Mara",
            "Sam owes Vance.\nVance smuggles rum.\n\nA detective.\n\nScenario: A wet night."
            "\n\nIt rains in Port Ash.\n\nStay in character.",
        ),
        ("user", None, "Old."),
        ("user", "Sam", "first"),
        ("assistant", "Mara", "second"),
        ("user", "Sam", "third"),
        ("system", None, "The docks reek."),
        ("assistant", "Mara", "fourth"),
        ("user", "Sam", "Tell me about Vance and the docks."),
        ("assistant", "Mara", "*Mara frowns.*"),
    ]


def test_the_folded_form_keeps_the_lore_where_it_was() -> None:
    lore = book(
        {"keys": ["docks"], "content": "Port Ash."},
        {"keys": ["docks"], "position": "depth", "depth": 1, "content": "Reek."},
    )
    mara = character(lore, user_persona="A sailor.", examples=[{"user": "Hi", "ai": "Hello."}])
    history = [HistoryEntry("assistant", "Mara", "Evening."), HistoryEntry("user", "Sam", "docks")]
    prompt = build_prompt(mara, history, user_name="Sam", fold_roles=True)
    messages = [(m.role.value, m.content) for m in prompt.request.messages]
    assert messages == [
        (
            "system",
            "Port Ash.\n\nA detective.\n\n[User persona: Sam]\nA sailor."
            "\n\n[Example dialogue]\nSam: Hi\nMara: Hello.",
        ),
        ("assistant", "Evening."),
        ("system", "Reek."),
        ("user", "docks"),
    ]


def test_over_the_lore_budget_the_lowest_ranked_entries_are_cut() -> None:
    lore = book(
        {"keys": ["x"], "content": "a " * 40, "priority": 1, "name": "low"},
        {"keys": ["x"], "content": "b " * 40, "priority": 9, "name": "high"},
        {"keys": ["x"], "content": "c " * 40, "insertion_order": 500, "name": "order 500"},
        {"constant": True, "content": "d " * 40, "priority": 0, "name": "constant"},
        token_budget=70,
    )
    prompt = build_prompt(character(lore), [HistoryEntry("user", "Sam", "x")], user_name="Sam")
    # Kept by rank (constant, then priority, else insertion order); sent in insertion order.
    assert [f.entry.label for f in prompt.lore.kept] == ["high", "constant", "order 500"]
    assert [f.entry.label for f in prompt.lore.cut] == ["low"]
    # The request's own lore budget cuts across books in the same order.
    small = Budget(lore_tokens=50)
    prompt = build_prompt(
        character(lore), [HistoryEntry("user", "Sam", "x")], user_name="Sam", budget=small
    )
    assert [f.entry.label for f in prompt.lore.kept] == ["constant", "order 500"]


def test_lore_never_pushes_out_the_persona_or_the_newest_message() -> None:
    lore = book({"keys": ["x"], "content": "lore " * 4000})
    tight = Budget(context_window=6000, max_completion_tokens=1000, safety_margin=100)
    history = [HistoryEntry("user", "Sam", "old " * 1500), HistoryEntry("user", "Sam", "x")]
    prompt = build_prompt(character(lore), history, user_name="Sam", budget=tight)
    assert prompt.lore.kept == ()
    assert len(prompt.lore.cut) == 1
    assert prompt.request.messages[-1].content == "x"
    assert prompt.estimated_tokens <= tight.prompt_limit()


def test_channel_books_join_the_characters_own_once() -> None:
    own = book({"keys": ["x"], "content": "Own."}, book_id="own")
    shared = book({"keys": ["x"], "content": "Shared."}, book_id="shared")
    prompt = build_prompt(
        character(own, shared),
        [HistoryEntry("user", "Sam", "x")],
        user_name="Sam",
        lorebooks=[shared, book({"keys": ["x"], "content": "Channel."}, book_id="channel")],
    )
    assert [f.text for f in prompt.lore.kept] == ["Own.", "Shared.", "Channel."]


def test_fixed_tokens_count_constant_lore(tmp_path: Path) -> None:
    plain = character()
    with_lore = character(book({"constant": True, "content": "word " * 400}))
    assert fixed_tokens(with_lore) >= fixed_tokens(plain) + 400
    # 15,000 tokens of persona pass; with 4,000 of constant lore they are over a quarter.
    persona = "word " * 12000
    lorebook = "lorebook:\n  entries:\n    - constant: true\n      content: " + "word " * 3200
    (tmp_path / "tome.yaml").write_text(f"name: Tome\ndescription: {persona}\n")
    out = io.StringIO()
    assert check_paths([tmp_path], out) == 0
    assert out.getvalue() == "ok: 1 character (tome)\n"
    (tmp_path / "tome.yaml").write_text(f"name: Tome\ndescription: {persona}\n{lorebook}\n")
    out = io.StringIO()
    assert check_paths([tmp_path], out) == 0
    assert "warning: " in out.getvalue()
    assert (
        "persona, user persona, scene, examples and constant lore come to about" in out.getvalue()
    )


@pytest.mark.parametrize("replies", [1, 2])
def test_activate_only_every_counts_the_replies_in_the_history(replies: int) -> None:
    lore = book({"constant": True, "content": "@@activate_only_every 2\nEven."})
    history = [HistoryEntry("assistant", "Mara", "hi")] * replies + [
        HistoryEntry("user", "Sam", "x")
    ]
    prompt = build_prompt(character(lore), history, user_name="Sam")
    assert bool(prompt.lore.kept) is (replies == 2)
    unknown = build_prompt(character(lore), history, user_name="Sam", history_complete=False)
    assert unknown.lore.kept


def test_check_warns_of_a_constant_entry_its_budget_never_lets_in(tmp_path: Path) -> None:
    (tmp_path / "tome.yaml").write_text(
        "name: Tome\ndescription: A book.\nlorebook:\n  token_budget: 50\n  entries:\n"
        f"    - {{name: Huge, constant: true, content: {'word ' * 200}}}\n"
        "    - {name: Small, constant: true, content: Small.}\n"
    )
    out = io.StringIO()
    assert check_paths([tmp_path], out) == 0
    assert out.getvalue() == (
        f"warning: {tmp_path}/tome.yaml: constant lore entry 'Huge' of book 'tome' "
        "(about 251 tokens) does not fit its lore budget: it is never sent\n"
        # Ranked below the one that did not fit, it is cut too (lowest-ranked first).
        f"warning: {tmp_path}/tome.yaml: constant lore entry 'Small' of book 'tome' "
        "(about 3 tokens) does not fit its lore budget: it is never sent\n"
        "ok: 1 character (tome)\n"
    )
