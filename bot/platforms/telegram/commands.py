"""The bot's commands, their inline keyboards, and who may use them.

``/start`` greets and explains, ``/character`` picks the main character and the scene (an
inline keyboard), ``/reset`` and ``/forget`` ask for a confirmation first, ``/persona`` sets
who the user is in the story, ``/usage`` shows tokens and cost, ``/triggers`` and
``/moderation`` show (and set) when characters speak and the group's moderation policy. In
groups, changing the characters, resetting, triggers and moderation are for the chat's
administrators (``getChatAdministrators``), checked again when a button is pressed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
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
from telegram.error import BadRequest
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.conversation.incoming import ConversationKey
from bot.conversation.moderation import ModerationAction
from bot.conversation.settings import ServerSettings
from bot.platforms.telegram.admins import Admins
from bot.platforms.telegram.handlers import PLATFORM, chat_target, conversation_key, is_private
from bot.platforms.telegram.sink import Replies
from bot.platforms.triggers import change_triggers, describe_triggers

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
)
#: The menu of group administrators.
ADMIN_COMMANDS = (
    *COMMANDS,
    BotCommand("triggers", "When characters speak in this chat"),
    BotCommand("moderation", "Moderation policy and recent events"),
)

MAX_PERSONA = 1000
ADMINS_ONLY = "Only the group's admins can do that."

HELP = """Talk to me and the character answers. In groups, mention @{bot}, reply to a \
character's message or say its name.
/character choose who you talk to (admins: the main character and the scene)
/reset forget this conversation
/persona TEXT who you are in the story (/persona clear removes it)
/forget erase everything stored about you
/usage tokens used and their cost
/triggers when characters speak here (admins)
/moderation the group's moderation policy (admins)"""


