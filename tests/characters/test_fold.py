"""The folded form: M2-her's advanced roles written into the system message, as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.characters import (
    Character,
    HistoryEntry,
    TokenEstimator,
    build_prompt,
    fold_advanced_roles,
    load_characters,
    preview_body,
)
from bot.llm.roles import ADVANCED_ROLES
from bot.llm.types import ChatMessage, Role

CHARACTERS = Path(__file__).parents[2] / "characters"


@pytest.fixture(scope="module")
def examples() -> dict[str, Character]:
    return {c.id: c for c in load_characters(CHARACTERS)}


def test_every_advanced_role_lands_in_the_system_message_in_the_documented_layout() -> None:
    messages = [
        ChatMessage(Role.SYSTEM, "Aria keeps the archive.\n", "Aria"),
        ChatMessage(Role.USER_SYSTEM, "A moth expert, soaked from the rain.", "Sam"),
        ChatMessage(Role.GROUP, "A small tavern at the edge of town.", "The Lantern"),
        ChatMessage(Role.SAMPLE_MESSAGE_USER, "Is it always this quiet?", "Sam"),
        ChatMessage(Role.SAMPLE_MESSAGE_AI, "Only until the fishermen come in.", "Aria"),
        ChatMessage(Role.SAMPLE_MESSAGE_USER, "And then?", "Sam"),
        ChatMessage(Role.SAMPLE_MESSAGE_AI, "Then it sings.", "Aria"),
        ChatMessage(Role.USER, "Evening!", "Sam"),
        ChatMessage(Role.ASSISTANT, "Evening, Sam.", "Aria"),
    ]
    assert fold_advanced_roles(messages) == [
        ChatMessage(
            Role.SYSTEM,
            "Aria keeps the archive.\n\n"
            "[User persona: Sam]\nA moth expert, soaked from the rain.\n\n"
            "[Scene: The Lantern]\nA small tavern at the edge of town.\n\n"
            "[Example dialogue]\n"
            "Sam: Is it always this quiet?\n"
            "Aria: Only until the fishermen come in.\n"
            "Sam: And then?\n"
            "Aria: Then it sings.",
            "Aria",
        ),
        ChatMessage(Role.USER, "Evening!", "Sam"),
        ChatMessage(Role.ASSISTANT, "Evening, Sam.", "Aria"),
    ]


def test_a_request_without_advanced_roles_is_unchanged() -> None:
    messages = [ChatMessage(Role.SYSTEM, "Be brief.", "Bot"), ChatMessage(Role.USER, "Hi", "Sam")]
    assert fold_advanced_roles(messages) == messages


def test_a_scene_sent_by_name_alone_is_a_heading_and_unnamed_parts_say_who_they_are() -> None:
    messages = [
        ChatMessage(Role.GROUP, "#general", "#general"),
        ChatMessage(Role.USER_SYSTEM, "A wanderer."),
        ChatMessage(Role.SAMPLE_MESSAGE_USER, "Hello?"),
        ChatMessage(Role.SAMPLE_MESSAGE_AI, "Hello."),
        ChatMessage(Role.USER, "Hi", "Sam"),
    ]
    # No system message: one is made, unnamed, in front.
    assert fold_advanced_roles(messages) == [
        ChatMessage(
            Role.SYSTEM,
            "[Scene: #general]\n\n[User persona]\nA wanderer.\n\n"
            "[Example dialogue]\nUser: Hello?\nCharacter: Hello.",
        ),
        ChatMessage(Role.USER, "Hi", "Sam"),
    ]


def test_build_prompt_folds_the_character_part_and_keeps_the_history(
    examples: dict[str, Character],
) -> None:
    history = [HistoryEntry("user", "Sam", "Hello?"), HistoryEntry("assistant", "x", "Hi, Sam.")]
    advanced = build_prompt(examples["bram"], history, user_name="Sam", user_persona="A bard.")
    folded = build_prompt(
        examples["bram"], history, user_name="Sam", user_persona="A bard.", fold_roles=True
    )
    messages = folded.request.messages
    assert not ADVANCED_ROLES & {m.role for m in messages}
    assert list(messages) == fold_advanced_roles(advanced.request.messages)
    assert [(m.role, m.name) for m in messages] == [
        (Role.SYSTEM, "Bram Oakbarrel"),
        (Role.USER, "Sam"),
        (Role.ASSISTANT, "Bram Oakbarrel"),
    ]
    system = messages[0].content or ""
    assert "[User persona: Sam]\nA bard." in system
    assert f"[Scene: {examples['bram'].scene.name}]" in system  # type: ignore[union-attr]
    assert "[Example dialogue]\nSam: " in system
    # The budget counts the form that is sent.
    assert folded.estimated_tokens == TokenEstimator().estimate(list(messages))


def test_preview_shows_the_folded_form_when_asked(examples: dict[str, Character]) -> None:
    body = preview_body(examples["mara"], user="Jo", message="Hi.", fold_roles=True)
    history = [HistoryEntry("user", "Jo", "Hi.")]
    expected = build_prompt(examples["mara"], history, user_name="Jo", fold_roles=True)
    assert body == expected.request.to_wire(stream=True)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
