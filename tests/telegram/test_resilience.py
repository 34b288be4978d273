"""Moderation, failures and restarts: every failure has a visible outcome, the bot keeps
going after a bad update, a blocked user is handled quietly, and nothing is lost on restart."""

from __future__ import annotations

import logging

import pytest

from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ConversationManager
from bot.conversation.moderation import ModerationAction, ModerationPolicy
from bot.conversation.settings import ServerSettings
from bot.llm.errors import AuthenticationError, OutputBlocked
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Error, Reply
from bot.platforms.telegram.app import TelegramBot
from tests.standins.telegram import Chat, TelegramStandIn, User
from tests.telegram.conftest import WAIT, BotFactory, ManagerFactory

SEALED = "Aria's lantern dims for a moment. Hm, that page is sealed, even for me."


@pytest.fixture
def group(tg: TelegramStandIn) -> tuple[User, Chat]:
    alice = tg.add_user("Alice", "alice")
    return alice, tg.group("Tavern", [alice, tg.add_user("Bob")], admins=[alice])


def _visible(chat: Chat) -> list[str]:
    return [m.text for m in chat.bot_messages()]


async def test_flagged_output_is_taken_down_and_replaced_in_character(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her, group: tuple[User, Chat]
) -> None:
    alice, chat = group
    fake_m2her.chunk_chars = 8
    fake_m2her.enqueue(Error(1027, output_sensitive_type=2, after_chunks=3, chunk_delay=0.15))
    tg.user_says(chat, alice, "@troupe_bot something risky")
    await tg.wait_until(
        lambda: len(_visible(chat)) == 1 and _visible(chat)[0].startswith(SEALED), timeout=WAIT
    )
    partial = [m for m in chat.messages if m.deleted and m.sender.is_bot]
    assert len(partial) == 1  # the streamed part was shown, then deleted
    assert partial[0].texts[0].startswith("Aria hea")
    assert _visible(chat)[0].endswith("Let us try another shelf, Alice.")


