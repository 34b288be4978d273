"""What a turn sends about speakers and roles: plain, stable, distinct ``name`` values, and the
advanced roles folded into ``system`` exactly while the engine's RoleSupport says so."""

from __future__ import annotations

from typing import Any

import pytest

from bot.characters.names import sanitize_name
from bot.llm.roles import ADVANCED_ROLES, RoleSupport
from tests.conversation.conftest import Engine, EngineFactory, RecordingSink, said


def messages_of(engine: Engine, index: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = engine.fake.requests[index].body["messages"]
    return messages


def names_by_text(messages: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {m["content"]: (m["role"], m["name"]) for m in messages if m["role"] != "system"}


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("✨Luna✨", "Luna"),
        ("🌙 Luna", "Luna"),
        ("Zoë 👩🏽\u200d💻", "Zoë"),
        ("Ana (she/her) 🏳️\u200d🌈", "Ana (she/her)"),
        ("李雷 ★", "李雷"),
        ("Bob™", "Bob"),
    ],
)
def test_decorations_leave_display_names(name: str, plain: str) -> None:
    assert sanitize_name(name) == plain


def test_a_name_of_emoji_alone_keeps_them_so_that_it_stays_distinct() -> None:
    assert sanitize_name("🌙") == "🌙"
    assert sanitize_name("🌙") != sanitize_name("🔥")


async def test_each_speakers_name_is_plain_distinct_and_the_same_every_turn(
    engine: Engine,
) -> None:
    await engine.manager.handle(said("first", author="luna", name="✨Luna✨"), RecordingSink())
    await engine.manager.handle(said("second", author="bo", name="Bo"), RecordingSink())
    await engine.manager.handle(said("third", author="luna", name="✨Luna✨"), RecordingSink())

    earlier, later = names_by_text(messages_of(engine, 1)), names_by_text(messages_of(engine, 2))
    assert later["first"] == earlier["first"] == ("user", "Luna")
    assert later["second"] == earlier["second"] == ("user", "Bo")
    assert later["third"] == ("user", "Luna")
    replies = {name for role, name in later.values() if role == "assistant"}
    assert replies == {"Aria"}
    # The examples speak as the person answered, under the same plain name.
    examples = [m["name"] for m in messages_of(engine, 2) if m["role"] == "sample_message_user"]
    assert examples == ["Luna"] * len(examples)
    assert examples


async def test_a_turn_folds_the_roles_exactly_while_role_support_says_so(
    make_engine: EngineFactory,
) -> None:
    roles = RoleSupport("on")
    engine = await make_engine(roles=roles)
    await engine.manager.handle(said("one"), RecordingSink())
    assert {"sample_message_user", "sample_message_ai"} <= {
        m["role"] for m in messages_of(engine, -1)
    }

    roles.fold = True  # what a probe that saw them refused does
    await engine.manager.handle(said("two"), RecordingSink())
    folded = messages_of(engine, -1)
    assert not ADVANCED_ROLES & {m["role"] for m in folded}
    assert "[Example dialogue]\nSam: " in folded[0]["content"]
    assert [(m["role"], m["name"]) for m in folded[1:]] == [
        ("user", "Sam"),
        ("assistant", "Aria"),
        ("user", "Sam"),
    ]
