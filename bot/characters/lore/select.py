"""Which entries fire in a turn, and which of them fit the lore budget.

An entry fires when it is enabled, its decorators allow it this turn, and it is constant or
one of its keys occurs in the newest messages (as many as its scan depth), with its secondary
keys, ``@@additional_keys`` and ``@@exclude_keys`` agreeing. With ``recursive_scanning`` the
text of fired entries is scanned too, for at most :data:`MAX_RECURSION` rounds.

Over budget, the entries ranked lowest are cut first (constant entries rank above the others,
then higher ``priority``, else higher ``insertion_order``): each book's ``token_budget`` and
the request's lore budget are filled in rank order, and once an entry does not fit, no lower
one of that book (or of any book, for the request's budget) goes in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bot.characters.lore.book import Lorebook, LoreEntry
from bot.characters.lore.keys import Key, ScanText, any_found
from bot.characters.lore.spec import SelectiveLogic

#: Rounds of recursive scanning after the messages' own.
MAX_RECURSION = 3


@dataclass(frozen=True, slots=True)
class Turns:
    """How many replies the character has given so far in the conversation.

    ``exact`` is false when the history window does not hold the whole conversation: then
    ``count`` is only a lower bound, and ``@@activate_only_every`` cannot be told, so it
    fires (as the card V3 spec asks).
    """

    count: int
    exact: bool = True


#: Enough replies for any decorator: ``troupe check`` counts what could ever be constant.
ANY_TURN = Turns(count=1 << 30, exact=False)


@dataclass(frozen=True, slots=True)
class Fired:
    """An entry that fired, and why: ``constant``, ``key 'x'``, or ``key 'x' in the text of
    <entries>`` (recursive scanning)."""

    entry: LoreEntry
    reason: str
    #: The entry's text as sent (templates filled), and its estimated tokens.
    text: str = ""
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class Selection:
    """The entries that go into the request (in the order they are sent), and those cut for
    budget (highest ranked first)."""

    kept: tuple[Fired, ...] = ()
    cut: tuple[Fired, ...] = ()


def fire(books: Sequence[Lorebook], messages: Sequence[str], turns: Turns) -> list[Fired]:
    """Every entry of ``books`` that fires on ``messages`` (oldest first), once each."""
    scans: dict[int, ScanText] = {}

    def scan(depth: int) -> ScanText:
        found = scans.get(depth)
        if found is None:
            found = scans[depth] = ScanText("\n".join(messages[-depth:]) if depth else "")
        return found

    fired: list[Fired] = []
    for book in books:
        done: set[int] = set()
        for entry in book.constants:
            if _allowed(entry, turns):
                fired.append(Fired(entry, "constant"))
                done.add(entry.index)
        for depth, index in book.indexes.items():
            text = scan(depth)
            fired.extend(_matched(book, index.matches(text), text, turns, done, "key"))
        if book.recursive_scanning:
            fired.extend(_recurse(book, fired, turns, done))
    return fired


def _recurse(book: Lorebook, fired: list[Fired], turns: Turns, done: set[int]) -> Iterable[Fired]:
    newest = [f for f in fired if f.entry.book == book.id]
    for _ in range(MAX_RECURSION):
        sources = [f.entry for f in newest if not f.entry.prevent_recursion]
        if not sources:
            return
        text = ScanText("\n".join(entry.content for entry in sources))
        label = ", ".join(entry.label for entry in sources)
        newest = list(_matched(book, book.all_keys.matches(text), text, turns, done, "via"))
        for found in newest:
            yield Fired(found.entry, f"{found.reason} in the text of {label}")


def _matched(
    book: Lorebook,
    hits: Iterable[tuple[int, Key]],
    text: ScanText,
    turns: Turns,
    done: set[int],
    how: str,
) -> Iterable[Fired]:
    for index, key in hits:
        if index in done:
            continue
        entry = book.entries[index]
        if how == "via" and entry.exclude_recursion:
            continue
        if _allowed(entry, turns) and _filters_agree(entry, text):
            done.add(index)
            yield Fired(entry, f"key {key.text!r}")


def _allowed(entry: LoreEntry, turns: Turns) -> bool:
    """Enabled, and its decorators let it fire this turn."""
    if not entry.enabled or entry.dont_activate:
        return False
    after = entry.activate_only_after
    if after is not None and turns.exact and turns.count < after:
        return False
    every = entry.activate_only_every
    return every is None or not turns.exact or turns.count % every == 0


def _filters_agree(entry: LoreEntry, text: ScanText) -> bool:
    """Secondary keys, ``@@additional_keys`` and ``@@exclude_keys`` allow it."""
    if entry.secondary_keys and not _secondary(entry.logic, entry.secondary_keys, text):
        return False
    if any(any_found(group, text) is None for group in entry.additional_keys if group):
        return False
    return any_found(entry.exclude_keys, text) is None


def _secondary(logic: SelectiveLogic, keys: Sequence[Key], text: ScanText) -> bool:
    found = [key.found_in(text) for key in keys]
    if logic is SelectiveLogic.AND_ANY:
        return any(found)
    if logic is SelectiveLogic.AND_ALL:
        return all(found)
    if logic is SelectiveLogic.NOT_ANY:
        return not any(found)
    return not all(found)  # NOT_ALL


def within_budget(
    fired: Sequence[Fired],
    books: Sequence[Lorebook],
    limit: int,
    measure: Callable[[LoreEntry], tuple[str, int]],
) -> Selection:
    """``fired`` split into what fits (each book's ``token_budget`` and ``limit`` overall)
    and what is cut, lowest rank first. ``measure`` gives an entry's text and tokens."""
    order = {book.id: number for number, book in enumerate(books)}
    ranked = sorted(fired, key=lambda f: (*f.entry.rank, order[f.entry.book], f.entry.index))
    budgets = {book.id: book.token_budget for book in books}
    spent: dict[str, int] = {}
    full: set[str] = set()
    kept: list[Fired] = []
    cut: list[Fired] = []
    used = 0
    for found in ranked:
        entry = found.entry
        text, tokens = measure(entry)
        measured = Fired(entry, found.reason, text, tokens)
        if not text:
            continue  # an empty entry adds nothing (card V3)
        book_budget = budgets[entry.book]
        over_book = book_budget is not None and spent.get(entry.book, 0) + tokens > book_budget
        if "" in full or entry.book in full or over_book or used + tokens > limit:
            full.add(entry.book if over_book else "")
            cut.append(measured)
            continue
        kept.append(measured)
        spent[entry.book] = spent.get(entry.book, 0) + tokens
        used += tokens
    # Sent in insertion order; between books, the character's own first.
    kept.sort(key=lambda f: (f.entry.insertion_order, order[f.entry.book], f.entry.index))
    return Selection(tuple(kept), tuple(cut))
