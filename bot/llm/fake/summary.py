"""The fake model's deterministic memory updates.

A request whose first ``system`` message begins with
:data:`~bot.llm.summary.MEMORY_INSTRUCTIONS` is a memory update
(:func:`~bot.llm.summary.memory_request`). The fake answers it with JSON derived from the
request alone, so a test can say what the memory will hold:

* ``summary``: a first line ``Lines remembered: N`` (the previous N plus the new lines), then
  the previous summary's other lines, then one line ``Name said: text`` for every new line
  that states something about its speaker (see below), cut to :data:`LINE_CHARS`; only the
  newest :data:`SUMMARY_LINES` of those are kept;
* ``facts``: for each new line, every ``I'm X`` / ``I am X`` (→ ``is X``), ``call me X``
  (→ ``wants to be called X``) and ``my name is X`` (→ ``is named X``), X running to the
  next ``.``, ``!``, ``?``, ``,`` or the end.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.llm.summary import (
    LINES_HEADING,
    MEMORY_INSTRUCTIONS,
    PREVIOUS_HEADING,
    read_sections,
)

#: How many remembered lines the fake's summary keeps (the newest).
SUMMARY_LINES = 20
#: How much of each remembered line it keeps, in characters.
LINE_CHARS = 120
_COUNT = re.compile(r"^Lines remembered: (\d+)$")
_FACT = re.compile(r"\b(i'm|i am|call me|my name is)\s+([^.!?,\n]{1,60})", re.IGNORECASE)
_PHRASES = {"i'm": "is {}", "i am": "is {}", "call me": "wants to be called {}"}


def is_memory_request(messages: object) -> bool:
    """Whether ``messages`` (a request's, not yet validated) are a memory update's."""
    first = messages[0] if isinstance(messages, list) and messages else None
    if not isinstance(first, dict):
        return False
    content = first.get("content")
    return (
        first.get("role") == "system"
        and isinstance(content, str)
        and content.startswith(MEMORY_INSTRUCTIONS)
    )


def memory_reply(messages: list[dict[str, Any]]) -> str:
    """The deterministic answer to a memory update (see the module docstring)."""
    body = next((str(m.get("content") or "") for m in messages if m.get("role") == "user"), "")
    sections = read_sections(body)
    previous = [
        line for line in sections.get(PREVIOUS_HEADING, "").splitlines() if line != "(nothing yet)"
    ]
    remembered = 0
    if previous and (count := _COUNT.match(previous[0])):
        remembered = int(count.group(1))
        previous = previous[1:]
    lines = [line for line in sections.get(LINES_HEADING, "").splitlines() if ": " in line]
    kept, facts = list(previous), list[dict[str, str]]()
    for line in lines:
        who, text = line.split(": ", 1)
        stated = [(who, _fact(kind, what)) for kind, what in _FACT.findall(text)]
        if stated:
            kept.append(f"{who} said: {text[:LINE_CHARS]}")
            facts.extend({"who": who, "fact": fact} for who, fact in stated)
    summary = "\n".join([f"Lines remembered: {remembered + len(lines)}", *kept[-SUMMARY_LINES:]])
    return json.dumps({"summary": summary, "facts": facts}, ensure_ascii=False)


def _fact(kind: str, what: str) -> str:
    phrase = _PHRASES.get(kind.lower(), "is named {}")
    return phrase.format(what.strip())
