"""A lorebook ready for turns: entries with their decorators read and their keys compiled.

:func:`compile_book` turns a checked :class:`~bot.characters.lore.spec.LorebookSpec` into a
:class:`Lorebook` once, when the characters load; every turn then only scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bot.characters.lore.decorators import split_decorators
from bot.characters.lore.keys import BadKey, Key, KeyIndex, compile_key
from bot.characters.lore.spec import (
    LorebookSpec,
    LoreEntrySpec,
    LoreRole,
    Position,
    SelectiveLogic,
)
from bot.yamlsource import Loc

#: A remark about a place in a book: where (relative to the book) and what.
Remark = tuple[Loc, str]

_ROLES: dict[str, LoreRole] = {"system": "system", "user": "user", "assistant": "assistant"}


@dataclass(frozen=True, slots=True)
class LoreEntry:
    """One entry as a turn uses it (decorators applied, keys compiled)."""

    book: str
    index: int
    label: str
    content: str
    keys: tuple[Key, ...]
    secondary_keys: tuple[Key, ...]
    logic: SelectiveLogic
    constant: bool
    enabled: bool
    insertion_order: int
    priority: int | None
    position: Position
    depth: int
    role: LoreRole
    scan_depth: int
    prevent_recursion: bool
    exclude_recursion: bool
    #: ``@@additional_keys``: one of each group must occur too.
    additional_keys: tuple[tuple[Key, ...], ...] = ()
    #: ``@@exclude_keys``: none of these may occur.
    exclude_keys: tuple[Key, ...] = ()
    activate_only_after: int | None = None
    activate_only_every: int | None = None
    dont_activate: bool = False
    #: Decorators kept but not honoured, as written.
    unsupported: tuple[str, ...] = ()

    @property
    def rank(self) -> tuple[int, int, int]:
        """Sorts the entry to keep first under a budget: constant, then by priority (else
        insertion order), highest first."""
        weight = self.priority if self.priority is not None else self.insertion_order
        return (0 if self.constant else 1, -weight, -self.insertion_order)


@dataclass(frozen=True, slots=True)
class Lorebook:
    """A book: its entries, scan settings and the key index of each scan depth."""

    id: str
    name: str
    entries: tuple[LoreEntry, ...]
    scan_depth: int
    token_budget: int | None
    recursive_scanning: bool
    #: scan depth -> the index of the keys of the entries scanning that deep.
    indexes: dict[int, KeyIndex] = field(default_factory=dict, compare=False)
    #: The index of every entry's keys (recursion ignores scan depths).
    all_keys: KeyIndex = field(default_factory=KeyIndex, compare=False)
    #: The constant entries that may fire (enabled, not ``@@dont_activate``).
    constants: tuple[LoreEntry, ...] = field(default=(), compare=False)


def compile_book(spec: LorebookSpec, book_id: str) -> tuple[Lorebook, list[Remark]]:
    """``spec`` ready for turns, and warnings (bad regexes, unsupported decorators)."""
    remarks: list[Remark] = []
    entries = tuple(
        _entry(entry, book_id, index, spec.scan_depth, remarks)
        for index, entry in enumerate(spec.entries)
    )
    book = Lorebook(
        id=book_id,
        name=spec.name or book_id,
        entries=entries,
        scan_depth=spec.scan_depth,
        token_budget=spec.token_budget,
        recursive_scanning=spec.recursive_scanning,
        constants=tuple(e for e in entries if e.constant and e.enabled and not e.dont_activate),
    )
    for entry in entries:
        if not entry.enabled or entry.dont_activate:
            continue
        index = book.indexes.setdefault(entry.scan_depth, KeyIndex())
        for key in entry.keys:
            index.add(entry.index, key)
            book.all_keys.add(entry.index, key)
    for built in (*book.indexes.values(), book.all_keys):
        built.build()
    return book, remarks


def _entry(
    spec: LoreEntrySpec, book_id: str, index: int, scan_depth: int, remarks: list[Remark]
) -> LoreEntry:
    where: Loc = ("entries", index)
    decorators, content = split_decorators(spec.content)

    def keys(texts: list[str], loc: Loc) -> tuple[Key, ...]:
        compiled = []
        for number, text in enumerate(texts):
            if not text.strip():
                continue
            try:
                compiled.append(
                    compile_key(
                        text,
                        case_sensitive=spec.case_sensitive,
                        whole_words=spec.match_whole_words,
                        use_regex=spec.use_regex,
                    )
                )
            except BadKey as error:
                remarks.append(((*where, *loc, number), f"{error}; this key never matches"))
        return tuple(compiled)

    position, depth, role = spec.position, spec.depth, spec.role
    at_depth = decorators.number("depth")
    if at_depth is not None:
        position, depth = Position.DEPTH, max(at_depth, 0)
    written_role = decorators.values.get("role")
    if written_role:
        role = _ROLES.get(written_role[0].strip().lower(), role)
        if written_role[0].strip().lower() not in _ROLES:
            decorators.invalid.append(f"@@role {written_role[0]}: not system, user or assistant")
    own_scan = decorators.number("scan_depth")
    entry = LoreEntry(
        book=book_id,
        index=index,
        label=spec.name or spec.comment or (spec.keys[0] if spec.keys else f"entry {index}"),
        content=content,
        keys=keys(spec.keys, ("keys",)),
        secondary_keys=keys(spec.secondary_keys, ("secondary_keys",)),
        logic=spec.selective_logic,
        constant=spec.constant,
        enabled=spec.enabled,
        insertion_order=spec.insertion_order,
        priority=spec.priority,
        position=position,
        depth=depth,
        role=role,
        scan_depth=next(
            d for d in (own_scan, spec.scan_depth, scan_depth) if d is not None and d >= 0
        ),
        prevent_recursion=spec.prevent_recursion,
        exclude_recursion=spec.exclude_recursion,
        additional_keys=tuple(
            keys(group, ("content",)) for group in decorators.lists("additional_keys")
        ),
        exclude_keys=tuple(
            key for group in decorators.lists("exclude_keys") for key in keys(group, ("content",))
        ),
        activate_only_after=decorators.number("activate_only_after"),
        activate_only_every=decorators.number("activate_only_every"),
        dont_activate="dont_activate" in decorators.values,
        unsupported=tuple(decorators.unsupported),
    )
    if entry.activate_only_every is not None and entry.activate_only_every < 1:
        decorators.invalid.append("@@activate_only_every: must be 1 or more")
        entry = replace(entry, activate_only_every=None)
    for problem in decorators.invalid:
        remarks.append(((*where, "content"), f"{problem}; ignored"))
    if entry.unsupported:
        listed = ", ".join(entry.unsupported)
        remarks.append(
            ((*where, "content"), f"unsupported decorator(s) kept but ignored: {listed}")
        )
    return entry
