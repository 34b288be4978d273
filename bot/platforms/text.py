"""Splitting a reply into messages a platform accepts (2,000 characters on Discord, 4,096 on
Telegram), at the most natural boundary that fits, never leaving a code block half-open."""

from __future__ import annotations

import re
from collections.abc import Callable

FENCE = "```"
_CLOSE = "\n" + FENCE
# Boundaries in order of preference; group 1 is the separator dropped at the cut. Each must
# leave the part at least half full, so that a stray early newline doesn't turn one long
# paragraph into a confetti of tiny messages.
_BOUNDARIES = (
    re.compile(r"(\n\s*\n)"),  # paragraph
    re.compile(r"(\n)"),  # line
    re.compile(r"[.!?…。！？][\"'”’)\]]*(\s+)"),  # sentence, closing quotes kept
    re.compile(r"(\s+)"),  # word
)

Measure = Callable[[str], int]


def split_message(text: str, limit: int, *, measure: Measure = len) -> list[str]:
    """``text`` as parts of at most ``limit`` (by ``measure``), in order, none empty.

    A part that ends inside a fenced code block gets a closing fence, and the next part
    reopens it with the same info string (e.g. ```` ```python ````).
    """
    parts: list[str] = []
    rest = text
    while rest.strip():
        part, rest = take_part(rest, limit, measure=measure)
        parts.append(part)
    return parts


def take_part(text: str, limit: int, *, measure: Measure = len) -> tuple[str, str]:
    """The first part of ``text`` that fits ``limit``, and what remains.

    The remainder starts with a reopened fence when the part had to close one.
    """
    if limit <= len(_CLOSE) + len(FENCE) + 1:
        raise ValueError(f"limit {limit} is too small to split a message")
    if measure(text) <= limit:
        return text.rstrip(), ""
    # Leave room for a closing fence in case the cut lands inside a code block.
    budget = limit - measure(_CLOSE)
    fits = _longest_prefix(text, budget, measure)
    cut, gap = _boundary(text, fits)
    head, tail = text[:cut], text[cut + gap :]
    fence = open_fence(head)
    if fence is None:
        return head.rstrip(), tail.lstrip("\n")
    return head.rstrip("\n") + _CLOSE, f"{fence}\n{tail}"


def open_fence(text: str) -> str | None:
    """The opening line of the code block ``text`` ends inside of, if it does."""
    opened: str | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(FENCE):
            opened = None if opened is not None else stripped
    return opened


def _longest_prefix(text: str, budget: int, measure: Measure) -> int:
    """The largest ``n`` with ``measure(text[:n]) <= budget`` (``measure`` is monotonic)."""
    if measure is len:
        return min(len(text), budget)
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _boundary(text: str, fits: int) -> tuple[int, int]:
    """Where to cut within ``text[:fits]``: (index, length of the separator to drop)."""
    window = text[: fits + 1]  # a separator may start right at the limit
    for pattern in _BOUNDARIES:
        best: re.Match[str] | None = None
        for match in pattern.finditer(window):
            if match.start(1) > fits:
                break
            best = match
        if best is not None and best.start(1) >= fits // 2:
            return best.start(1), best.end(1) - best.start(1)
    return max(fits, 1), 0  # no natural boundary: a hard cut
