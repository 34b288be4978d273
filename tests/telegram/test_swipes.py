"""Swipes on Telegram: the inline keyboard under a character's newest reply regenerates,
browses and continues it in place; edits of the last message regenerate its reply."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import Bot

from bot.conversation import commands
from bot.conversation.manager import ConversationManager
from bot.conversation.sink import SwipeControls
from bot.llm.errors import OutputBlocked
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Error, Reply
from bot.platforms.streaming import Buttons, Pace, Rate, StreamingReply, WriteBudget
from bot.platforms.telegram.sink import swipe_keyboard
from bot.platforms.telegram.transport import ChatTarget, TelegramTransport
from tests.standins.telegram import TelegramStandIn
from tests.standins.telegram.model import Call, Chat, Message, User
from tests.telegram.conftest import WAIT, BotFactory, ManagerFactory


def _data(message: Message, label: str) -> str:
    """The callback data of the button labelled ``label`` (its start) on ``message``."""
    for button in message.buttons:
        if str(button["text"]).startswith(label):
            return str(button["callback_data"])
    raise AssertionError(f"no button {label!r} on {[b['text'] for b in message.buttons]}")


def _labels(message: Message) -> list[str]:
    return [str(button["text"]) for button in message.buttons]


async def _answer(tg: TelegramStandIn, query_id: str) -> dict[str, Any]:
    await tg.wait_until(lambda: tg.callback_answer(query_id) is not None, timeout=WAIT)
    answer = tg.callback_answer(query_id)
    assert answer is not None
    return answer


async def _reply_with_keyboard(tg: TelegramStandIn, chat: Chat, text: str) -> Message:
    """Wait until the bot's newest message reads ``text`` and has its keyboard."""

    def ready() -> bool:
        messages = chat.bot_messages()
        return bool(messages) and messages[-1].text == text and bool(messages[-1].buttons)

    await tg.wait_until(ready, timeout=WAIT, what=repr(text))
    return chat.bot_messages()[-1]


def _sent_history(fake: FakeM2Her) -> list[str]:
    """The contents of the messages of the newest request to the model, after the system."""
    messages = fake.requests[-1].body["messages"]
    return [str(m["content"]) for m in messages if m["role"] in ("user", "assistant")]


async def test_a_reply_is_regenerated_browsed_and_continued_in_place(
    tg: TelegramStandIn, bot: object, fake_m2her: FakeM2Her
) -> None:
    fake_m2her.enqueue(
        Reply(text="The first answer."),
        Reply(text="The second answer."),
        Reply(text="and then some more."),
    )
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "hello")
    reply = await _reply_with_keyboard(tg, dm, "The first answer.")
    assert _labels(reply) == ["↻ Regenerate", "⏩ Continue"]

    await _answer(tg, tg.press(reply, alice, _data(reply, "↻")))
    reply = await _reply_with_keyboard(tg, dm, "The second answer.")
    assert len(dm.bot_messages()) == 1  # the same message, edited
    assert _labels(reply) == ["◀", "2/2", "▶", "↻ Regenerate", "⏩ Continue"]
    # The regeneration was written without the answer it replaces.
    assert "The first answer." not in _sent_history(fake_m2her)
    assert _sent_history(fake_m2her)[-1] == "hello"

    await _answer(tg, tg.press(reply, alice, _data(reply, "◀")))
    reply = await _reply_with_keyboard(tg, dm, "The first answer.")
    assert "1/2" in _labels(reply)
    await _answer(tg, tg.press(reply, alice, _data(reply, "▶")))
    reply = await _reply_with_keyboard(tg, dm, "The second answer.")

    await _answer(tg, tg.press(reply, alice, _data(reply, "⏩")))
    reply = await _reply_with_keyboard(tg, dm, "The second answer. and then some more.")
    assert len(dm.bot_messages()) == 1
    # The continuation saw the chosen alternative only, as the last message.
    assert _sent_history(fake_m2her)[-2:] == ["hello", "The second answer."]

    # History holds the alternative shown: the next turn's prompt has it, and no other.
    fake_m2her.enqueue(Reply(text="Next."))
    tg.user_says(dm, alice, "and?")
    await _reply_with_keyboard(tg, dm, "Next.")
    assert _sent_history(fake_m2her)[-3:] == [
        "hello",
        "The second answer. and then some more.",
        "and?",
    ]


