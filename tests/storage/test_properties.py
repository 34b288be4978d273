"""Property: after any sequence of message operations, the history window matches a plain model.

The model is a Python list; the operations are those the conversation manager and the
platform adapters perform (add, flag, show as a platform message, edit, delete, reset). Texts
are any Unicode, NUL and lone surrogates included (stored as U+FFFD).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.storage import NewMessage, StoredMessage, open_storage, upgrade
from bot.storage.columns import storable_text


@dataclass
class Modelled:
    """What the model remembers about one stored message."""

    stored: StoredMessage
    text: str
    flagged: bool = False
    shown_as: str | None = None

    @property
    def id(self) -> int:
        return self.stored.id


texts = st.text(max_size=12)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(["user", "assistant"]), texts),
        st.tuples(st.just("flag"), st.integers(0, 30)),
        st.tuples(st.just("show"), st.integers(0, 30), st.sampled_from(["p1", "p2", "p3"])),
        st.tuples(st.just("edit"), st.sampled_from(["p1", "p2", "p3", "p4"]), texts),
        st.tuples(st.just("delete"), st.sampled_from(["p1", "p2", "p3", "p4"])),
        st.tuples(st.just("reset")),
    ),
    max_size=25,
)


async def _check(url: str, ops: list[tuple[object, ...]], limits: list[int]) -> None:
    storage = await open_storage(url, migrate=False)
    try:
        conversation = await storage.conversation("discord", "c", default_character="aria")
        await storage.reset_conversation(conversation.id)
        model: list[Modelled] = []
        for op in ops:
            kind = op[0]
            if kind == "add":
                role, text = op[1], str(op[2])
                stored = await storage.add_message(
                    NewMessage(conversation.id, role, "u", "U", text)  # type: ignore[arg-type]
                )
                model.append(Modelled(stored, storable_text(text)))
            elif kind == "flag" and model:
                target = model[int(str(op[1])) % len(model)]
                await storage.flag_message(target.id, 5)
                target.flagged = True
            elif kind == "show" and model:
                target = model[int(str(op[1])) % len(model)]
                await storage.set_delivered(target.stored, [str(op[2])])
                target.shown_as = str(op[2])
            elif kind == "edit":
                edited = await storage.edit_message(conversation.id, str(op[1]), str(op[2]))
                matching = [m for m in model if m.shown_as == op[1]]
                for message in matching:
                    message.text = storable_text(str(op[2]))
                assert edited == bool(matching)
            elif kind == "delete":
                deleted = await storage.delete_message(conversation.id, str(op[1]))
                assert deleted == any(m.shown_as == op[1] for m in model)
                model = [m for m in model if m.shown_as != op[1]]
            elif kind == "reset":
                assert await storage.reset_conversation(conversation.id) == len(model)
                model = []

        promptable = [m for m in model if not m.flagged]
        for limit in limits:
            window = await storage.history_window(conversation.id, limit)
            expected = promptable[-limit:] if limit > 0 else []
            assert [(m.id, m.text) for m in window] == [(m.id, m.text) for m in expected]
    finally:
        await storage.close()


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=operations, limits=st.lists(st.integers(0, 30), min_size=1, max_size=3))
@example(
    ops=[
        ("add", "user", "a\x00b"),
        ("add", "assistant", "b"),
        ("show", 1, "p1"),
        ("edit", "p1", "\ud800"),
        ("flag", 0),
    ],
    limits=[0, 1, 5],
)
def test_history_window_matches_a_list_model(
    tmp_path: Path, ops: list[tuple[object, ...]], limits: list[int]
) -> None:
    url = f"sqlite:///{tmp_path / 'property.sqlite3'}"
    upgrade(url)  # once per file; later calls find the schema at head
    asyncio.run(_check(url, ops, limits))
