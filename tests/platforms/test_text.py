"""Splitting replies into platform-sized messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.platforms.text import FENCE, open_fence, split_message


def fence_lines(part: str) -> int:
    return sum(1 for line in part.split("\n") if line.strip().startswith(FENCE))


def words(text: str) -> str:
    return "".join(text.split())


def test_a_short_text_is_one_part() -> None:
    assert split_message("Hello there.", 2000) == ["Hello there."]


def test_paragraphs_are_preferred_over_lines_and_sentences() -> None:
    first = "First paragraph. " * 5
    second = "Second one here. " * 5
    parts = split_message(f"{first.strip()}\n\n{second.strip()}", 120)
    assert parts == [first.strip(), second.strip()]


def test_sentences_come_before_words() -> None:
    text = "One two three four five six. Seven eight nine ten eleven twelve."
    assert split_message(text, 40) == [
        "One two three four five six.",
        "Seven eight nine ten eleven twelve.",
    ]


def test_a_closing_quote_stays_with_its_sentence() -> None:
    text = 'She said "go away now, please." Then she left the lighthouse.'
    assert split_message(text, 40)[0] == 'She said "go away now, please."'


def test_words_when_there_is_no_sentence_end() -> None:
    text = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    parts = split_message(text, 25)
    assert all(len(part) <= 25 for part in parts)
    assert " ".join(parts) == text


def test_a_word_longer_than_the_limit_is_cut_hard() -> None:
    parts = split_message("x" * 95, 40)
    assert [len(p) for p in parts] == [36, 36, 23]  # room is kept for a closing fence
    assert "".join(parts) == "x" * 95


def test_a_code_block_is_closed_and_reopened_across_parts() -> None:
    code = "\n".join(f"print({n})" for n in range(40))
    text = f"Here you go:\n\n```python\n{code}\n```\nThat's all."
    parts = split_message(text, 120)
    assert len(parts) > 2
    for part in parts:
        assert len(part) <= 120
        assert fence_lines(part) % 2 == 0, part
    assert parts[1].startswith("```python\n")
    assert parts[0].endswith("```")
    rejoined = "\n".join(parts)
    assert all(f"print({n})" in rejoined for n in range(40))


def test_open_fence_tracks_the_innermost_state() -> None:
    assert open_fence("no code") is None
    assert open_fence("```js\nlet a") == "```js"
    assert open_fence("```js\nlet a\n```\nafter") is None


def measure_utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_a_custom_measure_keeps_parts_within_the_limit() -> None:
    text = "🙂 " * 3000  # each emoji is two UTF-16 units
    parts = split_message(text, 4096, measure=measure_utf16)
    assert all(measure_utf16(part) <= 4096 for part in parts)
    assert words("".join(parts)) == words(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="abc de.\n!?", min_size=1, max_size=80),
            st.sampled_from(["\n```py\n", "\n```\n", "\n\n"]),
        ),
        max_size=30,
    ),
    st.integers(min_value=16, max_value=200),
)
def test_parts_always_fit_keep_fences_balanced_and_lose_no_text(
    pieces: list[str], limit: int
) -> None:
    text = "".join(pieces)
    parts = split_message(text, limit)
    assert all(0 < len(part) <= limit for part in parts)
    assert all(part.strip() for part in parts)
    # Without the fences the split adds, the words are exactly the original's, in order.
    original = words(text.replace(FENCE + "py", "").replace(FENCE, ""))
    split = words("".join(p.replace(FENCE + "py", "").replace(FENCE, "") for p in parts))
    assert split == original
