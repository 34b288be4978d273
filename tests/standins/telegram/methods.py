"""Bot API methods that act on the world: sending, editing, drafts, commands, chat info.

Each handler takes the decoded request parameters and returns the ``result`` of a successful
answer, or raises :class:`ApiError` with Telegram's own ``error_code`` and ``description``.
Update delivery (``getUpdates`` and webhooks) lives in :mod:`.server` because it waits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .formatting import ParseError, format_text
from .model import JSON, Chat, Draft, Message
from .ratelimit import FloodControl
from .world import World

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")
_SCOPE_TYPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
BLOCKED = "Forbidden: bot was blocked by the user"
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code", "description", "parameters"}``."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_api(self) -> JSON:
        """Return the JSON body Telegram sends for this error."""
        body: JSON = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> ApiError:
    """Return a 400 error worded as Telegram words it."""
    return ApiError(400, f"Bad Request: {reason}")


def too_many_requests(retry_after: int) -> ApiError:
    """Return Telegram's 429 flood-control error."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


# -- parameter access ------------------------------------------------------------------------


def required(params: JSON, name: str) -> Any:
    """Return a parameter, or fail the way Telegram does when it is missing."""
    value = params.get(name)
    if value is None or value == "":
        raise bad_request(f"{name} is empty" if name != "text" else "message text is empty")
    return value