async def test_flagged_output_in_a_draft_is_cleared(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    fake_m2her.chunk_chars = 8
    fake_m2her.enqueue(Error(1027, output_sensitive_type=2, after_chunks=3, chunk_delay=0.15))
    tg.user_says(dm, alice, "something risky")
    await tg.wait_until(lambda: len(_visible(dm)) == 1, timeout=WAIT)
    assert _visible(dm)[0].startswith(SEALED)
    (draft,) = dm.drafts.values()
    assert draft.texts[0].startswith("Aria hea")  # the partial text was only a draft
    assert draft.text == ""  # and it was cleared


async def test_silent_policy_posts_nothing_and_blocked_input_gets_a_notice(
    tg: TelegramStandIn,
    bot: TelegramBot,
    manager: ConversationManager,
    fake_m2her: FakeM2Her,
    group: tuple[User, Chat],
) -> None:
    alice, chat = group
    policy = ModerationPolicy(on_blocked_output=ModerationAction.SILENT)
    await manager.set_server_settings("telegram", str(chat.id), ServerSettings(policy))
    fake_m2her.enqueue(
        Error(1027, output_sensitive_type=2, after_chunks=2, chunk_delay=0.1),
        Error(1026, input_sensitive_type=5),
    )
    tg.user_says(chat, alice, "@troupe_bot risky")
    await tg.wait_for("deleteMessage", timeout=WAIT)  # the streamed part, taken down silently
    tg.user_says(chat, alice, "@troupe_bot abusive")
    notice = "That message was blocked by the model's content filter."
    await tg.wait_until(lambda: _visible(chat) == [notice], timeout=WAIT)
    events = await manager.moderation_log("telegram", chat_id=str(chat.id))
    assert sorted(e.direction for e in events) == ["input", "output"]


async def test_a_model_failure_is_a_short_notice(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    fake_m2her.enqueue(Error(1004))
    tg.user_says(dm, alice, "hello?")
    notice = AuthenticationError("x").user_message
    await tg.wait_until(lambda: _visible(dm) == [notice], timeout=WAIT)
    assert notice != OutputBlocked("x").user_message


async def test_a_failed_update_is_reported_and_the_bot_goes_on(
    tg: TelegramStandIn, bot: TelegramBot, caplog: pytest.LogCaptureFixture
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.fail_next("getChatAdministrators", 500, "Internal Server Error")
    bob = tg.add_user("Bob")
    chat = tg.group("G", [alice, bob], admins=[alice])
    with caplog.at_level(logging.ERROR, logger="bot.platforms.telegram"):
        tg.user_says(chat, alice, "/reset")  # the admin check fails on Telegram's side
        await tg.wait_until(
            lambda: _visible(chat) == ["Something went wrong on our side; please try again."],
            timeout=WAIT,
        )
    assert "an update failed" in caplog.text
    tg.user_says(dm, alice, "still there?")
    await tg.wait_until(lambda: any("Aria heard" in t for t in _visible(dm)), timeout=WAIT)


async def test_a_user_who_blocked_the_bot_is_handled_quietly(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = tg.add_user("Alice"), tg.add_user("Bob")
    dm, other = tg.private_chat(alice), tg.private_chat(bob)
    fake_m2her.enqueue(Reply(delay=0.3))  # Alice blocks the bot while it thinks
    with caplog.at_level(logging.INFO, logger="bot.platforms.telegram"):
        tg.user_says(dm, alice, "hi")
        await tg.wait_for("sendChatAction", lambda c: c.params["chat_id"] == dm.id, timeout=WAIT)
        tg.block(alice)
        tg.user_says(other, bob, "hello")
        await tg.wait_until(
            lambda: any("Aria heard Bob" in t for t in _visible(other)), timeout=WAIT
        )
        await tg.wait_until(lambda: not tg.pending_updates, timeout=WAIT)
        await tg.wait_until(lambda: "reply in chat" in caplog.text, timeout=WAIT)
    assert _visible(dm) == []
    assert f"the bot can no longer post in chat {dm.id} (kicked)" in caplog.text
    forbidden = [c for c in tg.calls if c.status == 403]
    assert len(forbidden) <= 2  # one refused call tells it; no retry storm
    assert not [
        r for r in caplog.records if r.name.startswith("bot") and r.levelno >= logging.WARNING
    ]


async def test_a_restart_mid_conversation_loses_nothing(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
    fake_m2her: FakeM2Her,
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    first = await start_bot(await make_manager())
    tg.user_says(dm, alice, "my lantern is blue")
    await tg.wait_until(lambda: len(_visible(dm)) == 1, timeout=WAIT)
    await first.stop()
    tg.user_says(dm, alice, "while you were away")  # waits at Telegram for the next process
    manager = await make_manager()
    await start_bot(manager)
    await tg.wait_until(lambda: len(_visible(dm)) == 2, timeout=WAIT)
    turns = [m["content"] for m in fake_m2her.requests[-1].body["messages"] if m["role"] == "user"]
    assert turns == ["my lantern is blue", "while you were away"]
    key = ConversationKey("telegram", str(dm.id))
    replied = await manager.character_of_message(key, str(dm.bot_messages()[0].message_id))
    assert replied is not None
    assert replied.id == "aria"


async def test_moderation_records_go_to_the_chosen_chat_without_the_content(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    alice, bob = tg.add_user("Alice", "alice"), tg.add_user("Bob", "bob")
    tavern = tg.group("Tavern", [alice, bob], admins=[alice], supergroup=True)
    mods = tg.group("Mods", [alice], admins=[alice])
    tg.user_says(tavern, alice, f"/moderation report {mods.id}")
    await tg.wait_until(
        lambda: any(f"Moderation events go to chat {mods.id}." in t for t in _visible(tavern)),
        timeout=WAIT,
    )
    fake_m2her.enqueue(Error(1026, input_sensitive_type=5))
    flagged = tg.user_says(tavern, bob, "@troupe_bot something vile")
    await tg.wait_until(lambda: len(_visible(mods)) == 1, timeout=WAIT)
    (record,) = _visible(mods)
    assert record.startswith("Content filter: A message by Bob (user")
    assert "“Tavern” was flagged as abuse" in record
    assert f"https://t.me/c/{str(tavern.id).removeprefix('-100')}/{flagged.message_id}" in record
    assert "vile" not in record
    tg.user_says(tavern, alice, "/moderation report off")
    await tg.wait_until(
        lambda: any("Moderation events are not reported." in t for t in _visible(tavern)),
        timeout=WAIT,
    )


async def test_blocking_the_bot_in_the_middle_of_a_draft_is_quiet_too(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her, caplog: pytest.LogCaptureFixture
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    fake_m2her.chunk_chars = 6
    fake_m2her.enqueue(Reply(text="A long and winding answer, " * 4, chunk_delay=0.1))
    with caplog.at_level(logging.INFO, logger="bot.platforms.telegram"):
        tg.user_says(dm, alice, "tell me")
        await tg.wait_for("sendMessageDraft", timeout=WAIT)
        tg.block(alice)
        await tg.wait_until(lambda: "reply in chat" in caplog.text, timeout=WAIT)
    assert _visible(dm) == []
    assert [c.status for c in tg.calls if c.status == 403] == [403]  # then it stops trying
    assert not [
        r for r in caplog.records if r.name.startswith("bot") and r.levelno >= logging.WARNING
    ]


async def test_a_failed_button_press_is_answered_and_reported(
    tg: TelegramStandIn, bot: TelegramBot
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "/character")
    await tg.wait_until(lambda: bool(dm.bot_messages()), timeout=WAIT)
    menu = dm.bot_messages()[0]
    tg.fail_next("editMessageText", 500, "Internal Server Error")
    query = tg.press(menu, alice, "char:main:bram")
    await tg.wait_until(lambda: tg.callback_answer(query) is not None, timeout=WAIT)
    assert tg.callback_answer(query) == {
        "callback_query_id": query,
        "text": "Something went wrong on our side; please try again.",
    }
    await tg.wait_until(lambda: len(_visible(dm)) == 2, timeout=WAIT)
    assert _visible(dm)[1] == "Something went wrong on our side; please try again."
