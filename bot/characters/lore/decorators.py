"""Card V3 decorators: ``@@name value`` lines at the start of an entry's content.

A decorator Troupe does not honour may be followed by fallbacks (``@@@name value``, tried in
order); the first one honoured counts. Decorators no fallback saves are kept and reported by
``troupe check``. The text after the decorator lines is the entry's content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The decorators honoured (card V3 names).
SUPPORTED = frozenset(
    {
        "depth",
        "activate_only_after",
        "activate_only_every",
        "dont_activate",
        "role",
        "scan_depth",
        "additional_keys",
        "exclude_keys",
    }
)
#: Decorators that may be given more than once (each counts).
_REPEATABLE = frozenset({"additional_keys", "exclude_keys"})


@dataclass(slots=True)
class Decorators:
    """What the decorator lines of one entry said."""

    #: Honoured decorators: name -> the value of each use (one, unless repeatable).
    values: dict[str, list[str]] = field(default_factory=dict)
    #: Unsupported decorators as written (``@@name value``), kept for ``troupe check``.
    unsupported: list[str] = field(default_factory=list)
    #: Honoured decorators whose value is no good, with why.
    invalid: list[str] = field(default_factory=list)

    def number(self, name: str) -> int | None:
        """The whole-number value of ``name`` (``None`` when absent or not a number)."""
        found = self.values.get(name)
        if not found:
            return None
        try:
            return int(found[0].strip())
        except ValueError:
            self.invalid.append(f"@@{name} {found[0]}: not a whole number")
            return None

    def lists(self, name: str) -> list[list[str]]:
        """Each use of ``name`` as its comma-separated values."""
        return [
            [part.strip() for part in value.split(",") if part.strip()]
            for value in self.values.get(name, [])
        ]


def split_decorators(content: str) -> tuple[Decorators, str]:
    """The decorators at the start of ``content``, and the text after them (trimmed)."""
    decorators = Decorators()
    lines = content.split("\n")
    at = 0
    pending: str | None = None  # an unsupported decorator still waiting for a fallback
    resolved = False  # the current chain found a decorator it honours
    while at < len(lines) and lines[at].lstrip().startswith("@@"):
        line = lines[at].strip()
        at += 1
        fallback = line.startswith("@@@")
        name, _, value = line.lstrip("@").partition(" ")
        if not fallback:
            _settle(decorators, pending, resolved)
            pending, resolved = None, False
        elif resolved or pending is None:
            continue  # the decorator before it was honoured: the fallback is not needed
        if name in SUPPORTED:
            uses = decorators.values.setdefault(name, [])
            if not uses or name in _REPEATABLE:
                uses.append(value.strip())
            pending, resolved = None, True
        elif not fallback:
            pending = line
    _settle(decorators, pending, resolved)
    return decorators, "\n".join(lines[at:]).strip()


def _settle(decorators: Decorators, pending: str | None, resolved: bool) -> None:
    if pending is not None and not resolved:
        decorators.unsupported.append(pending)