def as_int(params: JSON, name: str) -> int | None:
    """Return an optional integer parameter."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"invalid {name} specified")
    return value


class BotApi:
    """The methods of the Bot API that read or change the :class:`~.world.World`.

    ``flood`` (when set) rate-limits ``sendMessage`` and ``editMessageText`` per chat;
    ``drafts_enabled`` is consulted by the server before ``sendMessageDraft`` is routed here.
    """

    def __init__(self, world: World, flood: FloodControl | None) -> None:
        self.world = world
        self.flood = flood
        #: (scope as canonical JSON, language_code) -> the commands set for it.
        self.commands: dict[tuple[str, str], list[JSON]] = {}

    def handlers(self) -> dict[str, Callable[[JSON], Any]]:
        """Map each Bot API method name to its handler."""
        return {
            "getMe": self.get_me,
            "sendMessage": self.send_message,
            "editMessageText": self.edit_message_text,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "sendMessageDraft": self.send_message_draft,
            "sendChatAction": self.send_chat_action,
            "deleteMessage": self.delete_message,
            "answerCallbackQuery": self.answer_callback_query,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "getChat": self.get_chat,
            "getChatAdministrators": self.get_chat_administrators,
            "getChatMember": self.get_chat_member,
            "logOut": self.harmless,
            "close": self.harmless,
        }

    # -- shared checks ---------------------------------------------------------------------

    def _chat(self, params: JSON) -> Chat:
        chat = self.world.resolve_chat(required(params, "chat_id"))
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _writable_chat(self, params: JSON) -> Chat:
        chat_id = required(params, "chat_id")
        user = self.world.find_user(chat_id) if isinstance(chat_id, int) else None
        if user is not None and not user.is_bot and chat_id not in self.world.chats:
            # A known person who never opened a private chat with the bot.
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        chat = self._chat(params)
        if chat.blocked:
            kind = "group" if chat.type == "group" else "supergroup"
            kicked = f"Forbidden: bot was kicked from the {kind} chat"
            raise ApiError(403, kicked if chat.is_group else BLOCKED)
        return chat

    def _text(self, params: JSON, *, allow_empty: bool = False) -> tuple[str, list[JSON]]:
        text = params.get("text")
        if text is None or text == "":
            if allow_empty:
                return "", []
            raise bad_request("message text is empty")
        try:
            plain, entities = format_text(
                str(text), params.get("parse_mode"), params.get("entities")
            )
        except ParseError as err:
            raise bad_request(f"can't parse entities: {err}") from err
        except ValueError as err:
            raise bad_request(str(err)) from err
        if not plain and not allow_empty:
            raise bad_request("message text is empty")
        # The limit counts Unicode code points (a live probe accepted 4,096 emoji, i.e. 8,192
        # UTF-16 units, and refused 4,097); entity offsets, unlike it, are in UTF-16 units.
        if len(plain) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        return plain, self._resolve_mentions(entities)

    def _resolve_mentions(self, entities: list[JSON]) -> list[JSON]:
        """Give ``text_mention`` entities the full user, as Telegram does; a mention of an
        account the bot cannot know is dropped (the text stays, unlinked)."""
        resolved: list[JSON] = []
        for entity in entities:
            if entity["type"] == "text_mention":
                mentioned = entity["user"]
                user_id = mentioned.get("id") if isinstance(mentioned, dict) else None
                user = self.world.find_user(user_id) if isinstance(user_id, int) else None
                if user is None:
                    continue
                entity = {**entity, "user": user.to_api()}
            resolved.append(entity)
        return resolved

    def _thread(self, chat: Chat, params: JSON) -> int | None:
        thread_id = as_int(params, "message_thread_id")
        if thread_id is None or not chat.is_forum:
            return None
        if thread_id not in chat.topics:
            raise bad_request("message thread not found")
        return thread_id

    def _throttle(self, chat: Chat) -> None:
        if self.flood is not None:
            retry_after = self.flood.check(chat.id, chat.is_group, self.world.clock())
            if retry_after is not None:
                raise too_many_requests(retry_after)

    def _own_message(self, chat: Chat, params: JSON, *, action: str) -> Message:
        message_id = as_int(params, "message_id")
        if message_id is None:
            raise bad_request(
                "MESSAGE_ID_INVALID" if params.get("inline_message_id") else "message_id is empty"
            )
        message = chat.message(message_id)
        if message is None or message.deleted:
            raise bad_request(f"message to {action} not found")
        if message.sender is not self.world.bot:
            raise bad_request(f"message can't be {action}ed")
        return message

    # -- methods ---------------------------------------------------------------------------

    def get_me(self, params: JSON) -> JSON:
        """getMe: the bot's account with its group settings."""
        return {
            **self.world.bot.to_api(),
            "can_join_groups": self.world.can_join_groups,
            "can_read_all_group_messages": self.world.can_read_all_group_messages,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def send_message(self, params: JSON) -> JSON:
        """sendMessage: post text, with optional markup, reply and forum topic."""
        chat = self._writable_chat(params)
        thread_id = self._thread(chat, params)
        text, entities = self._text(params)
        markup = check_reply_markup(params.get("reply_markup"))
        reply_to = self._reply_target(chat, params)
        if reply_to is not None and thread_id is None:
            thread_id = reply_to.thread_id
        self._throttle(chat)
        message = self.world.new_message(
            chat,
            self.world.bot,
            text,
            entities=entities,
            reply_markup=markup,
            thread_id=thread_id,
            reply_to=reply_to,
        )
        return message.to_api()

    def _reply_target(self, chat: Chat, params: JSON) -> Message | None:
        reply = params.get("reply_parameters") or {}
        if not isinstance(reply, dict):
            raise bad_request("invalid reply_parameters specified")
        message_id = reply.get("message_id", params.get("reply_to_message_id"))
        if message_id is None:
            return None
        if not isinstance(message_id, int):
            raise bad_request("invalid reply_parameters specified")
        target = chat.message(message_id)
        if target is None or target.deleted:
            if reply.get("allow_sending_without_reply") or params.get(
                "allow_sending_without_reply"
            ):
                return None
            raise bad_request("message to be replied not found")
        return target

    def edit_message_text(self, params: JSON) -> JSON:
        """editMessageText: change the text (and keyboard) of one of the bot's messages.

        Omitting ``reply_markup`` removes the inline keyboard, as on Telegram.
        """
        chat = self._writable_chat(params)
        message = self._own_message(chat, params, action="edit")
        text, entities = self._text(params)
        markup = check_reply_markup(params.get("reply_markup"))
        if (text, _canonical(entities), markup) == (
            message.text,
            _canonical(message.entities),
            message.reply_markup,
        ):
            raise bad_request(NOT_MODIFIED)
        self._throttle(chat)
        self.world.edit_message(message, text, entities, markup)
        return message.to_api()

    def edit_message_reply_markup(self, params: JSON) -> JSON:
        """editMessageReplyMarkup: replace or remove a message's inline keyboard."""
        chat = self._writable_chat(params)
        message = self._own_message(chat, params, action="edit")
        markup = check_reply_markup(params.get("reply_markup"))
        if markup == message.reply_markup:
            raise bad_request(NOT_MODIFIED)
        self.world.edit_message(message, message.text, message.entities, markup)
        return message.to_api()

    def send_message_draft(self, params: JSON) -> bool:
        """sendMessageDraft: stream a preview in a private chat (Bot API 9.x).

        The preview is ephemeral: it is recorded in ``chat.drafts`` but never becomes a
        message; the bot must still call sendMessage with the final text.
        """
        chat = self._writable_chat(params)
        if chat.is_group:
            raise bad_request("TEXTDRAFT_PEER_INVALID")
        draft_id = as_int(params, "draft_id")
        if not draft_id:
            raise bad_request("draft_id must be non-zero")
        text, entities = self._text(params, allow_empty=True)
        draft = chat.drafts.get(draft_id)
        if draft is None:
            thread_id = as_int(params, "message_thread_id")
            draft = chat.drafts[draft_id] = Draft(draft_id, chat, thread_id)
        draft.texts.append(text)
        draft.entities = entities
        return True

    def send_chat_action(self, params: JSON) -> bool:
        """sendChatAction: show "typing..." and similar for about five seconds."""
        chat = self._writable_chat(params)
        self._thread(chat, params)
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def delete_message(self, params: JSON) -> bool:
        """deleteMessage: the bot's own messages anywhere; others' only in private chats or
        as a group admin."""
        chat = self._chat(params)
        message = chat.message(as_int(params, "message_id") or 0)
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        mine = message.sender is self.world.bot
        if chat.is_group and not mine and not chat.bot_is_admin:
            raise bad_request("message can't be deleted")
        message.deleted = True
        return True

    def answer_callback_query(self, params: JSON) -> bool:
        """answerCallbackQuery: each query may be answered once."""
        query_id = str(required(params, "callback_query_id"))
        answers = self.world.callback_answers
        if query_id not in answers or answers[query_id] is not None:
            raise bad_request(QUERY_INVALID)
        if len(str(params.get("text") or "")) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        answers[query_id] = dict(params)
        return True

    def set_my_commands(self, params: JSON) -> bool:
        """setMyCommands: remember the command list per scope and language."""
        commands = required(params, "commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not _COMMAND_NAME_RE.fullmatch(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._scope_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def get_my_commands(self, params: JSON) -> list[JSON]:
        """getMyCommands: the list stored for the scope and language."""
        return self.commands.get(self._scope_key(params), [])

    def delete_my_commands(self, params: JSON) -> bool:
        """deleteMyCommands: forget the list for the scope and language."""
        self.commands.pop(self._scope_key(params), None)
        return True

    def _scope_key(self, params: JSON) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPE_TYPES:
            raise bad_request("can't parse BotCommandScope")
        if "chat_id" in scope and self.world.resolve_chat(scope["chat_id"]) is None:
            raise bad_request("chat not found")
        return scope_key(scope, str(params.get("language_code") or ""))

    def get_chat(self, params: JSON) -> JSON:
        """getChat: a ``ChatFullInfo`` for the chat."""
        chat = self._chat(params)
        gifts = dict.fromkeys(
            (
                "unlimited_gifts",
                "limited_gifts",
                "unique_gifts",
                "premium_subscription",
                "gifts_from_channels",
            ),
            False,
        )
        return {
            **chat.to_api(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": gifts,
        }

    def get_chat_administrators(self, params: JSON) -> list[JSON]:
        """getChatAdministrators: the creator and the administrators (the bot if it is one)."""
        chat = self._chat(params)
        if not chat.is_group:
            raise bad_request("there are no administrators in the private chat")
        return [self._member(chat, user_id) for user_id in self.world.admin_ids(chat)]

    def get_chat_member(self, params: JSON) -> JSON:
        """getChatMember: one user's status in the chat."""
        chat = self._chat(params)
        user_id = as_int(params, "user_id")
        if user_id is None or self.world.find_user(user_id) is None:
            raise bad_request("user not found")
        return self._member(chat, user_id)

    def _member(self, chat: Chat, user_id: int) -> JSON:
        user = self.world.users[user_id]
        status = self.world.member_status(chat, user_id)
        member: JSON = {"status": status, "user": user.to_api()}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            rights = (
                "can_manage_chat",
                "can_delete_messages",
                "can_manage_video_chats",
                "can_restrict_members",
                "can_promote_members",
                "can_change_info",
                "can_invite_users",
                "can_post_stories",
                "can_edit_stories",
                "can_delete_stories",
                "can_pin_messages",
                "can_manage_topics",
            )
            member.update(dict.fromkeys(rights, True), can_be_edited=False, is_anonymous=False)
        return member

    def harmless(self, params: JSON) -> bool:
        """logOut and close: nothing to do for a stand-in."""
        return True


def check_reply_markup(markup: Any) -> JSON | None:
    """Validate ``reply_markup``; inline buttons need text and at most 64 bytes of data."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if not button.get("text"):
                raise bad_request("BUTTON_TEXT_INVALID")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise bad_request("BUTTON_DATA_INVALID")
    return markup


def scope_key(scope: JSON, language_code: str) -> tuple[str, str]:
    """The key under which :class:`BotApi` stores commands for a scope and language."""
    return json.dumps(scope, sort_keys=True), language_code


def _canonical(entities: list[JSON]) -> list[str]:
    return sorted(json.dumps(entity, sort_keys=True) for entity in entities)
