"""Every command, its inline keyboard and its admin check, end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.conversation.manager import ManagerSettings
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Error
from bot.platforms.telegram.app import TelegramBot
from tests.standins.telegram import Chat, Message, TelegramStandIn, User
from tests.telegram.conftest import CHARACTERS_DIR, WAIT, BotFactory, ManagerFactory


async def _said(
    tg: TelegramStandIn, chat: Chat, predicate: str, thread: int | None = None
) -> Message:
    """Wait for a bot message in ``chat`` whose text contains ``predicate``; return it."""

    def found() -> Message | None:
        for message in reversed(chat.bot_messages(thread_id=thread)):
            if predicate in message.text:
                return message
        return None

    await tg.wait_until(lambda: found() is not None, timeout=WAIT, what=repr(predicate))
    message = found()
    assert message is not None
    return message


async def _answered(tg: TelegramStandIn, query_id: str) -> dict[str, object]:
    await tg.wait_until(lambda: tg.callback_answer(query_id) is not None, timeout=WAIT)
    answer = tg.callback_answer(query_id)
    assert answer is not None
    return answer


@pytest.fixture
def group(tg: TelegramStandIn) -> tuple[User, User, Chat]:
    """Alice (admin) and Bob (member) in a group."""
    alice, bob = tg.add_user("Alice", "alice"), tg.add_user("Bob", "bob")
    return alice, bob, tg.group("Tavern", [alice, bob], admins=[alice], supergroup=True)


async def test_commands_are_registered_for_private_chats_groups_and_admins(
    tg: TelegramStandIn, bot: TelegramBot
) -> None:
    private = tg.commands_for({"type": "all_private_chats"}) or []
    groups = tg.commands_for({"type": "all_group_chats"}) or []
    admins = tg.commands_for({"type": "all_chat_administrators"}) or []
    names = {"start", "character", "reset", "persona", "forget", "usage", "nudges", "memory"}
    assert {c["command"] for c in private} == names
    assert {c["command"] for c in groups} == names
    assert {c["command"] for c in admins} == names | {"triggers", "lorebooks", "moderation"}


async def test_start_greets_once_and_explains(tg: TelegramStandIn, bot: TelegramBot) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "/start")
    greeting = await _said(tg, dm, "A visitor, at this hour?")
    help_text = await _said(tg, dm, "/persona")
    assert greeting.message_id < help_text.message_id
    assert "Alice" in greeting.text  # {{user}} filled in
    assert "@troupe_bot" in help_text.text
    tg.user_says(dm, alice, "/start")
    await tg.wait_until(lambda: len(dm.bot_messages()) == 3, timeout=WAIT)
    assert "/persona" in dm.bot_messages()[-1].text  # help again, no second greeting


async def test_character_keyboard_switches_the_main_character(
    tg: TelegramStandIn, bot: TelegramBot
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "/character")
    menu = await _said(tg, dm, "Main character: Aria")
    assert {b["callback_data"] for b in menu.buttons} >= {"char:main:bram", "char:scene:mara"}
    query = tg.press(menu, alice, "char:main:bram")
    assert (await _answered(tg, query))["text"] == "Now talking to Bram Oakbarrel."
    await tg.wait_until(lambda: menu.text.startswith("Main character: Bram"), timeout=WAIT)
    assert "✓ Bram Oakbarrel" in [b["text"] for b in menu.buttons]  # the keyboard stays
    tg.user_says(dm, alice, "a drink, please")
    await _said(tg, dm, "Bram Oakbarrel heard Alice")
    tg.user_says(dm, alice, "/character mara quill")
    await _said(tg, dm, "Now talking to Mara Quill.")
    tg.user_says(dm, alice, "/character nobody")
    await _said(tg, dm, "nobody")


async def test_only_group_admins_change_characters(
    tg: TelegramStandIn, bot: TelegramBot, group: tuple[User, User, Chat]
) -> None:
    alice, bob, chat = group
    tg.user_says(chat, bob, "/character mara")
    await _said(tg, chat, "Only the group's admins")
    tg.user_says(chat, bob, "/character")
    menu = await _said(tg, chat, "Main character: Aria")  # anyone may look
    refused = tg.press(menu, bob, "char:main:mara")
    answer = await _answered(tg, refused)
    assert answer["text"] == "Only the group's admins can do that."
    assert answer["show_alert"] is True
    assert menu.text.startswith("Main character: Aria")
    accepted = tg.press(menu, alice, "char:main:mara")
    await _answered(tg, accepted)
    assert menu.text.startswith("Main character: Mara Quill")
    tg.user_says(chat, alice, "/character bram")
    await _said(tg, chat, "Now talking to Bram Oakbarrel.")


async def test_a_scene_heads_each_reply_with_the_speaker_and_replies_go_to_that_character(
    tg: TelegramStandIn, bot: TelegramBot, group: tuple[User, User, Chat]
) -> None:
    alice, bob, chat = group
    tg.user_says(chat, alice, "/triggers scene_turns 1")  # characters do not answer each other
    await _said(tg, chat, "In a scene, characters do not answer each other.")
    tg.user_says(chat, alice, "/character")
    menu = await _said(tg, chat, "Main character: Aria")
    await _answered(tg, tg.press(menu, alice, "char:scene:bram"))
    assert "Also in the scene: Bram Oakbarrel." in menu.text
    tg.user_says(chat, bob, "Bram, pour me one")
    brams = await _said(tg, chat, "Bram Oakbarrel heard Bob")
    assert brams.text.startswith("Bram Oakbarrel\n")
    assert brams.entities[0] == {"type": "bold", "offset": 0, "length": len("Bram Oakbarrel")}
    tg.user_says(chat, alice, "@troupe_bot evening")
    arias = await _said(tg, chat, "Aria heard Alice")
    assert arias.text.startswith("Aria\n")
    tg.user_says(chat, alice, "and for me?", reply_to=brams)
    await _said(tg, chat, "Bram Oakbarrel heard Alice")
    await _answered(tg, tg.press(menu, alice, "char:scene:bram"))  # out again
    tg.user_says(chat, alice, "@troupe_bot alone now?")
    alone = await _said(tg, chat, "“@troupe_bot alone now?”")
    assert alone.text.startswith("Aria heard")  # one character: no header
    refused = tg.press(menu, alice, "char:scene:aria")  # the main character cannot leave
    assert "main character" in str((await _answered(tg, refused))["text"])


async def test_reset_asks_first_and_only_admins_may(
    tg: TelegramStandIn, bot: TelegramBot, group: tuple[User, User, Chat]
) -> None:
    alice, bob, chat = group
    tg.user_says(chat, alice, "@troupe_bot remember this")
    await _said(tg, chat, "Aria heard Alice")
    tg.user_says(chat, bob, "/reset")
    await _said(tg, chat, "Only the group's admins")
    tg.user_says(chat, alice, "/reset")
    question = await _said(tg, chat, "Forget this whole conversation with Aria?")
    refused = tg.press(question, bob, "reset:yes")
    assert (await _answered(tg, refused))["show_alert"] is True
    await _answered(tg, tg.press(question, alice, "reset:no"))
    assert question.text == "Cancelled; nothing was changed."
    assert question.buttons == []
    tg.user_says(chat, alice, "/reset")
    question = await _said(tg, chat, "Forget this whole conversation")
    await _answered(tg, tg.press(question, alice, "reset:yes"))
    assert question.text == "Conversation reset (2 messages forgotten)."  # commands aren't kept


async def test_persona_is_sent_as_user_system(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "/persona")
    await _said(tg, dm, "You have no persona")
    tg.user_says(dm, alice, "/persona A wandering cartographer with <ink> & maps")
    await _said(tg, dm, "Persona set.")
    tg.user_says(dm, alice, "hello")
    await _said(tg, dm, "Aria heard Alice")
    user_system = [
        m for m in fake_m2her.requests[-1].body["messages"] if m["role"] == "user_system"
    ]
    assert user_system[0]["content"] == "A wandering cartographer with <ink> & maps"
    assert user_system[0]["name"] == "Alice"
    tg.user_says(dm, alice, "/persona")
    await _said(tg, dm, "Your persona: A wandering cartographer with <ink> & maps")
    tg.user_says(dm, alice, "/persona clear")
    await _said(tg, dm, "Persona cleared.")
    tg.user_says(dm, alice, "/persona " + "x" * 1001)
    await _said(tg, dm, "at most 1000 characters")


async def test_forget_erases_only_for_the_person_who_asked(
    tg: TelegramStandIn, bot: TelegramBot, group: tuple[User, User, Chat]
) -> None:
    alice, bob, chat = group
    tg.user_says(chat, bob, "@troupe_bot hi, I'm Bob")
    await _said(tg, chat, "Aria heard Bob")
    tg.user_says(chat, bob, "/forget")
    question = await _said(tg, chat, "Erase everything stored about you")
    refused = tg.press(question, alice, f"forget:{bob.id}:yes")
    assert (await _answered(tg, refused))["text"] == "Only the person who asked can answer this."
    await _answered(tg, tg.press(question, bob, f"forget:{bob.id}:yes"))
    assert question.text.startswith("Erased 2 messages")  # /forget is not stored; hi is


async def test_usage_counts_replies_and_tokens(tg: TelegramStandIn, bot: TelegramBot) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "/usage")
    await _said(tg, dm, "You: 0 tokens in 0 replies")
    tg.user_says(dm, alice, "hello")
    await _said(tg, dm, "Aria heard Alice")
    tg.user_says(dm, alice, "/usage")
    usage = await _said(tg, dm, "in 1 reply (≈ $0.0")
    assert usage.text.startswith("You: ")
    assert "\nThis chat: " in usage.text
    assert usage.text.count(" in 1 reply (≈ $0.0") == 2


async def test_moderation_is_for_group_admins_and_shows_policy_and_events(
    tg: TelegramStandIn,
    bot: TelegramBot,
    group: tuple[User, User, Chat],
    fake_m2her: FakeM2Her,
) -> None:
    alice, bob, chat = group
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "/moderation")
    await _said(tg, dm, "for group admins, in the group")
    tg.user_says(chat, bob, "/moderation")
    await _said(tg, chat, "Only the group's admins")
    tg.user_says(chat, alice, "/moderation")
    shown = await _said(tg, chat, "Blocked messages: notice. Blocked replies: in_character.")
    assert "No moderation events here." in shown.text
    tg.user_says(chat, alice, "/moderation output silent")
    await _said(tg, chat, "Blocked replies: silent.")
    tg.user_says(chat, alice, "/moderation input sometimes")
    await _said(tg, chat, "Usage: /moderation input|output")
    fake_m2her.enqueue(Error(1026, input_sensitive_type=5))
    posted = len(chat.bot_messages())
    tg.user_says(chat, bob, "@troupe_bot something abusive")
    await tg.wait_until(lambda: len(chat.bot_messages()) == posted + 1, timeout=WAIT)
    assert "Aria heard" not in chat.bot_messages()[-1].text  # a notice, not a reply
    tg.user_says(chat, alice, "/moderation")
    events = await _said(tg, chat, "Recent events:")
    assert f"a message by user {bob.id} was flagged as abuse." in events.text


async def test_an_unknown_command_in_private_gets_a_hint(
    tg: TelegramStandIn, bot: TelegramBot
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "/dance")
    await _said(tg, dm, "I don't know that command")


@pytest.fixture
def long_id_characters(tmp_path: Path) -> Path:
    """Bram, and Wren, whose file name (so id) is 62 characters long."""
    folder = tmp_path / "characters"
    folder.mkdir()
    bram = (CHARACTERS_DIR / "bram.yaml").read_text()
    (folder / "bram.yaml").write_text(bram)
    wren = bram.replace("name: Bram Oakbarrel", "name: Wren").replace("nicknames:", "# nicknames:")
    long_id = "the-wandering-minstrel-of-the-long-northern-roads-and-rivers-x"
    (folder / f"{long_id}.yaml").write_text(wren)
    return folder


async def test_buttons_of_long_character_ids_fit_telegrams_64_bytes(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
    long_id_characters: Path,
) -> None:
    manager = await make_manager(
        characters=long_id_characters, settings=ManagerSettings(default_character="bram")
    )
    await start_bot(manager)
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "/character")
    menu = await _said(tg, dm, "Main character: Bram")
    data = [b["callback_data"] for b in menu.buttons if b["text"] == "Wren"]
    assert len(data[0].encode()) <= 64
    await _answered(tg, tg.press(menu, alice, data[0]))
    assert menu.text.startswith("Main character: Wren")
    again = tg.press(menu, alice, data[0])  # already the main one: nothing changes, no error
    assert (await _answered(tg, again))["text"] == "Now talking to Wren."
    await asyncio.sleep(0.2)
    assert not any("went wrong" in m.text for m in dm.bot_messages())


async def test_editing_a_command_does_not_run_it_again(
    tg: TelegramStandIn, bot: TelegramBot
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    command = tg.user_says(dm, alice, "/persona A sailor")
    await _said(tg, dm, "Persona set.")
    tg.user_edits(command, "/persona A pirate")
    tg.user_says(dm, alice, "/persona")
    await _said(tg, dm, "Your persona: A sailor")
    assert len(dm.bot_messages()) == 2


async def test_memory_shows_each_person_their_own_and_only_admins_change_the_story(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
    group: tuple[User, User, Chat],
) -> None:
    manager = await make_manager(
        settings=ManagerSettings(default_character="aria", history_limit=4)
    )
    await start_bot(manager)
    alice, bob, chat = group
    for who, text in ((bob, "I'm a fisherman, call me Bobby."), (alice, "I am the innkeeper.")):
        tg.user_says(chat, who, f"@troupe_bot {text}")
        await _said(tg, chat, f"Aria heard {who.first_name}")
    tg.user_says(chat, bob, "@troupe_bot nice")
    await _said(tg, chat, "“@troupe_bot nice”")
    assert await manager.drain(WAIT)  # the turn ends after its reply is shown
    await manager.recall.settled()

    tg.user_says(chat, bob, "/memory")
    shown = await _said(tg, chat, "What Aria knows about you:")
    assert shown.text.startswith("What Aria remembers of the story so far:\n1. Lines remembered:")
    assert "2. is a fisherman\n3. wants to be called Bobby\n" in shown.text
    assert "innkeeper" not in shown.text.split("What Aria knows about you:")[1]

    tg.user_says(chat, bob, "/memory forget 1")
    await _said(tg, chat, "Only the group's admins can do that.")
    tg.user_says(chat, bob, "/memory fix 3 wants to be called Rob")
    await _said(tg, chat, "Item 3 now reads: wants to be called Rob")
    tg.user_says(chat, alice, "/memory forget 1")
    await _said(tg, chat, "Aria no longer remembers item 1.")
    tg.user_says(chat, bob, "/memory")
    shown = await _said(tg, chat, "1. is a fisherman\n2. wants to be called Rob")
    assert "story so far" not in shown.text
    tg.user_says(chat, bob, "/memory fix two words")
    await _said(tg, chat, "Use /memory, /memory forget N or /memory fix N new text.")

    tg.user_says(chat, bob, "/usage")
    usage = await _said(tg, chat, "Keeping this chat's memory: ")
    assert "in 1 memory update (≈ $" in usage.text