async def test_only_the_person_answered_or_an_admin_may_swipe_and_old_buttons_are_too_late(
    tg: TelegramStandIn, bot: object, fake_m2her: FakeM2Her
) -> None:
    alice, bob, carol = tg.add_user("Alice"), tg.add_user("Bob"), tg.add_user("Carol")
    dave = tg.add_user("Dave")
    group = tg.group("Tavern", [alice, bob, carol, dave], admins=[carol, alice])
    fake_m2her.enqueue(Reply(text="For Bob."), Reply(text="Again for Bob."))
    tg.user_says(group, bob, "Aria, a story please")
    reply = await _reply_with_keyboard(tg, group, "For Bob.")

    refused = await _answer(tg, tg.press(reply, alice, _data(reply, "↻")))
    # Alice is an admin of the group: a moderator may.
    assert refused.get("show_alert") is not True
    await _reply_with_keyboard(tg, group, "Again for Bob.")

    denied = await _answer(tg, tg.press(reply, dave, _data(reply, "↻")))  # a plain member
    assert denied["text"] == commands.NOT_YOUR_REPLY
    assert denied["show_alert"] is True
    assert reply.text == "Again for Bob."

    fake_m2her.enqueue(Reply(text="A newer reply."))
    tg.user_says(group, bob, "Aria, more")
    await _reply_with_keyboard(tg, group, "A newer reply.")
    late = await _answer(tg, tg.press(reply, bob, _data(reply, "◀")))
    assert late["text"] == commands.TOO_LATE
    assert reply.text == "Again for Bob."
    await tg.wait_until(lambda: not reply.buttons, timeout=WAIT, what="the keyboard removed")


async def test_a_failed_regeneration_leaves_the_previous_reply_shown(
    tg: TelegramStandIn, bot: object, fake_m2her: FakeM2Her
) -> None:
    # The new text is moderated like any reply: blocked, it is never shown.
    fake_m2her.enqueue(Reply(text="Keep me."), Error(1027))
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "hello")
    reply = await _reply_with_keyboard(tg, dm, "Keep me.")
    await _answer(tg, tg.press(reply, alice, _data(reply, "↻")))
    await tg.wait_until(lambda: len(dm.bot_messages()) == 2, timeout=WAIT, what="a notice")
    notice = dm.bot_messages()[1].text
    assert notice == OutputBlocked.default_user_message
    assert reply.text == "Keep me."
    assert _labels(reply) == ["↻ Regenerate", "⏩ Continue"]


async def test_buttons_on_a_reply_still_work_after_a_restart(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
    fake_m2her: FakeM2Her,
) -> None:
    first = await start_bot(await make_manager())
    fake_m2her.enqueue(Reply(text="Before the restart."), Reply(text="After the restart."))
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "hello")
    reply = await _reply_with_keyboard(tg, dm, "Before the restart.")
    await first.stop()

    manager: ConversationManager = await make_manager()  # a new process on the same file
    await start_bot(manager)
    await _answer(tg, tg.press(reply, alice, _data(reply, "↻")))
    reply = await _reply_with_keyboard(tg, dm, "After the restart.")
    assert "2/2" in _labels(reply)


async def test_editing_the_last_message_regenerates_its_reply_while_it_is_the_newest(
    tg: TelegramStandIn, bot: object, fake_m2her: FakeM2Her
) -> None:
    fake_m2her.enqueue(
        Reply(text="About cats."), Reply(text="About dogs."), Reply(text="Something else.")
    )
    alice: User = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    said = tg.user_says(dm, alice, "tell me about cats")
    await _reply_with_keyboard(tg, dm, "About cats.")
    tg.user_edits(said, "tell me about dogs")
    reply = await _reply_with_keyboard(tg, dm, "About dogs.")
    assert len(dm.bot_messages()) == 1
    assert _sent_history(fake_m2her)[-1] == "tell me about dogs"

    tg.user_says(dm, alice, "thanks")
    await _reply_with_keyboard(tg, dm, "Something else.")
    requests = len(fake_m2her.requests)
    tg.user_edits(said, "tell me about birds")  # its reply is no longer the newest
    fake_m2her.enqueue(Reply(text="Goodnight."))
    tg.user_says(dm, alice, "goodnight")
    await _reply_with_keyboard(tg, dm, "Goodnight.")
    assert reply.text == "About dogs."
    assert len(fake_m2her.requests) == requests + 1  # the goodnight, no regeneration
    assert "tell me about birds" in _sent_history(fake_m2her)  # the edit reached history


