"""The bot's commands, their inline keyboards, and who may use them.

``/start`` greets and explains, ``/character`` picks the main character and the scene (an
inline keyboard), ``/reset`` and ``/forget`` ask for a confirmation first, ``/persona`` sets
who the user is in the story, ``/usage`` shows tokens and cost, ``/memory`` shows (and
corrects) what the character remembers, ``/triggers`` and
``/moderation`` show (and set) when characters speak and the group's moderation policy. In
groups, changing the characters, resetting, triggers and moderation are for the chat's
administrators (``getChatAdministrators``), checked again when a button is pressed. The
keyboard under a character's newest reply regenerates, browses and continues it
(:mod:`bot.conversation.commands.swipes` says who may).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram import (
    BotCommand,
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatType, InlineKeyboardButtonLimit
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.conversation import commands
from bot.conversation.commands import Caller
from bot.errors import NotAllowed, Refusal, TooLate
from bot.platforms.telegram.admins import Admins
from bot.platforms.telegram.handlers import chat_target, conversation_key, is_private
from bot.platforms.telegram.sink import SHOWN_DATA, TelegramReplies
from bot.platforms.telegram.transport import ChatTarget

__all__ = ["ADMIN_COMMANDS", "COMMANDS", "Commands"]

log = logging.getLogger("bot.platforms.telegram")

#: The command menu everyone sees (``setMyCommands``).
COMMANDS = (
    BotCommand("start", "Greeting and help"),
    BotCommand("character", "Choose who you talk to"),
    BotCommand("reset", "Forget this conversation"),
    BotCommand("persona", "Who you are in the story"),
    BotCommand("forget", "Erase what is stored about you"),
    BotCommand("usage", "Tokens used and their cost"),
    BotCommand("nudges", "Whether characters may speak first"),
    BotCommand("memory", "What the character remembers"),
)
#: The menu of group administrators.
ADMIN_COMMANDS = (
    *COMMANDS,
    BotCommand("triggers", "When characters speak in this chat"),
    BotCommand("lorebooks", "World books used in this chat"),
    BotCommand("moderation", "Moderation policy and recent events"),
)

ADMINS_ONLY = "Only the group's admins can do that."
#: Moderation events listed by /moderation.
LOG_LENGTH = 10

#: A command or button handler as PTB calls it.
Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]

HELP = """Talk to me and the character answers. In groups, mention @{bot}, reply to a \
character's message or say its name.
/character choose who you talk to (admins: the main character and the scene)
/reset forget this conversation
/persona TEXT who you are in the story (/persona clear removes it)
/forget erase everything stored about you
/usage tokens used and their cost
/nudges on|off whether characters may write first (groups: admins)
/memory what the character remembers (/memory forget N, /memory fix N text)
/triggers when characters speak here (admins)
/lorebooks the world books used here (admins: add BOOK, remove BOOK)
/moderation the group's moderation policy (admins)"""


