"""Markdown → Telegram HTML: checked with the stand-in's strict HTML parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.platforms.telegram.formatting import escape_markdown, to_html
from tests.standins.telegram import parse_html


def _parsed(markdown: str) -> tuple[str, list[tuple[str, int, int]]]:
    text, entities = parse_html(to_html(markdown))
    return text, [(e["type"], e["offset"], e["length"]) for e in entities]


@pytest.mark.parametrize(
    ("markdown", "text", "entities"),
    [
        ("*waves* hello", "waves hello", [("italic", 0, 5)]),
        ("**bold** and __strong__", "bold and strong", [("bold", 0, 4), ("bold", 9, 6)]),
        (
            "_soft_ ~~gone~~ ||secret||",
            "soft gone secret",
            [("italic", 0, 4), ("strikethrough", 5, 4), ("spoiler", 10, 6)],
        ),
        ("use `a < b && c`", "use a < b && c", [("code", 4, 10)]),
        ("```python\nif a < b:\n    pass\n```", "if a < b:\n    pass", [("pre", 0, 18)]),
        ("# Title\n- one\n* two", "Title\n• one\n• two", [("bold", 0, 5)]),
        ("> said\n> twice\nthen", "said\ntwice\nthen", [("blockquote", 0, 10)]),
        ("see [the site](https://example.org/?a=1&b=2)", "see the site", [("text_link", 4, 8)]),
        ("**bold _and italic_**", "bold and italic", [("bold", 0, 15), ("italic", 5, 10)]),
    ],
)
def test_markdown_becomes_entities(
    markdown: str, text: str, entities: list[tuple[str, int, int]]
) -> None:
    assert _parsed(markdown) == (text, entities)


@pytest.mark.parametrize(
    "markdown",
    [
        "2 < 3 & 5 > 4",
        "<b>not a tag</b> <br> &amp;",
        "**unclosed bold",
        "snake_case_name and 2 * 3 * 4",
        "````",
        "``` \n```",
        "** **",
        "[link](javascript:alert(1))",
        "```\nunclosed fence <tag>",
        "\\*not italic\\*",
    ],
)
def test_what_is_not_markup_stays_literal(markdown: str) -> None:
    text, entities = parse_html(to_html(markdown))
    assert entities == []
    assert text == markdown.replace("\\*", "*").strip()


def test_escape_markdown_keeps_names_literal() -> None:
    name = "Mara_the*Bold`"
    assert parse_html(to_html(f"**{escape_markdown(name)}**")) == (
        name,
        [{"type": "bold", "offset": 0, "length": len(name)}],
    )


_PIECES = st.sampled_from([*"ab _*~|`[]()<>&#->\\\n", "```", "**", "(http://x.y)", "😀"])


@given(st.lists(_PIECES, max_size=80).map("".join))
def test_any_text_parses_and_never_grows(markdown: str) -> None:
    text, _ = parse_html(to_html(markdown))  # raises ParseError if Telegram would refuse it
    assert len(text) <= len(markdown)
