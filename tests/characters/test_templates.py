"""Template macros beyond {{char}}/{{user}}: random, pick, roll and comments."""

from __future__ import annotations

import random

from bot.characters import Character, build_prompt
from bot.characters.templates import render


def test_random_draws_from_the_given_generator() -> None:
    text = "{{random:red,green,blue}} / {{random::a, b::c}}"
    drawn = {render(text, char="A", user="B", rng=random.Random(seed)) for seed in range(40)}
    assert drawn == {f"{x} / {y}" for x in ("red", "green", "blue") for y in ("a, b", "c")}
    again = render(text, char="A", user="B", rng=random.Random(7))
    assert render(text, char="A", user="B", rng=random.Random(7)) == again


def test_random_keeps_escaped_commas() -> None:
    assert render(r"{{random:one\, two}}", char="A", user="B") == "one, two"


def test_pick_is_the_same_for_a_character_and_a_person() -> None:
    text = "Eyes: {{pick:green,grey,brown,blue}}; hair: {{pick:red,black,fair,grey}}"
    sam = render(text, char="Aria", user="Sam", rng=random.Random(1))
    assert render(text, char="Aria", user="Sam", rng=random.Random(2)) == sam
    others = {render(text, char="Aria", user=f"user{n}") for n in range(30)}
    assert len(others) > 1  # another person may see another pick


def test_roll_stays_in_range() -> None:
    rng = random.Random(3)
    rolls = [int(render("{{roll:2d6+1}}", char="A", user="B", rng=rng)) for _ in range(200)]
    assert min(rolls) >= 3
    assert max(rolls) <= 13
    assert len(set(rolls)) > 5
    d20 = {int(render("{{roll:20}}", char="A", user="B", rng=rng)) for _ in range(300)}
    assert d20 == set(range(1, 21))
    assert render("{{roll:d4-10}}", char="A", user="B", rng=random.Random(0)).startswith("-")


def test_comments_disappear_and_unknown_macros_stay() -> None:
    text = "Hi {{// the writer's note: keep it short}}{{user}}. {{weather}} {{random}}"
    assert render(text, char="A", user="Sam") == "Hi Sam. {{weather}} {{random}}"


def test_macros_work_in_the_request() -> None:
    character = Character(
        name="Pip",
        description="{{char}} has {{pick:green,grey}} wings.{{// secret}}",
        examples=[{"user": "Roll!", "ai": "{{roll:1}}"}],
    )
    contents = [m.content for m in build_prompt(character, [], user_name="Sam").request.messages]
    assert contents[0] in ("Pip has green wings.", "Pip has grey wings.")
    assert contents[-1] == "1"