class Commands:
    """Command and button handlers of one bot."""

    def __init__(self, replies: TelegramReplies, admins: Admins) -> None:
        self._replies = replies
        self._admins = admins
        self._manager = replies.manager

    def handlers(self) -> list[BaseHandler[Any, Any, Any]]:
        """The PTB handlers to register, before the message handlers."""
        callbacks = {
            "start": self.start,
            "character": self.character,
            "reset": self.reset,
            "persona": self.persona,
            "forget": self.forget,
            "usage": self.usage,
            "memory": self.memory,
            "triggers": self.triggers,
            "nudges": self.nudges,
            "lorebooks": self.lorebooks,
            "moderation": self.moderation,
        }
        # New messages only: editing "/reset" must not run it again.
        new = filters.UpdateType.MESSAGE
        handlers: list[BaseHandler[Any, Any, Any]] = [
            CommandHandler(name, self._saying_refusals(callback), filters=new, block=False)
            for name, callback in callbacks.items()
        ]
        handlers += [
            CallbackQueryHandler(
                self._alerting_refusals(self.on_character_button), pattern=r"^char:", block=False
            ),
            CallbackQueryHandler(
                self._alerting_refusals(self.on_swipe_button), pattern=r"^swipe:", block=False
            ),
            CallbackQueryHandler(
                self._alerting_refusals(self.on_confirm_button),
                pattern=r"^(reset|forget):",
                block=False,
            ),
            MessageHandler(
                new & filters.COMMAND & filters.ChatType.PRIVATE, self.unknown, block=False
            ),
        ]
        return handlers

    # -- commands -------------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The main character's greeting (in a new conversation) and a short help."""
        message = _message(update)
        user = message.from_user
        key = conversation_key(message)
        private = is_private(message)
        sink = self._replies.sink(key, chat_target(message), private=private)
        name = user.full_name if user else "friend"
        await self._manager.greet(key, sink, user_name=name, group=not private)
        await self._say(message, HELP.format(bot=context.bot.username))

    async def character(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/character``: a keyboard of characters; ``/character NAME``: switch at once."""
        message = _message(update)
        caller = self._caller(message)
        if not context.args:
            text, keyboard = await self._character_menu(caller)
            await message.reply_text(text, reply_markup=keyboard, do_quote=False)
            return
        name = " ".join(context.args)
        await self._say(message, await commands.make_main(self._manager, caller, name))

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Ask before forgetting the conversation's history."""
        message = _message(update)
        question = await commands.ask_reset(self._manager, self._caller(message))
        await message.reply_text(
            question.text, reply_markup=_confirm("reset", question.confirm), do_quote=False
        )

    async def persona(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Show, set or clear (``/persona clear``) the user's own persona."""
        message = _message(update)
        words = " ".join(context.args or ())
        await self._say(
            message, await commands.persona_command(self._manager, self._caller(message), words)
        )

    async def forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Ask before erasing everything stored about the user."""
        message = _message(update)
        question = commands.FORGET_QUESTION
        await message.reply_text(
            question.text,
            reply_markup=_confirm(f"forget:{_user_id(message)}", question.confirm),
            do_quote=False,
        )

    async def usage(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Tokens and estimated cost: the user's, and this chat's."""
        message = _message(update)
        caller = self._caller(message)
        await self._say(
            message, await commands.describe_usage(self._manager, caller, chat_noun="chat")
        )

    async def memory(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """What the character remembers here and about the user; ``/memory forget N`` and
        ``/memory fix N TEXT`` change an item."""
        message = _message(update)
        words = " ".join(context.args or ())
        await self._say(
            message, await commands.memory_command(self._manager, self._caller(message), words)
        )

    async def triggers(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Group admins: when characters speak here; ``/triggers NAME VALUE`` changes it."""
        message = _message(update)
        if is_private(message):
            await self._say(message, "In a private chat the characters answer every message.")
            return
        words = context.args or []
        await self._say(
            message,
            await commands.chat_triggers(
                self._manager,
                self._caller(message),
                (lambda settings: commands.change_triggers(settings, words)) if words else None,
            ),
        )

    async def nudges(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Whether characters speak first here; ``/nudges on|off|NAME VALUE`` changes it (in a
        private chat its user, in a group its admins)."""
        message = _message(update)
        answer = await commands.nudges_command(
            self._manager, self._caller(message), context.args or [], private=is_private(message)
        )
        await self._say(message, answer)

    async def lorebooks(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The chat's world books; ``/lorebooks add BOOK`` / ``remove BOOK`` (admins)."""
        message = _message(update)
        text = await commands.chat_lorebooks(
            self._manager, self._caller(message), context.args or []
        )
        await self._say(message, text)

    async def moderation(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Group admins: the policy and recent events.

        ``/moderation input|output ACTION`` sets what blocked messages / replies lead to;
        ``/moderation report here|off|CHAT_ID`` where moderation records are posted.
        """
        message = _message(update)
        if is_private(message):
            raise NotAllowed("/moderation is for group admins, in the group.")
        caller = self._caller(message)
        group = str(message.chat.id)
        words = context.args or []
        settings = await commands.moderation_settings(
            self._manager,
            caller,
            group,
            (lambda settings: commands.change_from_words(settings, words, here=group))
            if words
            else None,
        )
        mentions = _GroupMentions(group)
        events = await commands.describe_events(
            self._manager, caller, mentions, chat_id=group, limit=LOG_LENGTH
        )
        await self._say(message, commands.describe_policy(settings, mentions) + "\n" + events)

    async def unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command nobody handles, in a private chat."""
        await self._say(_message(update), "I don't know that command; /start lists mine.")

    # -- buttons --------------------------------------------------------------------------

    async def on_character_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``char:main:ID`` makes a character the main one; ``char:scene:ID`` toggles it."""
        query, menu = _query(update)
        caller = self._pressed_by(query, menu)
        _, action, token = (query.data or "").split(":", 2)
        character_id = self._character_of(token)
        if action == "main":
            answer = await commands.make_main(self._manager, caller, character_id)
        else:
            answer = await commands.toggle_in_scene(self._manager, caller, character_id)
        text, keyboard = await self._character_menu(caller)
        try:
            await query.edit_message_text(text, reply_markup=keyboard)
        except BadRequest as error:
            # Choosing the character that is already the main one changes nothing.
            if "message is not modified" not in error.message.lower():
                raise
        await query.answer(answer)

    async def on_swipe_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button of the keyboard under a reply: regenerate, ◀, ▶ or continue it in place.

        The query is answered once the reply shows the result; a refusal (too late, not
        theirs, a limit) is an alert to the one who pressed, and too late also takes the
        keyboard away.
        """
        query, reply = _query(update)
        parsed = commands.parse_swipe_data(query.data or "")
        if parsed is None:  # the "2/3" button only says where the reply is
            await query.answer(None if query.data == SHOWN_DATA else commands.TOO_LATE)
            return
        action, message_id = parsed
        caller = self._pressed_by(query, reply)
        target = ChatTarget(reply.chat.id, chat_target(reply).thread_id)
        sink = self._replies.sink(caller.key, target, private=is_private(reply))
        try:
            await commands.swipe(
                self._manager,
                caller,
                action,
                sink,
                message_id=message_id,
                channel_name=reply.chat.title,
            )
        except TooLate:
            with contextlib.suppress(TelegramError):
                await query.edit_message_reply_markup(None)
            raise
        # A long regeneration outlives the query; the reply itself shows the result.
        with contextlib.suppress(TelegramError):
            await query.answer()

    async def on_confirm_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The answer to ``/reset`` or ``/forget``'s question."""
        query, menu = _query(update)
        kind, _, rest = (query.data or "").partition(":")
        *owner, choice = rest.split(":")
        if owner and owner[0] != str(query.from_user.id):
            raise NotAllowed(commands.NOT_YOURS)
        caller = self._pressed_by(query, menu)
        if kind == "reset":
            # Checked again: only the group's admins answer, demoted ones no longer.
            await caller.require_admin()
        if choice != "yes":
            await query.edit_message_text(commands.CANCELLED)
        elif kind == "reset":
            await query.edit_message_text(await commands.reset(self._manager, caller))
        else:
            await query.edit_message_text(await commands.forget(self._manager, caller))
        await query.answer()

    # -- helpers --------------------------------------------------------------------------

    async def _character_menu(self, caller: Caller) -> tuple[str, InlineKeyboardMarkup]:
        text = await commands.describe_scene(self._manager, caller)
        text += "\nTap a name to make it the main character, or ± to bring it in or out."
        scene = await self._manager.scene(caller.key)
        rows = []
        for character in self._manager.characters:
            in_scene = character.id in {c.id for c in scene}
            mark = "✓ " if character.id == scene[0].id else ""
            rows.append(
                [
                    InlineKeyboardButton(
                        f"{mark}{character.name}", callback_data=_button("char:main", character.id)
                    ),
                    InlineKeyboardButton(
                        "− scene" if in_scene else "+ scene",
                        callback_data=_button("char:scene", character.id),
                    ),
                ]
            )
        return text, InlineKeyboardMarkup(rows)

    def _character_of(self, token: str) -> str:
        """The character id a button stands for (see :func:`_button`)."""
        if not token.startswith("#"):
            return token
        return next((i for i in self._manager.characters.ids() if _digest(i) == token), token)

    def _caller(self, message: Message) -> Caller:
        """The author of ``message``, in its conversation."""
        user_id = _user_id(message)
        return Caller(
            conversation_key(message),
            user_id,
            lambda: self._may_administer(message.chat, int(user_id)),
            ADMINS_ONLY,
        )

    def _pressed_by(self, query: CallbackQuery, menu: Message) -> Caller:
        """Who pressed a button of ``menu``, in the menu's conversation."""
        user_id = query.from_user.id
        return Caller(
            conversation_key(menu),
            str(user_id),
            lambda: self._may_administer(menu.chat, user_id),
            ADMINS_ONLY,
        )

    def _saying_refusals(self, callback: Callback) -> Callback:
        """``callback``, whose refusals are said in the chat."""

        async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            try:
                await callback(update, context)
            except Refusal as refusal:
                await self._say(_message(update), str(refusal))

        return run

    @staticmethod
    def _alerting_refusals(callback: Callback) -> Callback:
        """``callback`` of a button, whose refusals are shown to the one who pressed it."""

        async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            try:
                await callback(update, context)
            except Refusal as refusal:
                query, _ = _query(update)
                await query.answer(str(refusal), show_alert=True)

        return run

    async def _may_administer(self, chat: Chat, user_id: int) -> bool:
        """Anyone in a private chat; the chat's admins (asked afresh) in a group."""
        return chat.type == ChatType.PRIVATE or await self._admins.is_admin(chat.id, user_id)

    async def _say(self, message: Message, text: str) -> None:
        await self._replies.notice(chat_target(message), text, private=is_private(message))


def _message(update: Update) -> Message:
    if update.effective_message is None:
        raise ValueError("a command without a message")
    return update.effective_message


def _user_id(message: Message) -> str:
    if message.from_user is None:
        raise ValueError("a command without an author")
    return str(message.from_user.id)


def _query(update: Update) -> tuple[CallbackQuery, Message]:
    query = update.callback_query
    if query is None or not isinstance(query.message, Message):
        raise ValueError("a button press without its message")
    return query, query.message


def _button(prefix: str, character_id: str) -> str:
    """Callback data for a character button: ``prefix:ID``, or ``prefix:#DIGEST`` when a
    long id would pass Telegram's 64-byte limit."""
    data = f"{prefix}:{character_id}"
    if len(data.encode()) <= InlineKeyboardButtonLimit.MAX_CALLBACK_DATA:
        return data
    return f"{prefix}:{_digest(character_id)}"


def _digest(character_id: str) -> str:
    return "#" + hashlib.sha256(character_id.encode()).hexdigest()[:20]


def _confirm(prefix: str, yes: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(yes, callback_data=f"{prefix}:yes"),
                InlineKeyboardButton("Cancel", callback_data=f"{prefix}:no"),
            ]
        ]
    )


@dataclass(frozen=True, slots=True)
class _GroupMentions:
    """How the moderation texts of the group ``here`` name chats, users and moments."""

    here: str

    def chat(self, chat_id: str) -> str | None:
        return None if chat_id == self.here else f"chat {chat_id}"

    def user(self, user_id: str) -> str:
        return f"user {user_id}"

    def time(self, when: datetime) -> str:
        return f"{when:%Y-%m-%d %H:%M} UTC"
