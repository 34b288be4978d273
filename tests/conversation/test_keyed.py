"""InUse and KeyedLocks: a value (a lock) per key, shared while used, forgotten after."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bot.conversation.keyed import InUse, KeyedLocks


async def test_one_key_runs_one_holder_at_a_time_in_the_order_they_asked() -> None:
    locks: KeyedLocks[int] = KeyedLocks()
    log: list[str] = []

    async def hold(name: str) -> None:
        async with locks.hold(1):
            log.append(f"{name} in")
            await asyncio.sleep(0.01)
            log.append(f"{name} out")

    await asyncio.gather(*(hold(name) for name in "abc"))

    assert log == ["a in", "a out", "b in", "b out", "c in", "c out"]


async def test_different_keys_do_not_wait_for_each_other() -> None:
    locks: KeyedLocks[int] = KeyedLocks()
    inside = asyncio.Event()

    async def first() -> None:
        async with locks.hold(1):
            inside.set()
            await asyncio.sleep(10)

    holder = asyncio.create_task(first())
    await inside.wait()
    async with asyncio.timeout(1):
        async with locks.hold(2):
            pass
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder


async def test_a_lock_is_forgotten_once_nobody_holds_or_waits_for_it() -> None:
    locks: KeyedLocks[int] = KeyedLocks()

    for key in range(1000):
        async with locks.hold(key):
            assert len(locks) == 1

    assert len(locks) == 0


async def test_a_waiter_cancelled_in_line_leaves_no_lock_behind() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("chat"):
            await release.wait()

    async def waiter() -> None:
        async with locks.hold("chat"):
            pass

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    assert len(locks) == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    await held

    assert len(locks) == 0
    async with asyncio.timeout(1), locks.hold("chat"):
        pass  # and the key is usable again


def test_users_of_one_key_share_its_value_until_the_last_is_done() -> None:
    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    values: InUse[str, object] = InUse(make)
    with values.using("a") as first, values.using("a") as second, values.using("b") as other:
        assert first is second
        assert other is not first
        assert len(values) == 2

    assert len(values) == 0
    with values.using("a") as later:
        assert later is not first  # made afresh
    assert len(made) == 3


def test_a_retired_value_stays_with_its_users_and_the_next_user_gets_a_new_one() -> None:
    values: InUse[int, asyncio.Event] = InUse(asyncio.Event)
    assert values.retire(1) is None  # nobody uses it: nothing to retire

    with contextlib.ExitStack() as old_user, contextlib.ExitStack() as new_user:
        old = old_user.enter_context(values.using(1))
        assert values.retire(1) is old
        new = new_user.enter_context(values.using(1))
        assert new is not old
        old_user.close()  # the old value's last user leaves: the new entry stays
        assert len(values) == 1
        with values.using(1) as again:
            assert again is new
    assert len(values) == 0
