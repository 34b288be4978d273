"""Memory in storage: summaries stored only over what they started from, facts per user and
character, sharing, corrections, and erasure by reset and forget; on SQLite and PostgreSQL."""

from __future__ import annotations

from bot.storage import (
    CallKind,
    Conversation,
    MemoryScope,
    MemoryUpdateRecord,
    ModelCall,
    NewMessage,
    Storage,
)
from bot.storage.storage import FACTS_KEPT


async def _chat(storage: Storage, chat_id: str = "c1") -> tuple[Conversation, list[int]]:
    conversation = await storage.conversation("discord", chat_id, default_character="aria")
    ids = []
    for n in range(4):
        stored = await storage.add_message(
            NewMessage(conversation.id, "user", "u1", "Sam", f"line {n}")
        )
        ids.append(stored.id)
    return conversation, ids


def _scope(conversation: Conversation, *, shared: bool = False) -> MemoryScope:
    return MemoryScope(conversation.id, "discord", "aria", shared=shared)


async def test_an_update_is_stored_only_over_the_summary_it_started_from(
    storage: Storage,
) -> None:
    conversation, ids = await _chat(storage)
    scope = _scope(conversation)
    first = MemoryUpdateRecord("Sam said lines 0 and 1.", 0, ids[1], read=2, facts=(("u1", "a"),))
    assert await storage.save_memory(scope, first)
    # A second update that also started from nothing lost the race: nothing of it is kept.
    rival = MemoryUpdateRecord("Rival.", 0, ids[2], read=3, facts=(("u1", "b"),))
    assert not await storage.save_memory(scope, rival)
    summary, facts = await storage.memory(scope, ["u1"])
    assert summary is not None
    assert (summary.summary, summary.covered_through) == ("Sam said lines 0 and 1.", ids[1])
    assert [f.text for f in facts] == ["a"]

    later = MemoryUpdateRecord("Lines 0 to 3.", ids[1], ids[3], read=2, facts=(("u1", "A"),))
    assert await storage.save_memory(scope, later)
    summary, facts = await storage.memory(scope, ["u1"])
    assert summary is not None
    assert summary.covered_through == ids[3]
    assert [f.text for f in facts] == ["a"]  # "A" is known already


async def test_an_update_whose_messages_changed_is_not_stored(storage: Storage) -> None:
    conversation, ids = await _chat(storage)
    scope = _scope(conversation)
    # Made from five messages of which only four are still there (one was deleted meanwhile).
    stale = MemoryUpdateRecord("Stale.", 0, ids[3], read=5)
    assert not await storage.save_memory(scope, stale)
    await storage.reset_conversation(conversation.id)
    assert not await storage.save_memory(scope, MemoryUpdateRecord("Gone.", 0, ids[3], read=4))
    assert await storage.memory(scope, ["u1"]) == (None, [])


async def test_messages_after_reads_what_may_go_into_prompts(storage: Storage) -> None:
    conversation, ids = await _chat(storage)
    await storage.flag_message(ids[2], 1)
    found = await storage.messages_after(conversation.id, ids[0], ids[3], limit=10)
    assert [m.text for m in found] == ["line 1", "line 3"]
    assert len(await storage.messages_after(conversation.id, 0, ids[3], limit=2)) == 2


async def test_facts_stay_in_their_chat_unless_both_share(storage: Storage) -> None:
    one, one_ids = await _chat(storage, "c1")
    two, two_ids = await _chat(storage, "c2")
    three, _ = await _chat(storage, "c3")
    private = MemoryUpdateRecord("S", 0, one_ids[0], read=1, facts=(("u1", "is a nurse"),))
    assert await storage.save_memory(_scope(one), private)
    shared = MemoryUpdateRecord("S", 0, two_ids[0], read=1, facts=(("u1", "likes tea"),))
    assert await storage.save_memory(_scope(two, shared=True), shared)

    assert [f.text for f in (await storage.memory(_scope(one), ["u1"]))[1]] == ["is a nurse"]
    # A sharing chat sees what other sharing chats learned, never a private chat's facts.
    _, facts = await storage.memory(_scope(three, shared=True), ["u1"])
    assert [f.text for f in facts] == ["likes tea"]
    _, facts = await storage.memory(_scope(three), ["u1"])
    assert facts == []
    # Another character knows nothing of it.
    other = MemoryScope(three.id, "discord", "bram", shared=True)
    assert (await storage.memory(other, ["u1"]))[1] == []


async def test_only_the_newest_facts_are_kept(storage: Storage) -> None:
    conversation, ids = await _chat(storage)
    scope = _scope(conversation)
    facts = tuple(("u1", f"fact {n}") for n in range(FACTS_KEPT + 5))
    assert await storage.save_memory(scope, MemoryUpdateRecord("S", 0, ids[0], 1, facts))
    _, kept = await storage.memory(scope, ["u1"])
    assert [f.text for f in kept] == [f"fact {n}" for n in range(5, FACTS_KEPT + 5)]


async def test_corrections_and_deletions(storage: Storage) -> None:
    conversation, ids = await _chat(storage)
    scope = _scope(conversation)
    update = MemoryUpdateRecord("Story.", 0, ids[1], 2, (("u1", "is a nurse"), ("u2", "is a cook")))
    assert await storage.save_memory(scope, update)
    _, (mine,) = await storage.memory(scope, ["u1"])
    _, (theirs,) = await storage.memory(scope, ["u2"])

    assert await storage.set_fact(mine.id, "u1", "is a doctor")
    assert not await storage.set_fact(theirs.id, "u1", None)  # not u1's to delete
    assert await storage.set_summary(conversation.id, "")
    summary, facts = await storage.memory(scope, ["u1", "u2"])
    assert summary is not None
    # Forgotten, but still covering what it did: it is not written again from old messages.
    assert (summary.summary, summary.covered_through) == ("", ids[1])
    assert [f.text for f in facts] == ["is a doctor", "is a cook"]
    assert await storage.set_fact(mine.id, "u1", None)
    assert [f.text for f in (await storage.memory(scope, ["u1", "u2"]))[1]] == ["is a cook"]


async def test_reset_and_forget_erase_memory(storage: Storage) -> None:
    one, one_ids = await _chat(storage, "c1")
    two, two_ids = await _chat(storage, "c2")
    facts = (("u1", "is a nurse"),)
    assert await storage.save_memory(_scope(one), MemoryUpdateRecord("S1", 0, one_ids[0], 1, facts))
    assert await storage.save_memory(_scope(two), MemoryUpdateRecord("S2", 0, two_ids[0], 1, facts))

    await storage.reset_conversation(one.id)
    assert await storage.memory(_scope(one), ["u1"]) == (None, [])
    assert (await storage.memory(_scope(two), ["u1"]))[0] is not None

    report = await storage.forget_user("discord", "u1")
    assert report.memories == 2  # the fact and the summary of the chat u1 spoke in
    assert await storage.memory(_scope(two), ["u1"]) == (None, [])


async def test_usage_totals_by_kind(storage: Storage) -> None:
    conversation, _ = await _chat(storage)
    kinds: tuple[tuple[CallKind, int], ...] = (("reply", 100), ("memory", 40), ("memory", 2))
    for kind, tokens in kinds:
        await storage.record_model_call(
            ModelCall(conversation.id, "u1", "aria", "M2-her", tokens, 0, tokens, True, kind=kind)
        )
    memory = await storage.usage_totals(platform="discord", kind="memory")
    assert (memory.calls, memory.total_tokens) == (2, 42)
    everything = await storage.usage_totals(platform="discord")
    assert (everything.calls, everything.total_tokens) == (3, 142)