class Commands:
    """Command and button handlers of one bot."""

    def __init__(self, replies: Replies, admins: Admins) -> None:
        self._replies = replies
        self._admins = admins
        self._manager = replies.manager

    def handlers(self) -> list[BaseHandler[Any, Any, Any]]:
        """The PTB handlers to register, before the message handlers."""
        commands = {
            "start": self.start,
            "character": self.character,
            "reset": self.reset,
            "persona": self.persona,
            "forget": self.forget,
            "usage": self.usage,
            "triggers": self.triggers,
            "moderation": self.moderation,
        }
        # New messages only: editing "/reset" must not run it again.
        new = filters.UpdateType.MESSAGE
        handlers: list[BaseHandler[Any, Any, Any]] = [
            CommandHandler(name, callback, filters=new, block=False)
            for name, callback in commands.items()
        ]
        handlers += [
            CallbackQueryHandler(self.on_character_button, pattern=r"^char:", block=False),
            CallbackQueryHandler(self.on_confirm_button, pattern=r"^(reset|forget):", block=False),
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
        sink = self._replies.sink(key, chat_target(message), private=is_private(message))
        await self._manager.greet(key, sink, user_name=user.full_name if user else "friend")
        await self._say(message, HELP.format(bot=context.bot.username))

    async def character(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/character``: a keyboard of characters; ``/character NAME``: switch at once."""
        message = _message(update)
        key = conversation_key(message)
        if not context.args:
            text, keyboard = await self._character_menu(key)
            await message.reply_text(text, reply_markup=keyboard, do_quote=False)
            return
        if not await self._allowed(message):
            await self._say(message, ADMINS_ONLY)
            return
        try:
            chosen = await self._manager.set_character(key, " ".join(context.args))
        except KeyError as error:
            await self._say(message, str(error.args[0]))
            return
        await self._say(message, f"Now talking to {chosen.name}.")

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Ask before forgetting the conversation's history."""
        message = _message(update)
        if not await self._allowed(message):
            await self._say(message, ADMINS_ONLY)
            return
        character = await self._manager.character_for(conversation_key(message))
        await message.reply_text(
            f"Forget this whole conversation with {character.name}? This cannot be undone.",
            reply_markup=_confirm("reset", "Yes, reset"),
            do_quote=False,
        )

    async def persona(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Show, set or clear (``/persona clear``) the user's own persona."""
        message = _message(update)
        user_id = _user_id(message)
        text = " ".join(context.args or ()).strip()
        if not text:
            persona = await self._manager.persona(PLATFORM, user_id)
            await self._say(
                message,
                f"Your persona: {persona}"
                if persona
                else "You have no persona. Set one with /persona followed by who you are.",
            )
        elif text.lower() == "clear":
            await self._manager.set_persona(PLATFORM, user_id, None)
            await self._say(message, "Persona cleared.")
        elif len(text) > MAX_PERSONA:
            await self._say(message, f"A persona can be at most {MAX_PERSONA} characters.")
        else:
            await self._manager.set_persona(PLATFORM, user_id, text)
            await self._say(message, "Persona set. The characters will know you by it.")

    async def forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Ask before erasing everything stored about the user."""
        message = _message(update)
        await message.reply_text(
            "Erase everything stored about you: your messages in every chat, your persona "
            "and your usage? This cannot be undone.",
            reply_markup=_confirm(f"forget:{_user_id(message)}", "Yes, erase"),
            do_quote=False,
        )

    async def usage(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Tokens and estimated cost: the user's, and this chat's."""
        message = _message(update)
        mine = await self._manager.usage(PLATFORM, author_id=_user_id(message))
        chat = await self._manager.usage(PLATFORM, chat_id=str(message.chat.id))
        lines = [
            f"You: {mine.calls} replies, {mine.total_tokens} tokens, about ${mine.cost_usd:.4f}.",
            f"This chat: {chat.calls} replies, {chat.total_tokens} tokens, "
            f"about ${chat.cost_usd:.4f}.",
        ]
        await self._say(message, "\n".join(lines))

    async def triggers(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Group admins: when characters speak here; ``/triggers NAME VALUE`` changes it."""
        message = _message(update)
        if is_private(message):
            await self._say(message, "In a private chat the characters answer every message.")
            return
        if not await self._allowed(message):
            await self._say(message, ADMINS_ONLY)
            return
        key = conversation_key(message)
        settings = await self._manager.chat_settings(key)
        if context.args:
            try:
                settings = change_triggers(settings, context.args)
            except ValueError as error:
                await self._say(message, str(error))
                return
            await self._manager.set_chat_settings(key, settings)
        await self._say(message, describe_triggers(settings))

    async def moderation(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Group admins: the policy and recent events.

        ``/moderation input|output ACTION`` sets what blocked messages / replies lead to;
        ``/moderation report here|off|CHAT_ID`` where moderation records are posted.
        """
        message = _message(update)
        if is_private(message):
            await self._say(message, "/moderation is for group admins, in the group.")
            return
        if not await self._allowed(message):
            await self._say(message, ADMINS_ONLY)
            return
        group = str(message.chat.id)
        settings = await self._manager.server_settings(PLATFORM, group)
        args = [arg.lower() for arg in context.args or ()]
        if args:
            changed = _changed_settings(settings, args, here=group)
            if changed is None:
                actions = "|".join(action.value for action in ModerationAction)
                await self._say(
                    message,
                    f"Usage: /moderation input|output {actions}, "
                    "or /moderation report here|off|CHAT_ID",
                )
                return
            settings = changed
            await self._manager.set_server_settings(PLATFORM, group, settings)
        events = await self._manager.moderation_log(PLATFORM, chat_id=group, limit=10)
        policy = settings.moderation
        lines = [
            f"Blocked messages: {policy.on_blocked_input.value}. "
            f"Blocked replies: {policy.on_blocked_output.value}.",
            f"Cool-down: after {policy.cooldown_after} flags within "
            f"{round(policy.cooldown_window.total_seconds() / 60)} minutes."
            if policy.cooldown_after
            else "Cool-down: off.",
            f"Records go to chat {settings.moderators_chat_id}."
            if settings.moderators_chat_id
            else "Records are not posted anywhere (/moderation report here).",
            "Recent events:" if events else "No moderation events here.",
        ]
        lines += [
            f"{event.created_at:%Y-%m-%d %H:%M} {event.direction} flagged as "
            f"{event.type_name} (user {event.author_id})"
            for event in events
        ]
        await self._say(message, "\n".join(lines))

    async def unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command nobody handles, in a private chat."""
        await self._say(_message(update), "I don't know that command; /start lists mine.")

    # -- buttons --------------------------------------------------------------------------

    async def on_character_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``char:main:ID`` makes a character the main one; ``char:scene:ID`` toggles it."""
        query, menu = _query(update)
        if not await self._may_administer(menu.chat, query.from_user.id):
            await query.answer(ADMINS_ONLY, show_alert=True)
            return
        _, action, token = (query.data or "").split(":", 2)
        character_id = self._character_of(token)
        key = conversation_key(menu)
        try:
            if action == "main":
                chosen = await self._manager.set_character(key, character_id)
                answer = f"Now talking to {chosen.name}."
            elif any(c.id == character_id for c in await self._manager.scene(key)):
                chosen = await self._manager.remove_from_scene(key, character_id)
                answer = f"{chosen.name} left the scene."
            else:
                chosen = await self._manager.add_to_scene(key, character_id)
                answer = f"{chosen.name} joined the scene."
        except (KeyError, ValueError) as error:
            await query.answer(str(error.args[0]), show_alert=True)
            return
        text, keyboard = await self._character_menu(key)
        try:
            await query.edit_message_text(text, reply_markup=keyboard)
        except BadRequest as error:
            # Choosing the character that is already the main one changes nothing.
            if "message is not modified" not in error.message.lower():
                raise
        await query.answer(answer)

    async def on_confirm_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The answer to ``/reset`` or ``/forget``'s question."""
        query, menu = _query(update)
        kind, _, rest = (query.data or "").partition(":")
        *owner, choice = rest.split(":")
        if owner and owner[0] != str(query.from_user.id):
            await query.answer("This question is for someone else.", show_alert=True)
            return
        if kind == "reset" and not await self._may_administer(menu.chat, query.from_user.id):
            await query.answer(ADMINS_ONLY, show_alert=True)
            return
        if choice != "yes":
            await query.edit_message_text("Cancelled; nothing was changed.")
        elif kind == "reset":
            deleted = await self._manager.reset(conversation_key(menu))
            await query.edit_message_text(f"Conversation reset ({deleted} messages forgotten).")
        else:
            report = await self._manager.forget(PLATFORM, str(query.from_user.id))
            await query.edit_message_text(
                f"Erased {report.messages} messages, {report.personas} persona and "
                f"{report.model_calls} usage records about you."
            )
        await query.answer()

    # -- helpers --------------------------------------------------------------------------

    async def _character_menu(self, key: ConversationKey) -> tuple[str, InlineKeyboardMarkup]:
        scene = await self._manager.scene(key)
        main, extras = scene[0], scene[1:]
        text = f"Main character: {main.name}."
        if extras:
            text += " Also in the scene: " + ", ".join(c.name for c in extras) + "."
        text += "\nTap a name to make it the main character, or ± to bring it in or out."
        rows = []
        for character in self._manager.characters:
            in_scene = character.id in {c.id for c in scene}
            mark = "✓ " if character.id == main.id else ""
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

    async def _allowed(self, message: Message) -> bool:
        return await self._may_administer(message.chat, int(_user_id(message)))

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


def _changed_settings(
    settings: ServerSettings, args: list[str], *, here: str
) -> ServerSettings | None:
    """``settings`` with ``input|output ACTION`` or ``report here|off|CHAT_ID`` applied, or
    ``None`` if the words are wrong."""
    if len(args) != 2:
        return None
    what, value = args
    if what == "report":
        if value in ("here", "off"):
            return dataclasses.replace(
                settings, moderators_chat_id=here if value == "here" else None
            )
        if value.lstrip("-").isdigit():
            return dataclasses.replace(settings, moderators_chat_id=value)
        return None
    try:
        action = ModerationAction(value)
    except ValueError:
        return None
    if what == "input":
        policy = dataclasses.replace(settings.moderation, on_blocked_input=action)
    elif what == "output":
        policy = dataclasses.replace(settings.moderation, on_blocked_output=action)
    else:
        return None
    return dataclasses.replace(settings, moderation=policy)
