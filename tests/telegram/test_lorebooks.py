"""/lorebooks: group admins attach world books to a chat (the words: tests/characters/lore)."""

from __future__ import annotations

import functools

from bot.llm.fake import FakeM2Her
from bot.platforms.telegram.app import TelegramBot
from tests.standins.telegram import TelegramStandIn
from tests.telegram.conftest import said_back


async def test_group_admins_attach_a_world_book(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    alice, bob = tg.add_user("Alice"), tg.add_user("Bob")
    group = tg.group("Tavern", [alice, bob], admins=[alice])

    said = functools.partial(said_back, tg, group)

    tg.user_says(group, bob, "/lorebooks")
    await said("World books in this chat: none.\nAvailable: port-sable (Port Sable).")
    tg.user_says(group, bob, "/lorebooks add port-sable")
    await said("Only the group's admins")
    tg.user_says(group, alice, "/lorebooks add Port Sable")
    await said("World books in this chat: port-sable (Port Sable).")
    tg.user_says(group, bob, "Aria, anything new at the docks?")
    await said("Aria heard Bob")
    system = fake_m2her.requests[-1].body["messages"][0]["content"]
    assert "Pier 9 belongs to the Halloran Shipping Company" in system
