"""Building the M2-her request for a character and a conversation's history.

The mapping (``docs/design.md``) in the canonical order of ``docs/m2her-api.md`` §3.4:

1. ``system``, name = the character: description, personality, scenario, rules;
2. ``user_system``, name = the user: their own persona, else the character's default
   (left out when there is neither);
3. ``group``, name = the character's scene, else the channel: the scene text, else the
   name (left out when there is neither);
4. ``sample_message_user`` / ``sample_message_ai`` pairs from the character's examples;
5. the history, oldest first: ``user`` messages named after each speaker, so several
   people stay distinct, and ``assistant`` messages named after the character.

A conversation's memory (:mod:`bot.conversation.recall`), when given, is one more ``group``
message named :data:`MEMORY_NAME`, right after 3 (after 1–2 when there is no scene). It is
sent only when it fits beside the character and the newest message; the history gets what
is left.

With ``fold_roles`` (an M2-her that refuses 2–4, see :mod:`bot.llm.roles`) 2–4 are written
into the ``system`` message instead (:func:`~bot.characters.fold.fold_advanced_roles`).

Lorebook entries that fire (:mod:`bot.characters.lore`) join within the lore budget: the
``before_char`` / ``after_char`` ones in the ``system`` message around the persona, the
``depth`` ones as messages inside the history (:mod:`bot.characters.lore.placement`).

Names and message text are data. Each history entry becomes exactly one message whose
role comes from the entry's ``role`` field, never from its text or name; nothing a
user wrote is ever pasted into the ``system`` message. The only user-controlled text
in the character's part is the display name filling ``{{user}}``, tidied to one short line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from bot.characters.budget import Budget, CharacterTooLong, PromptTooLong, fit_newest
from bot.characters.fold import fold_advanced_roles
from bot.characters.lore.book import Lorebook, LoreEntry
from bot.characters.lore.placement import Placed, insert_at_depth, place
from bot.characters.lore.select import ANY_TURN, Selection, Turns, fire, within_budget
from bot.characters.names import sanitize_name
from bot.characters.schema import Character
from bot.characters.tokens import TokenEstimator
from bot.llm.tokens import estimate_text_tokens
from bot.llm.types import ChatMessage, ChatRequest, Role

__all__ = [
    "DEFAULT_BUDGET",
    "MEMORY_NAME",
    "Budget",
    "CharacterTooLong",
    "HistoryEntry",
    "Prompt",
    "PromptTooLong",
    "TokenEstimator",
    "build_prompt",
    "constant_lore",
    "fixed_tokens",
    "preview_body",
    "preview_prompt",
    "system_text",
]

#: M2-her's window, its largest reply, and the default safety margin.
DEFAULT_BUDGET = Budget()
#: The ``name`` of the ``group`` message that carries a conversation's memory.
MEMORY_NAME = "Story so far"


class HistoryEntry(NamedTuple):
    """One stored message as the prompt needs it: who said what.

    ``name`` is the speaker's display name for ``user`` entries; for ``assistant``
    entries the character's own name is always used. (A named tuple: every turn makes one
    per message of its window, and a tuple is built in a quarter of a dataclass's time.)
    """

    role: Literal["user", "assistant"]
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """A request ready to send, and what the budget did to the history."""

    request: ChatRequest
    history_kept: int
    history_dropped: int
    estimated_tokens: int
    #: The lorebook entries sent, and those that fired but were cut for budget.
    lore: Selection = field(default_factory=Selection)
    #: What the memory message added (0: none given, or it did not fit).
    memory_tokens: int = 0


def build_prompt(
    character: Character,
    history: Sequence[HistoryEntry],
    *,
    user_name: str,
    user_persona: str | None = None,
    scene_text: str | None = None,
    group_name: str | None = None,
    budget: Budget = DEFAULT_BUDGET,
    estimator: TokenEstimator | None = None,
    fold_roles: bool = False,
    note: str | None = None,
    lorebooks: Sequence[Lorebook] = (),
    history_complete: bool = True,
    memory: str | None = None,
) -> Prompt:
    """The request for ``character`` answering ``history`` (oldest first).

    ``user_name`` is the person being answered (it fills ``{{user}}``);
    ``user_persona`` is their own persona, overriding the character's default;
    ``scene_text`` replaces the character's scene text; ``group_name`` (e.g. the
    channel's name) names the ``group`` message of a character that has no scene.
    ``fold_roles`` writes the user persona, scene and examples into the ``system`` message.
    ``note``, an instruction for this turn alone, ends the ``system`` message as a ``[Now]``
    block (so no one in the chat seems to have said it).
    ``lorebooks`` (say, a channel's world books) are scanned after the character's own;
    ``history_complete`` says whether ``history`` is the whole conversation (it counts the
    character's replies for ``@@activate_only_after`` / ``@@activate_only_every``).
    ``memory`` (the conversation's summary and facts) is sent after the scene when it fits
    beside the character's part and the newest message, else left out.
    The oldest history is dropped until the estimate fits ``budget``.
    Raises :class:`PromptTooLong` when even the newest message does not fit.
    """
    estimator = estimator or TokenEstimator()
    user = sanitize_name(user_name)

    def fixed_part(placed: Placed | None, remember: str | None) -> list[ChatMessage]:
        fixed = _character_messages(character, user, user_persona, group_name, scene_text, placed)
        if remember:
            fixed = _with_memory(fixed, remember)
        # Before the estimate: the budget must count the form that is sent.
        fixed = fold_advanced_roles(fixed) if fold_roles else fixed
        return _with_note(fixed, note) if note else fixed

    completion = character.generation.max_completion_tokens or budget.max_completion_tokens
    limit = budget.prompt_limit(completion)
    plain = fixed_part(None, None)
    plain_tokens = estimator.estimate(plain)
    if plain_tokens > limit:
        raise CharacterTooLong(
            f"character {character.id!r} alone exceeds the token budget",
            needed=plain_tokens,
            limit=limit,
        )
    newest_cost = (
        estimator.estimate_message(_history_message(history[-1], character.name)) if history else 0
    )
    # The memory goes in when it fits beside the character's part and the newest message.
    remember = memory.strip() if memory and history else None
    base, base_tokens = plain, plain_tokens
    if remember:
        remembering = fixed_part(None, remember)
        with_memory = estimator.estimate(remembering)
        if with_memory + newest_cost <= limit:
            base, base_tokens = remembering, with_memory
        else:
            remember = None
    books = _books(character, lorebooks)
    lore = Selection()
    if books:
        room = min(budget.lore_limit, limit - base_tokens - newest_cost)
        lore = _select_lore(character, books, history, user, max(room, 0), history_complete)
    placed = place(lore.kept, character.name)
    fixed = fixed_part(placed, remember) if placed.before or placed.after else base
    fixed_tokens = estimator.estimate(fixed)
    depth_tokens = sum(estimator.estimate_message(message) for _, message in placed.at_depth)
    # Newest first, built lazily: history beyond the budget is never even converted.
    newest_first = (_history_message(entry, character.name) for entry in reversed(history))
    kept, history_tokens = fit_newest(newest_first, limit - fixed_tokens - depth_tokens, estimator)
    if history and not kept and lore.kept:
        # The lore's estimate was a little short: the newest message matters more.
        lore, placed, fixed, fixed_tokens, depth_tokens = (
            Selection(cut=lore.kept + lore.cut),
            place((), character.name),
            base,
            base_tokens,
            0,
        )
        newest_first = (_history_message(entry, character.name) for entry in reversed(history))
        kept, history_tokens = fit_newest(newest_first, limit - fixed_tokens, estimator)
    if history and not kept:
        newest_message = _history_message(history[-1], character.name)
        raise PromptTooLong(
            "the newest message does not fit the token budget",
            needed=fixed_tokens + estimator.estimate_message(newest_message),
            limit=limit,
        )
    generation = character.generation
    request = ChatRequest(
        messages=(*fixed, *insert_at_depth(kept, placed.at_depth)),
        temperature=generation.temperature,
        top_p=generation.top_p,
        max_completion_tokens=completion,
    )
    return Prompt(
        request=request,
        history_kept=len(kept),
        history_dropped=len(history) - len(kept),
        estimated_tokens=fixed_tokens + depth_tokens + history_tokens,
        lore=lore,
        memory_tokens=base_tokens - plain_tokens,
    )


def _with_note(messages: list[ChatMessage], note: str) -> list[ChatMessage]:
    """``messages`` with ``note`` as a last ``[Now]`` block of the ``system`` message."""
    system = messages[0]
    text = "\n\n".join(filter(None, [(system.content or "").strip(), f"[Now]\n{note}"]))
    return [system._replace(content=text), *messages[1:]]


def _books(character: Character, extra: Sequence[Lorebook]) -> list[Lorebook]:
    """The character's books, then ``extra`` ones it does not already use."""
    books = list(character.lorebooks)
    seen = {book.id for book in books}
    books += [book for book in extra if book.id not in seen]
    return books


def _select_lore(
    character: Character,
    books: Sequence[Lorebook],
    history: Sequence[HistoryEntry],
    user: str,
    room: int,
    history_complete: bool,
) -> Selection:
    """The entries of ``books`` that fire on ``history`` and fit in ``room`` tokens."""
    deepest = max((depth for book in books for depth in book.indexes), default=0)
    recent = history[-deepest:] if deepest else ()
    name = character.name
    messages = [f"{name if e.role == 'assistant' else e.name}: {e.text}" for e in recent]
    replies = sum(1 for entry in history if entry.role == "assistant")
    fired = fire(books, messages, Turns(replies, exact=history_complete))
    return within_budget(fired, books, room, _measure(character, user))


def _measure(character: Character, user: str) -> Callable[[LoreEntry], tuple[str, int]]:
    def measure(entry: LoreEntry) -> tuple[str, int]:
        text = character.render(entry.content, user=user) if entry.content else ""
        return text, estimate_text_tokens(text) + 1  # and its line break

    return measure


def fixed_tokens(
    character: Character,
    *,
    estimator: TokenEstimator | None = None,
    budget: Budget = DEFAULT_BUDGET,
) -> int:
    """The estimated tokens of what every request of ``character`` carries whatever the
    history: persona, the default user persona, scene, examples and the constant entries of its
    lorebooks (as many as their budgets let in), in the larger of the two forms."""
    estimator = estimator or TokenEstimator()
    placed = place(constant_lore(character, budget=budget).kept, character.name)
    fixed = _character_messages(character, "User", None, None, None, placed)
    depth = sum(estimator.estimate_message(message) for _, message in placed.at_depth)
    return depth + max(estimator.estimate(fixed), estimator.estimate(fold_advanced_roles(fixed)))


def constant_lore(character: Character, *, budget: Budget = DEFAULT_BUDGET) -> Selection:
    """The constant entries of ``character``'s lorebooks that fit their budgets, and those
    that do not (and so are never sent)."""
    books = character.lorebooks
    constant = [found for found in fire(books, (), ANY_TURN) if found.reason == "constant"]
    return within_budget(constant, books, budget.lore_limit, _measure(character, "User"))


def preview_prompt(
    character: Character,
    *,
    user: str = "User",
    message: str = "Hello!",
    greeting: str | None = None,
    fold_roles: bool = False,
    budget: Budget = DEFAULT_BUDGET,
    lorebooks: Sequence[Lorebook] = (),
) -> Prompt:
    """``troupe preview``: the prompt of the first turn, where ``user`` answers ``greeting``
    (the character's first message, templates not filled; ``None``: the conversation opened
    without one) with ``message`` (in the folded form with ``fold_roles``), with the
    character's lorebooks and ``lorebooks`` (a channel's)."""
    history = [HistoryEntry(role="user", name=user, text=message)]
    if greeting is not None:
        # Stored as the manager's greet stores it: filled for this user, said by the character.
        opening = character.render(greeting, user=user)
        history.insert(0, HistoryEntry(role="assistant", name=character.name, text=opening))
    return build_prompt(
        character,
        history,
        user_name=user,
        fold_roles=fold_roles,
        budget=budget,
        lorebooks=lorebooks,
    )


def preview_body(
    character: Character,
    *,
    user: str = "User",
    message: str = "Hello!",
    greeting: str | None = None,
    fold_roles: bool = False,
    budget: Budget = DEFAULT_BUDGET,
) -> dict[str, Any]:
    """The exact JSON body of :func:`preview_prompt`'s request."""
    prompt = preview_prompt(
        character,
        user=user,
        message=message,
        greeting=greeting,
        fold_roles=fold_roles,
        budget=budget,
    )
    return prompt.request.to_wire(stream=True)


def system_text(character: Character, *, user: str, placed: Placed | None = None) -> str:
    """The ``system`` content: the persona with templates filled for ``user``, with the
    ``placed`` lore before the description and after the scenario (``rules`` stay last)."""
    char = character.name
    sections = (
        character.description,
        character.personality and f"{char}'s personality: {character.personality.strip()}",
        character.scenario and f"Scenario: {character.scenario.strip()}",
    )
    persona = [character.render(s.strip(), user=user) for s in sections if s.strip()]
    rules = (
        [character.render(character.rules.strip(), user=user)] if character.rules.strip() else []
    )
    # Lore text is rendered already (when its tokens were counted).
    before = [placed.before] if placed and placed.before else []
    after = [placed.after] if placed and placed.after else []
    return "\n\n".join([*before, *persona, *after, *rules])


def _character_messages(
    character: Character,
    user: str,
    user_persona: str | None,
    group_name: str | None,
    scene_text: str | None,
    placed: Placed | None = None,
) -> list[ChatMessage]:
    """Everything before the history; always kept whole (with ``placed`` lore in ``system``)."""
    char = character.name
    system = system_text(character, user=user, placed=placed)
    messages = [ChatMessage(Role.SYSTEM, system, name=char)]

    persona = (user_persona or "").strip() or character.user_persona.strip()
    if persona:
        content = character.render(persona, user=user)
        messages.append(ChatMessage(Role.USER_SYSTEM, content, name=user))

    scene = character.scene
    # The character's own scene wins; a channel's name stands in for a scene-less one.
    if scene is not None:
        group_name = scene.name
    elif group_name is not None:
        group_name = sanitize_name(group_name, fallback="") or None
    group_text = (scene_text or "").strip() or (scene.text.strip() if scene else "")
    if group_name or group_text:
        # M2-her wants text in every non-system message: a bare scene sends its name.
        scene_content = character.render(group_text, user=user) if group_text else group_name
        messages.append(ChatMessage(Role.GROUP, scene_content or "", name=group_name))

    for example in character.examples:
        messages.append(
            ChatMessage(
                Role.SAMPLE_MESSAGE_USER,
                character.render(example.user.strip(), user=user),
                name=user,
            )
        )
        messages.append(
            ChatMessage(
                Role.SAMPLE_MESSAGE_AI, character.render(example.ai.strip(), user=user), name=char
            )
        )
    return messages


def _with_memory(messages: list[ChatMessage], memory: str) -> list[ChatMessage]:
    """``messages`` with the memory after the scene (or after the personas, without one)."""
    at = sum(1 for m in messages if m.role in (Role.SYSTEM, Role.USER_SYSTEM, Role.GROUP))
    return [*messages[:at], ChatMessage(Role.GROUP, memory, name=MEMORY_NAME), *messages[at:]]


def _history_message(entry: HistoryEntry, character_name: str) -> ChatMessage:
    if entry.role == "assistant":
        return ChatMessage(Role.ASSISTANT, entry.text, name=character_name)
    if entry.role == "user":
        return ChatMessage(Role.USER, entry.text, name=sanitize_name(entry.name))
    raise ValueError(f"history role must be 'user' or 'assistant', got {entry.role!r}")
