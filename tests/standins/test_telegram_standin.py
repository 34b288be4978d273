"""Self-tests of the Telegram Bot API stand-in, driven by an unmodified python-telegram-bot.

Every test runs a real PTB ``Application`` or ``Bot`` against the stand-in over 127.0.0.1 so
that what the adapter will rely on (wire format, error mapping, long polling, webhooks) is
checked end to end.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    Update,
)
from telegram import Message as PTBMessage
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.standins.telegram import (
    RateLimit,
    TelegramStandIn,
    free_loopback_port,
    parse_html,
    parse_markdown_v2,
    utf16_len,
)
from tests.standins.telegram.formatting import ParseError, check_entities, format_text

WAIT = 5.0

# PTB 22 warns whenever RetryAfter.retry_after is read as an int (PTB itself does so).
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


App = Application[Any, Any, Any, Any, Any, Any]


def _application(tg: TelegramStandIn) -> App:
    return (
        ApplicationBuilder()
        .token(tg.token)
        .base_url(tg.base_url)
        .base_file_url(tg.base_file_url)
        .build()
    )


@pytest.fixture
async def tg() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn() as standin:
        yield standin


@pytest.fixture
async def bot(tg: TelegramStandIn) -> AsyncIterator[Bot]:
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as ptb_bot:
        yield ptb_bot


async def _polling(tg: TelegramStandIn, *handlers: Any) -> App:
    app = _application(tg)
    for handler in handlers:
        app.add_handler(handler)
    await app.initialize()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=2)
    await app.start()
    return app


async def _stop(app: App) -> None:
    assert app.updater is not None
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


# -- polling ---------------------------------------------------------------------------------


async def test_polling_delivers_a_message_and_records_the_reply(tg: TelegramStandIn) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        assert update.message.text is not None
        await update.message.reply_text(f"echo: {update.message.text}", do_quote=True)

    app = await _polling(tg, MessageHandler(filters.TEXT, echo))
    try:
        alice = tg.add_user("Alice", "alice")
        chat = tg.private_chat(alice)
        said = tg.user_says(chat, alice, "hello there")
        call = await tg.wait_for("sendMessage", timeout=WAIT)
    finally:
        await _stop(app)
    assert call.ok
    assert call.params["chat_id"] == alice.id
    assert call.params["reply_parameters"]["message_id"] == said.message_id
    reply = chat.bot_messages()[-1]
    assert reply.text == "echo: hello there"
    assert reply.reply_to is said
    assert tg.pending_updates == []  # PTB acknowledged the update with offset
    polls = tg.calls_to("getUpdates")
    assert any(call.params.get("offset") for call in polls[1:])


async def test_long_poll_waits_for_an_update_and_returns_it(tg: TelegramStandIn, bot: Bot) -> None:
    alice = tg.add_user("Alice")
    chat = tg.private_chat(alice)
    loop = asyncio.get_running_loop()
    started = loop.time()
    loop.call_later(0.3, tg.user_says, chat, alice, "late")
    updates = await bot.get_updates(timeout=3)
    assert 0.25 <= loop.time() - started < 2.5
    assert [u.message.text for u in updates if u.message] == ["late"]


async def test_long_poll_times_out_empty_and_offset_acknowledges(
    tg: TelegramStandIn, bot: Bot
) -> None:
    alice = tg.add_user("Alice")
    chat = tg.private_chat(alice)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bot.get_updates(timeout=1) == ()
    assert loop.time() - started >= 0.9
    tg.user_says(chat, alice, "one")
    tg.user_says(chat, alice, "two")
    first = await bot.get_updates(timeout=0, limit=1)
    again = await bot.get_updates(timeout=0)  # nothing confirmed yet: both still there
    assert next(u.update_id for u in again) == first[0].update_id
    assert len(again) == 2
    rest = await bot.get_updates(offset=first[0].update_id + 1, timeout=0)
    assert [u.message.text for u in rest if u.message] == ["two"]


async def test_allowed_updates_filters_and_persists(tg: TelegramStandIn, bot: Bot) -> None:
    alice = tg.add_user("Alice")
    chat = tg.private_chat(alice)
    sent = await bot.send_message(
        chat.id,
        "pick",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]]),
    )
    tg.user_says(chat, alice, "text")
    tg.press(chat.message(sent.message_id) or chat.messages[0], alice, "a")
    only_queries = await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    assert [u.callback_query.data for u in only_queries if u.callback_query] == ["a"]
    later = await bot.get_updates(timeout=0)  # the setting persists without the parameter
    assert all(u.callback_query for u in later)


async def test_a_newer_poll_ends_a_waiting_one_with_conflict(tg: TelegramStandIn, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=3))
    await tg.wait_until(lambda: len(tg.calls_to("getUpdates")) == 1, timeout=WAIT)
    async with Bot(tg.token, base_url=tg.base_url) as second_instance:
        await second_instance.get_updates(timeout=0)
    with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates request"):
        await asyncio.wait_for(first, WAIT)


async def test_close_answers_a_waiting_poll_at_once() -> None:
    tg = TelegramStandIn()
    await tg.start()
    async with Bot(tg.token, base_url=tg.base_url) as bot:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await tg.wait_until(lambda: bool(tg.calls_to("getUpdates")), timeout=WAIT)
        await asyncio.wait_for(tg.close(), WAIT)
        assert await asyncio.wait_for(poll, WAIT) == ()


# -- auth and routing ------------------------------------------------------------------------


async def test_wrong_token_is_unauthorized_and_unknown_method_not_found(
    tg: TelegramStandIn, bot: Bot
) -> None:
    stranger = Bot("999:wrong", base_url=tg.base_url)
    with pytest.raises(InvalidToken):
        await stranger.initialize()  # PTB checks the token with getMe
    assert (tg.calls[-1].status, tg.calls[-1].description) == (401, "Unauthorized")
    with pytest.raises(EndPointNotFound):  # PTB's name for a 404 from do_api_request
        await bot.do_api_request("fooBar", api_kwargs={"x": 1})
    assert tg.calls[-1].status == 404


async def test_get_me_reports_privacy_mode(tg: TelegramStandIn, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.username, me.is_bot, me.can_read_all_group_messages) == ("troupe_bot", True, True)
    tg.can_read_all_group_messages = False
    assert (await bot.get_me()).can_read_all_group_messages is False
    async with (
        TelegramStandIn(bot_username="mira_bot", can_join_groups=False) as other,
        Bot(other.token, base_url=other.base_url) as other_bot,
    ):
        me = await other_bot.get_me()
        assert (me.username, me.can_join_groups) == ("mira_bot", False)


async def test_log_out_and_close_are_harmless(tg: TelegramStandIn, bot: Bot) -> None:
    assert await bot.log_out()
    assert await bot.close()
    assert (await bot.get_me()).username == "troupe_bot"


async def test_json_form_and_multipart_bodies_are_all_understood(tg: TelegramStandIn) -> None:
    alice = tg.add_user("Alice")
    chat = tg.private_chat(alice)
    url = f"{tg.base_url}{tg.token}/sendMessage"
    entities = [{"type": "bold", "offset": 0, "length": 2}]
    async with aiohttp.ClientSession() as session:
        async with session.post(
            url, json={"chat_id": chat.id, "text": "hi!", "entities": entities}
        ) as r:
            assert r.status == 200
        form = {"chat_id": str(chat.id), "text": "form", "disable_notification": "true"}
        async with session.post(url, data=form) as r:
            assert r.status == 200
        async with session.get(url, params={"chat_id": str(chat.id), "text": "get"}) as r:
            assert r.status == 200
        upload = aiohttp.FormData({"chat_id": str(chat.id), "text": "multipart"})
        upload.add_field("document", b"bytes", filename="notes.txt")
        async with session.post(url, data=upload) as r:
            assert r.status == 200
        async with session.post(
            url, data=b"{not json", headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 400
    assert [m.text for m in chat.bot_messages()] == ["hi!", "form", "get", "multipart"]
    assert tg.calls_to("sendMessage")[3].params["document"] == "<file notes.txt>"
    assert tg.internal_errors == []
    assert chat.bot_messages()[0].entities == entities
    assert tg.calls_to("sendMessage")[1].params["disable_notification"] is True


async def test_a_fault_inside_the_stand_in_is_a_recorded_500(tg: TelegramStandIn, bot: Bot) -> None:
    chat = tg.private_chat(tg.add_user("Alice"))
    chat.messages.append(None)  # type: ignore[arg-type]  # corrupt the model on purpose
    with pytest.raises(NetworkError, match=r"(?i)internal server error"):
        await bot.edit_message_text("x", chat.id, 1)
    assert tg.calls[-1].status == 500
    assert [type(err) for err in tg.internal_errors] == [AttributeError]


# -- sending, limits and formatting ----------------------------------------------------------


async def test_text_limit_is_4096_characters_after_entity_parsing(
    tg: TelegramStandIn, bot: Bot
) -> None:
    chat = tg.private_chat(tg.add_user("Alice"))
    await bot.send_message(chat.id, "<b>" + "a" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)^Message is too long$"):
        await bot.send_message(chat.id, "a" * 4097)
    await bot.send_message(chat.id, "😀" * 4096)  # code points count, not UTF-16 units
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(chat.id, "😀" * 4097)
    assert tg.calls[-1].description == "Bad Request: message is too long"


async def test_empty_text_and_unknown_chat_are_refused(tg: TelegramStandIn, bot: Bot) -> None:
    chat = tg.private_chat(tg.add_user("Alice"))
    with pytest.raises(BadRequest, match=r"(?i)text is empty"):
        await bot.send_message(chat.id, "  \n ")
    with pytest.raises(BadRequest, match=r"(?i)text is empty"):
        await bot.send_message(chat.id, "<b></b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)Chat not found"):
        await bot.send_message(424242, "hello")
    assert tg.calls[-1].description == "Bad Request: chat not found"
    stranger = tg.add_user("Stranger")  # never opened a private chat with the bot
    with pytest.raises(Forbidden, match=r"(?i)can't initiate conversation"):
        await bot.send_message(stranger.id, "hello")


async def test_html_parse_errors_are_bad_requests(tg: TelegramStandIn, bot: Bot) -> None:
    chat = tg.private_chat(tg.add_user("Alice"))
    for text, reason in [
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x <br> y", 'Unsupported start tag "br" at byte offset 2'),
        ("mail <kahn@inbox.ru>", 'Unsupported start tag "kahn@inbox.ru" at byte offset 5'),
        ("<b><i>x</b></i>", "Unmatched end tag at byte offset 7"),
        ("2 < 3", "Unclosed start tag at byte offset 2"),
        ("R&D", "Character '&'"),
        ('<span class="x">s</span>', 'must have class "tg-spoiler"'),
    ]:
        with pytest.raises(BadRequest, match=r"(?i)^Can't parse entities"):
            await bot.send_message(chat.id, text, parse_mode=ParseMode.HTML)
        assert tg.calls[-1].description == f"Bad Request: can't parse entities: {reason}" or (
            reason in str(tg.calls[-1].description)
        )
    sent = await bot.send_message(
        chat.id,
        '<b>b</b> <a href="https://example.org/?a=1&amp;b=2">l</a> &lt;3 &#128512;\n'
        '<pre><code class="language-python">x = 1</code></pre>',
        parse_mode=ParseMode.HTML,
    )
    assert sent.text == "b l <3 😀\nx = 1"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 1),
        ("text_link", 2, 1),
        ("pre", 10, 5),
    ]
    assert sent.entities[1].url == "https://example.org/?a=1&b=2"
    assert sent.entities[2].language == "python"


async def test_user_mentions_carry_the_whole_user(tg: TelegramStandIn, bot: Bot) -> None:
    alice = tg.add_user("Alice", "alice")
    chat = tg.private_chat(alice)
    sent = await bot.send_message(
        chat.id,
        f'Hi <a href="tg://user?id={alice.id}">Alice</a> and <a href="tg://user?id=5">ghost</a>',
        parse_mode=ParseMode.HTML,
    )
    assert sent.text == "Hi Alice and ghost"
    assert [(e.type, e.user.username if e.user else None) for e in sent.entities] == [
        ("text_mention", "alice")
    ]


async def test_markdown_v2_requires_escaping(tg: TelegramStandIn, bot: Bot) -> None:
    chat = tg.private_chat(tg.add_user("Alice"))
    with pytest.raises(BadRequest, match=r"(?i)Character '\.' is reserved"):
        await bot.send_message(chat.id, "*Hi* there.", parse_mode=ParseMode.MARKDOWN_V2)
    with pytest.raises(BadRequest, match=r"(?i)Can't find end of Italic entity at byte offset 0"):
        await bot.send_message(chat.id, "_open", parse_mode=ParseMode.MARKDOWN_V2)
    sent = await bot.send_message(
        chat.id, "*Hi* there\\. `a.b` ||s||", parse_mode=ParseMode.MARKDOWN_V2
    )
    assert sent.text == "Hi there. a.b s"
    assert [e.type for e in sent.entities] == ["bold", "code", "spoiler"]


async def test_explicit_entities_are_checked_in_utf16_units(tg: TelegramStandIn, bot: Bot) -> None:
    chat = tg.private_chat(tg.add_user("Alice"))
    text = "😀 bold"  # the emoji is two UTF-16 units, so "bold" starts at 3
    sent = await bot.send_message(chat.id, text, entities=[MessageEntity("bold", 3, 4)])
    assert sent.entities[0].offset == 3
    with pytest.raises(BadRequest, match=r"(?i)outside the text"):
        await bot.send_message(chat.id, text, entities=[MessageEntity("bold", 4, 4)])
    # Entities win over parse_mode, as on Telegram.
    raw = await bot.send_message(
        chat.id, "<b>x</b>", parse_mode=ParseMode.HTML, entities=[MessageEntity("italic", 0, 3)]
    )
    assert raw.text == "<b>x</b>"


async def test_blocked_user_is_forbidden(tg: TelegramStandIn, bot: Bot) -> None:
    alice = tg.add_user("Alice")
    chat = tg.private_chat(alice)
    tg.block(alice)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(chat.id, "hi")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(chat.id, "typing")
    tg.block(alice, blocked=False)
    await bot.send_message(chat.id, "welcome back")
    assert [m.text for m in chat.bot_messages()] == ["welcome back"]
    changes = [u.my_chat_member for u in await bot.get_updates(timeout=0)]
    assert [(c.old_chat_member.status, c.new_chat_member.status) for c in changes if c] == [
        ("member", "kicked"),
        ("kicked", "member"),
    ]


async def test_a_bot_removed_from_a_group_is_forbidden(tg: TelegramStandIn, bot: Bot) -> None:
    alice = tg.add_user("Alice")
    group = tg.group("G", [alice])
    forum = tg.group("F", [alice], forum=True)
    tg.remove_bot(group)
    tg.remove_bot(forum, by=alice)
    with pytest.raises(Forbidden, match=r"^Forbidden: bot was kicked from the group chat$"):
        await bot.send_message(group.id, "hello?")
    with pytest.raises(Forbidden, match="kicked from the supergroup chat"):
        await bot.send_message(forum.id, "hello?")
    updates = await bot.get_updates(timeout=0)
    removed = [u.my_chat_member for u in updates if u.my_chat_member]
    assert [(c.chat.id, c.new_chat_member.status) for c in removed] == [
        (group.id, "kicked"),
        (forum.id, "kicked"),
    ]
    tg.remove_bot(group, removed=False)
    await bot.send_message(group.id, "back")
    assert [m.text for m in group.bot_messages()] == ["back"]


async def test_rate_limit_answers_429_with_retry_after() -> None:
    limit = RateLimit(private_rate=1.0, private_burst=1, group_rate=1 / 3, group_burst=1)
    async with (
        TelegramStandIn(rate_limit=limit) as tg,
        Bot(tg.token, base_url=tg.base_url) as ptb,
    ):
        alice, bob = tg.add_user("Alice"), tg.add_user("Bob")
        private = tg.private_chat(alice)
        group = tg.group("G", [alice, bob])
        first = await ptb.send_message(private.id, "one")
        with pytest.raises(RetryAfter) as caught:
            await ptb.edit_message_text("two", private.id, first.message_id)
        assert str(caught.value) == "Flood control exceeded. Retry in 1 seconds"
        await ptb.send_message(group.id, "g1")
        with pytest.raises(RetryAfter) as in_group:
            await ptb.send_message(group.id, "g2")
        assert "Retry in 3 seconds" in str(in_group.value)
        assert tg.calls[-1].description == "Too Many Requests: retry after 3"
        assert [m.text for m in private.bot_messages()] == ["one"]


async def test_ptb_rate_limiter_waits_out_a_429_and_retries() -> None:
    limit = RateLimit(private_rate=1.0, private_burst=1)
    async with TelegramStandIn(rate_limit=limit) as tg:
        app = (
            ApplicationBuilder()
            .token(tg.token)
            .base_url(tg.base_url)
            .rate_limiter(AIORateLimiter(max_retries=1))
            .build()
        )
        chat = tg.private_chat(tg.add_user("Alice"))
        async with app:
            await app.bot.send_message(chat.id, "one")
            await app.bot.send_message(chat.id, "two")  # 429, slept on, then sent
        sends = tg.calls_to("sendMessage")
        assert [(c.status, c.retry_after) for c in sends] == [(200, None), (429, 1), (200, None)]
        assert sends[2].at - sends[1].at >= 1.0
        assert [m.text for m in chat.bot_messages()] == ["one", "two"]


async def test_injected_failures_hit_only_their_method_and_chat(
    tg: TelegramStandIn, bot: Bot
) -> None:
    alice, bob = tg.add_user("Alice"), tg.add_user("Bob")
    a, b = tg.private_chat(alice), tg.private_chat(bob)
    tg.fail_next("sendMessage", 429, retry_after=7, chat_id=a.id)
    await bot.send_message(b.id, "to bob")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(a.id, "to alice")
    assert "Retry in 7 seconds" in str(caught.value)
    await bot.send_message(a.id, "to alice again")
    tg.fail_next("sendChatAction", 500, "Internal Server Error")
    with pytest.raises(Exception, match=r"(?i)Internal Server Error"):
        await bot.send_chat_action(a.id, "typing")
    assert [m.text for m in a.bot_messages()] == ["to alice again"]


# -- editing, deleting, drafts ---------------------------------------------------------------


async def test_edits_and_not_modified(tg: TelegramStandIn, bot: Bot) -> None:
    chat = tg.private_chat(tg.add_user("Alice"))
    sent = await bot.send_message(chat.id, "Hel")
    await bot.edit_message_text("Hello", chat.id, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)Message is not modified") as caught:
        await bot.edit_message_text("Hello ", chat.id, sent.message_id)  # trimmed: identical
    assert "exactly the same as a current content" in str(caught.value)
    final = await bot.edit_message_text("<b>Hello</b>", chat.id, sent.message_id, parse_mode="HTML")
    assert isinstance(final, PTBMessage)
    assert final.edit_date is not None
    stored = chat.message(sent.message_id)
    assert stored is not None
    assert stored.texts == ["Hel", "Hello", "Hello"]
    assert stored.entities == [{"type": "bold", "offset": 0, "length": 5}]
    with pytest.raises(BadRequest, match=r"(?i)Message to edit not found"):
        await bot.edit_message_text("x", chat.id, 999)


async def test_editing_without_markup_removes_the_keyboard(tg: TelegramStandIn, bot: Bot) -> None:
    alice = tg.add_user("Alice")
    chat = tg.private_chat(alice)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])
    sent = await bot.send_message(chat.id, "Sure?", reply_markup=keyboard)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text("Sure?", chat.id, sent.message_id, reply_markup=keyboard)
    await bot.edit_message_text("Sure?", chat.id, sent.message_id)
    stored = chat.message(sent.message_id)
    assert stored is not None
    assert stored.reply_markup is None
    with pytest.raises(ValueError, match="no button"):
        tg.press(stored, alice, "yes")
    said = tg.user_says(chat, alice, "mine")
    with pytest.raises(BadRequest, match=r"(?i)can't be edited"):
        await bot.edit_message_text("theirs", chat.id, said.message_id)


async def test_delete_message_rules(tg: TelegramStandIn, bot: Bot) -> None:
    alice, bob = tg.add_user("Alice"), tg.add_user("Bob")
    group = tg.group("G", [alice, bob])
    mine = await bot.send_message(group.id, "bot says")
    theirs = tg.user_says(group, bob, "bob says")
    assert await bot.delete_message(group.id, mine.message_id)
    with pytest.raises(BadRequest, match=r"(?i)Message to delete not found"):
        await bot.delete_message(group.id, mine.message_id)
    with pytest.raises(BadRequest, match=r"(?i)can't be deleted"):
        await bot.delete_message(group.id, theirs.message_id)
    group.bot_is_admin = True
    assert await bot.delete_message(group.id, theirs.message_id)
    assert group.visible() == []
    assert len(group.messages) == 2
    with pytest.raises(BadRequest, match=r"(?i)Message to edit not found"):
        await bot.edit_message_text("late", group.id, mine.message_id)


async def test_drafts_stream_in_private_chats_only_and_can_be_switched_off(
    tg: TelegramStandIn, bot: Bot
) -> None:
    alice, bob = tg.add_user("Alice"), tg.add_user("Bob")
    chat = tg.private_chat(alice)
    for text in ("", "Once", "Once upon"):
        assert await bot.send_message_draft(chat.id, 7, text)
    assert chat.drafts[7].texts == ["", "Once", "Once upon"]
    assert chat.visible() == []  # drafts never become messages
    group = tg.group("G", [alice, bob])
    with pytest.raises(BadRequest, match=r"(?i)TEXTDRAFT_PEER_INVALID"):
        await bot.send_message_draft(group.id, 7, "x")
    with pytest.raises(BadRequest, match=r"(?i)non-zero"):
        await bot.send_message_draft(chat.id, 0, "x")
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message_draft(chat.id, 7, "a" * 4097)
    tg.drafts_enabled = False
    with pytest.raises(InvalidToken, match=r"(?i)Not Found"):
        await bot.send_message_draft(chat.id, 8, "x")
    assert 8 not in chat.drafts


async def test_a_streamed_reply_via_drafts_and_via_edits(tg: TelegramStandIn) -> None:
    words = ["Once", "upon", "a", "time."]

    async def stream(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        chat = message.chat
        await context.bot.send_chat_action(chat.id, "typing")
        if chat.type == "private":
            for n in range(1, len(words) + 1):
                await context.bot.send_message_draft(chat.id, 1, " ".join(words[:n]))
            await context.bot.send_message(chat.id, " ".join(words))
            return
        sent = await context.bot.send_message(chat.id, words[0])
        for n in range(2, len(words) + 1):
            await sent.edit_text(" ".join(words[:n]))

    alice, bob = tg.add_user("Alice"), tg.add_user("Bob")
    private = tg.private_chat(alice)
    group = tg.group("G", [alice, bob])
    app = await _polling(tg, MessageHandler(filters.TEXT, stream))
    try:
        tg.user_says(private, alice, "story?")
        tg.user_says(group, bob, "story?")
        await tg.wait_until(
            lambda: (
                [m.text for m in private.bot_messages() + group.bot_messages()]
                == ["Once upon a time.", "Once upon a time."]
            ),
            timeout=WAIT,
            what="both replies to finish",
        )
    finally:
        await _stop(app)
    assert private.drafts[1].texts == ["Once", "Once upon", "Once upon a", "Once upon a time."]
    assert group.bot_messages()[0].texts == private.drafts[1].texts
    assert len(tg.calls_to("editMessageText", chat=group)) == 3
    assert tg.calls_to("editMessageText", chat=private) == []
    assert len(tg.calls_to("sendChatAction")) == 2


async def test_chat_actions_are_validated(tg: TelegramStandIn, bot: Bot) -> None:
    chat = tg.private_chat(tg.add_user("Alice"))
    assert await bot.send_chat_action(chat.id, "typing")
    with pytest.raises(BadRequest, match=r"(?i)Wrong parameter action"):
        await bot.send_chat_action(chat.id, "dancing")


# -- groups, topics, callbacks, admins, commands ---------------------------------------------


async def test_forum_topics_and_thread_replies(tg: TelegramStandIn) -> None:
    async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(
            f"topic={update.message.message_thread_id} topic_msg={update.message.is_topic_message}"
        )

    alice = tg.add_user("Alice")
    forum = tg.group("Forum", [alice], forum=True)
    lore = tg.add_topic(forum, "Lore")
    app = await _polling(tg, MessageHandler(filters.TEXT, reply))
    try:
        said = tg.user_says(forum, alice, "in the topic", thread_id=lore)
        await tg.wait_for("sendMessage", timeout=WAIT)
    finally:
        await _stop(app)
    assert said.reply_to is not None
    assert said.reply_to.service is not None
    answer = forum.bot_messages(thread_id=lore)
    assert [m.text for m in answer] == [f"topic={lore} topic_msg=True"]
    assert answer[0].thread_id == lore


async def test_privacy_mode_hides_plain_group_messages(tg: TelegramStandIn, bot: Bot) -> None:
    tg.can_read_all_group_messages = False
    alice, bob = tg.add_user("Alice"), tg.add_user("Bob")
    group = tg.group("G", [alice, bob])
    ours = await bot.send_message(group.id, "I am here")
    tg.user_says(group, alice, "just chatting")
    tg.user_says(group, alice, "/start@other_bot")
    tg.user_says(group, alice, "/start")
    tg.user_says(group, bob, "not @troupe_bot2 nor email@troupe_bot")
    tg.user_says(group, bob, "hey @troupe_bot")
    tg.user_says(group, bob, "replying", reply_to=ours.message_id)
    updates = await bot.get_updates(timeout=0)
    seen = [u.message.text for u in updates if u.message]
    assert seen == ["/start", "hey @troupe_bot", "replying"]
    commands = updates[0].message.entities if updates[0].message else ()
    assert [(e.type, e.offset, e.length) for e in commands] == [("bot_command", 0, 6)]
    mention = updates[1].message.entities if updates[1].message else ()
    assert [(e.type, e.offset, e.length) for e in mention] == [("mention", 4, 11)]


async def test_callback_queries_and_answers(tg: TelegramStandIn) -> None:
    async def show(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        keyboard = [[InlineKeyboardButton("Mira", callback_data="pick:mira")]]
        await update.message.reply_text("Choose", reply_markup=InlineKeyboardMarkup(keyboard))

    async def picked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        assert query.data is not None
        await query.answer("chosen")
        await query.edit_message_text(f"You chose {query.data.split(':')[1]}")

    alice = tg.add_user("Alice")
    chat = tg.private_chat(alice)
    app = await _polling(tg, CommandHandler("character", show), CallbackQueryHandler(picked))
    try:
        tg.user_says(chat, alice, "/character")
        await tg.wait_for("sendMessage", timeout=WAIT)
        menu = chat.bot_messages()[0]
        query_id = tg.press(menu, alice, "pick:mira")
        await tg.wait_for("editMessageText", timeout=WAIT)
    finally:
        await _stop(app)
    assert tg.callback_answer(query_id) == {"callback_query_id": query_id, "text": "chosen"}
    assert menu.text == "You chose mira"
    assert menu.reply_markup is None
    async with Bot(tg.token, base_url=tg.base_url) as again:
        with pytest.raises(BadRequest, match=r"(?i)Query is too old"):
            await again.answer_callback_query(query_id)
        assert menu.buttons == []  # the text edit removed the keyboard
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again")]])
        await again.edit_message_reply_markup(chat.id, menu.message_id, reply_markup=keyboard)
        query = tg.press(menu, alice, "again")
        with pytest.raises(BadRequest, match=r"(?i)message_too_long"):
            await again.answer_callback_query(query, text="x" * 201)
        assert tg.callback_answer(query) is None


async def test_administrators_and_members(tg: TelegramStandIn, bot: Bot) -> None:
    alice, bob, carol = tg.add_user("Alice"), tg.add_user("Bob"), tg.add_user("Carol")
    group = tg.group("G", [alice, bob, carol], admins=[alice, bob], supergroup=True)
    admins = await bot.get_chat_administrators(group.id)
    assert [(m.user.id, m.status) for m in admins] == [
        (alice.id, "creator"),
        (bob.id, "administrator"),
    ]
    assert (await bot.get_chat_member(group.id, carol.id)).status == "member"
    stranger = tg.add_user("Dave")
    assert (await bot.get_chat_member(group.id, stranger.id)).status == "left"
    with pytest.raises(BadRequest, match=r"(?i)no administrators in the private chat"):
        await bot.get_chat_administrators(tg.private_chat(alice).id)
    info = await bot.get_chat(group.id)
    assert (info.type, info.title) == ("supergroup", "G")


async def test_set_my_commands_records_each_scope(tg: TelegramStandIn, bot: Bot) -> None:
    alice = tg.add_user("Alice")
    group = tg.group("G", [alice])
    private = [BotCommand("start", "Greeting and help"), BotCommand("persona", "Your persona")]
    await bot.set_my_commands(private, scope=BotCommandScopeAllPrivateChats())
    await bot.set_my_commands(
        [BotCommand("moderation", "Policy")], scope=BotCommandScopeAllGroupChats()
    )
    await bot.set_my_commands([BotCommand("reset", "Reset")], scope=BotCommandScopeChat(group.id))
    assert tg.commands_for({"type": "all_private_chats"}) == [
        {"command": "start", "description": "Greeting and help"},
        {"command": "persona", "description": "Your persona"},
    ]
    group_commands = tg.commands_for({"type": "all_group_chats"})
    assert group_commands == [{"command": "moderation", "description": "Policy"}]
    assert tg.commands_for({"type": "chat", "chat_id": group.id}) is not None
    assert tg.commands_for() is None
    fetched = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats())
    assert [c.command for c in fetched] == ["start", "persona"]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


async def test_user_edits_arrive_as_edited_messages(tg: TelegramStandIn, bot: Bot) -> None:
    alice = tg.add_user("Alice")
    chat = tg.private_chat(alice)
    said = tg.user_says(chat, alice, "helo")
    tg.user_edits(said, "hello")
    updates = await bot.get_updates(timeout=0)
    assert updates[1].edited_message is not None
    assert updates[1].edited_message.text == "hello"
    assert said.texts == ["helo", "hello"]


# -- webhooks --------------------------------------------------------------------------------


async def test_webhook_mode_with_and_without_the_secret(tg: TelegramStandIn) -> None:
    received: list[str] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        assert update.message.text is not None
        received.append(update.message.text)
        await update.message.reply_text("got it")

    alice = tg.add_user("Alice")
    chat = tg.private_chat(alice)
    tg.user_says(chat, alice, "while the bot was down")  # pending when the webhook is set
    app = _application(tg)
    app.add_handler(MessageHandler(filters.TEXT, record))
    port = free_loopback_port()
    await app.initialize()
    assert app.updater is not None
    await app.updater.start_webhook(
        listen="127.0.0.1",
        port=port,
        url_path="hook",
        webhook_url=f"http://127.0.0.1:{port}/hook",
        secret_token="s3cret-token",
    )
    await app.start()
    try:
        assert tg.webhook.url == f"http://127.0.0.1:{port}/hook"
        assert tg.webhook.secret_token == "s3cret-token"
        async with Bot(tg.token, base_url=tg.base_url) as bot:
            with pytest.raises(Conflict, match=r"(?i)webhook is active"):
                await bot.get_updates(timeout=0)
            info = await bot.get_webhook_info()
            assert info.url == tg.webhook.url
        tg.user_says(chat, alice, "via webhook")
        await tg.wait_until(lambda: len(chat.bot_messages()) == 2, timeout=WAIT)
        assert tg.deliveries[-1].status == 200
        assert {d.secret for d in tg.deliveries} == {"s3cret-token"}
        forged = {"message": chat.messages[0].to_api()}
        assert await tg.post_webhook(forged, secret="wrong") == 403
        assert await tg.post_webhook(forged, secret=None) == 403
        await asyncio.sleep(0.2)  # a refused update must not reach the handlers
        assert received == ["while the bot was down", "via webhook"]
    finally:
        await _stop(app)


async def test_webhook_delivery_backs_off_then_gives_up() -> None:
    async with (
        TelegramStandIn(webhook_retry_delay=0.1, webhook_attempts=3) as tg,
        Bot(tg.token, base_url=tg.base_url) as bot,
    ):
        port = free_loopback_port()  # nothing listens there
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="abc")
        alice = tg.add_user("Alice")
        tg.user_says(tg.private_chat(alice), alice, "lost")
        await tg.wait_until(
            lambda: len(tg.deliveries) == 3 and not tg.pending_updates, timeout=WAIT
        )
        assert [d.status for d in tg.deliveries] == [0, 0, 0]
        first, second, third = (d.at for d in tg.deliveries)
        assert second - first >= 0.1
        assert third - second >= 0.2  # the wait doubles
        info = await bot.get_webhook_info()
        assert info.last_error_message == "Connection refused"
        with pytest.raises(BadRequest, match=r"(?i)bad webhook"):
            await bot.set_webhook("https://example.org/hook")
        await bot.delete_webhook()
        assert tg.webhook.url == ""
        assert await bot.get_updates(timeout=0) == ()


# -- the parsers on their own ----------------------------------------------------------------


def test_format_text_trims_whitespace_and_moves_entities() -> None:
    text, entities = format_text("\n  <b>hi</b> there \n", "HTML", None)
    assert text == "hi there"
    assert entities == [{"type": "bold", "offset": 0, "length": 2}]


def test_check_entities_requires_type_fields() -> None:
    with pytest.raises(ParseError, match="needs the field 'url'"):
        check_entities("link", [{"type": "text_link", "offset": 0, "length": 4}])
    with pytest.raises(ParseError, match="unsupported type"):
        check_entities("x", [{"type": "sparkle", "offset": 0, "length": 1}])
    assert utf16_len("a😀") == 3


def test_markdown_v2_blockquotes_and_links() -> None:
    text, entities = format_text(
        ">quoted\n>lines\n[site](https://example.org/a\\)b) \\- done", "MarkdownV2", None
    )
    assert text == "quoted\nlines\nsite - done"
    assert entities == [
        {"type": "blockquote", "offset": 0, "length": 12},
        {"type": "text_link", "offset": 13, "length": 4, "url": "https://example.org/a)b"},
    ]
    with pytest.raises(ParseError, match="Character '>' is reserved"):
        format_text("a > b", "MarkdownV2", None)


# -- restarts, cadence, threads and replies ----------------------------------------------------


async def test_updates_sent_while_the_bot_is_down_reach_the_next_instance(
    tg: TelegramStandIn,
) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"echo: {update.message.text}")

    alice = tg.add_user("Alice")
    chat = tg.private_chat(alice)
    first = await _polling(tg, MessageHandler(filters.TEXT, echo))
    tg.user_says(chat, alice, "before")
    await tg.wait_for("sendMessage", timeout=WAIT)
    await _stop(first)
    tg.user_says(chat, alice, "while down")
    mark = len(tg.calls)
    second = await _polling(tg, MessageHandler(filters.TEXT, echo))
    try:
        await tg.wait_for("sendMessage", since=mark, timeout=WAIT)
    finally:
        await _stop(second)
    assert [m.text for m in chat.bot_messages()] == ["echo: before", "echo: while down"]


async def test_intervals_measure_the_gaps_between_calls(tg: TelegramStandIn, bot: Bot) -> None:
    chat = tg.private_chat(tg.add_user("Alice"))
    sent = await bot.send_message(chat.id, "a")
    for text in ("ab", "abc"):
        await asyncio.sleep(0.15)
        await bot.edit_message_text(text, chat.id, sent.message_id)
    with pytest.raises(BadRequest):
        await bot.edit_message_text("abc", chat.id, sent.message_id)
    gaps = tg.intervals("editMessageText", chat=chat)
    assert len(gaps) == 1  # the refused third edit is not counted
    assert gaps[0] >= 0.15
    arrived = tg.calls[-1].at + tg.started_at  # on the process's monotonic clock
    assert 0 <= time.monotonic() - arrived < 1.0


async def test_forum_threads_must_exist_and_replies_need_their_target(
    tg: TelegramStandIn, bot: Bot
) -> None:
    alice = tg.add_user("Alice")
    forum = tg.group("Forum", [alice], forum=True, username="troupe_forum")
    topic = tg.add_topic(forum, "Scenes")
    assert topic != 1  # the General topic's id
    with pytest.raises(BadRequest, match=r"(?i)message thread not found"):
        await bot.send_message(forum.id, "x", message_thread_id=topic + 100)
    said = tg.user_says(forum, alice, "hi", thread_id=topic)
    reply = await bot.send_message("@troupe_forum", "hello", reply_to_message_id=said.message_id)
    assert reply.message_thread_id == topic  # a reply stays in the topic of what it answers
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(forum.id, "x", reply_to_message_id=999)
    lenient = await bot.send_message(
        forum.id, "x", reply_to_message_id=999, allow_sending_without_reply=True
    )
    assert lenient.reply_to_message is None


def test_html_attribute_values_may_contain_angle_brackets() -> None:
    text, entities = format_text('<a href="https://x.org/?q=a>b">l</a>', "HTML", None)
    assert text == "l"
    assert entities[0]["url"] == "https://x.org/?q=a>b"


# -- properties of the parsers ---------------------------------------------------------------

_PLAIN = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"], include_characters="\n"), max_size=40
)
_STYLES = {
    "bold": ("<b>", "</b>", "*"),
    "italic": ("<i>", "</i>", "_"),
    "code": ("<code>", "</code>", "`"),
}


def _escape_v2(text: str) -> str:
    return re.sub(r"([_*\[\]()~`>#+\-=|{}.!\\])", r"\\\1", text)


@given(_PLAIN)
def test_escaped_text_survives_both_parse_modes_unchanged(text: str) -> None:
    assert parse_html(html.escape(text, quote=False)) == (text, [])
    assert parse_markdown_v2(_escape_v2(text)) == (text, [])


@given(st.lists(st.tuples(st.sampled_from([None, *_STYLES]), _PLAIN.filter(bool)), max_size=6))
def test_html_and_markdown_v2_agree_on_entities_in_utf16_units(
    pieces: list[tuple[str | None, str]],
) -> None:
    html_source, v2_source, expected, offset = "", "", [], 0
    for style, text in pieces:
        if style is None:
            html_source += html.escape(text, quote=False)
            v2_source += _escape_v2(text)
        else:
            start, end, mark = _STYLES[style]
            html_source += start + html.escape(text, quote=False) + end
            # Inside code only ` and \ are escaped; elsewhere every reserved character is.
            inner = re.sub(r"([`\\])", r"\\\1", text) if style == "code" else _escape_v2(text)
            v2_source += mark + inner + mark
            expected.append({"type": style, "offset": offset, "length": utf16_len(text)})
        offset += utf16_len(text)
    plain = "".join(text for _, text in pieces)
    assert parse_html(html_source) == (plain, expected)
    assert parse_markdown_v2(v2_source) == (plain, expected)