# -- what the keyboard costs ----------------------------------------------------------------

WRITES = ("sendMessage", "editMessageText", "editMessageReplyMarkup", "deleteMessage")


def _writes(tg: TelegramStandIn, chat: Chat) -> list[Call]:
    """The bot's writes in ``chat`` that Telegram took, in order."""
    return [c for c in tg.calls if c.method in WRITES and c.ok and c.params["chat_id"] == chat.id]


async def _settled(tg: TelegramStandIn, chat: Chat, text: str) -> Message:
    """The reply reading ``text`` with its keyboard, once a write that would follow it
    (a keyboard of its own) has had time to arrive."""
    reply = await _reply_with_keyboard(tg, chat, text)
    await asyncio.sleep(0.3)
    return reply


def _markup_labels(call: Call) -> list[str]:
    rows = call.params["reply_markup"]["inline_keyboard"]
    return [str(button["text"]) for row in rows for button in row]


async def test_a_private_reply_is_one_post_that_carries_its_keyboard(
    tg: TelegramStandIn, bot: object, fake_m2her: FakeM2Her
) -> None:
    fake_m2her.enqueue(Reply(text="All at once, traveller."))
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "hello")
    await _settled(tg, dm, "All at once, traveller.")
    # Streamed through a draft, then posted once: text and keyboard in the same request.
    writes = _writes(tg, dm)
    assert [c.method for c in writes] == ["sendMessage"]
    assert _markup_labels(writes[0]) == ["↻ Regenerate", "⏩ Continue"]


async def test_a_streamed_group_reply_gets_its_keyboard_in_its_final_edit(
    tg: TelegramStandIn, bot: object, fake_m2her: FakeM2Her
) -> None:
    alice = tg.add_user("Alice", "alice")
    group = tg.group("Tavern", [alice, tg.add_user("Bob")])
    text = "The door creaks open; rain drums on the shutters and the fire spits and sighs."
    fake_m2her.chunk_chars = 8
    fake_m2her.enqueue(Reply(text=text, chunk_delay=0.05))
    tg.user_says(group, alice, "@troupe_bot a story")
    reply = await _settled(tg, group, text)
    writes = _writes(tg, group)
    methods = [c.method for c in writes]
    assert methods[0] == "sendMessage"
    assert len(writes) >= 2, "the reply was shown while it streamed"
    # Every write changed the text, and only the last one, the final text, has the keyboard.
    assert set(methods[1:]) == {"editMessageText"}
    assert len(reply.texts) == len(writes)
    assert reply.texts[-1] == text
    assert _markup_labels(writes[-1]) == ["↻ Regenerate", "⏩ Continue"]
    assert all("reply_markup" not in c.params for c in writes[:-1])


async def test_a_reply_already_final_on_screen_gets_its_keyboard_alone(
    tg: TelegramStandIn,
) -> None:
    # The stream ended right after an edit that showed the whole text: the cheapest correct
    # finish is the keyboard alone, one write, and no second copy of the text.
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    markup = swipe_keyboard(SwipeControls(7, 0, 1, generated=True))
    assert markup is not None
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as ptb:
        transport = TelegramTransport(ptb, ChatTarget(dm.id))
        reply = StreamingReply(transport, WriteBudget(Pace((Rate(10, 1.0),), preview_gap=0.0)))
        await reply.begin()
        await reply.delta("Said in one breath.")
        await tg.wait_until(lambda: [m.text for m in dm.bot_messages()] == ["Said in one breath."])
        shown = len(_writes(tg, dm))
        ids = await reply.finish("Said in one breath.", Buttons(transport, markup))
    after = _writes(tg, dm)[shown:]
    assert [c.method for c in after] == ["editMessageReplyMarkup"]
    assert ids == [str(dm.bot_messages()[0].message_id)]
    assert _labels(dm.bot_messages()[0]) == ["↻ Regenerate", "⏩ Continue"]
