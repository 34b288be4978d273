"""The scripted Telegram world: accounts, chats and what users do in them.

:class:`World` owns every :class:`~.model.User`, :class:`~.model.Chat` and
:class:`~.model.Message`, and turns a user's action into the Bot API update Telegram would
send the bot (or ``None`` when group privacy mode would hide it from the bot).
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable

from .formatting import utf16_len
from .model import JSON, Chat, Edit, Message, User

_COMMAND_RE = re.compile(r"(?<!\S)/[a-zA-Z0-9_]{1,32}(?:@[a-zA-Z0-9_]{3,32})?(?![\w@/])")
_MENTION_RE = re.compile(r"(?<![\w@])@[a-zA-Z0-9_]{5,32}(?!\w)")
_URL_RE = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)]")
_TOPIC_ICON_COLOR = 0x6FB9F0


def _utf16_offset(text: str, index: int) -> int:
    return utf16_len(text[:index])


def detect_entities(text: str) -> list[JSON]:
    """Return the entities Telegram's clients attach to typed text: commands, mentions, URLs."""
    found: list[JSON] = []
    for kind, pattern in (("bot_command", _COMMAND_RE), ("mention", _MENTION_RE), ("url", _URL_RE)):
        for match in pattern.finditer(text):
            found.append(
                {
                    "type": kind,
                    "offset": _utf16_offset(text, match.start()),
                    "length": utf16_len(match.group()),
                }
            )
    return sorted(found, key=lambda e: e["offset"])


class World:
    """Users, chats and messages, plus the bot's own account and settings.

    ``clock`` gives the monotonic seconds used for edit history timestamps.
    """

    def __init__(self, bot: User, clock: Callable[[], float]) -> None:
        self.bot = bot
        self.clock = clock
        self.can_read_all_group_messages = True
        self.can_join_groups = True
        self.users: dict[int, User] = {bot.id: bot}
        self.chats: dict[int, Chat] = {}
        self._user_ids = itertools.count(1001)
        self._group_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._callback_ids = itertools.count(1)
        #: callback_query_id -> the answerCallbackQuery parameters, or None while unanswered.
        self.callback_answers: dict[str, JSON | None] = {}

    # -- accounts and chats ----------------------------------------------------------------

    def add_user(
        self, first_name: str, username: str | None = None, *, language_code: str | None = "en"
    ) -> User:
        """Create a person's account."""
        user = User(next(self._user_ids), first_name, username, language_code=language_code)
        self.users[user.id] = user
        return user

    def private_chat(self, user: User) -> Chat:
        """Return the user's private chat with the bot (its id is the user's id)."""
        chat = self.chats.get(user.id)
        if chat is None:
            chat = Chat(id=user.id, type="private", user=user, members={user.id: user})
            self._add_chat(chat)
        return chat

    def group(
        self,
        title: str,
        members: list[User],
        *,
        admins: list[User] | None = None,
        supergroup: bool = False,
        forum: bool = False,
        bot_is_admin: bool = False,
        username: str | None = None,
    ) -> Chat:
        """Create a group the bot is in; ``admins[0]`` (default: ``members[0]``) is the creator.

        ``forum=True`` makes a supergroup with topics (see :meth:`add_topic`).
        """
        number = next(self._group_ids)
        is_super = supergroup or forum
        chat = Chat(
            id=-(1_000_000_000_000 + number) if is_super else -(4_000_000_000 + number),
            type="supergroup" if is_super else "group",
            title=title,
            username=username,
            is_forum=forum,
            members={user.id: user for user in members},
            admins=[user.id for user in (admins if admins is not None else members[:1])],
            bot_is_admin=bot_is_admin,
        )
        chat.members.update({self.users[uid].id: self.users[uid] for uid in chat.admins})
        self._add_chat(chat)
        return chat

    def _add_chat(self, chat: Chat) -> None:
        self.chats[chat.id] = chat
        # In a forum, id 1 belongs to the General topic, so no created topic may get it.
        self._message_ids[chat.id] = itertools.count(2 if chat.is_forum else 1)

    def add_topic(self, chat: Chat, name: str, creator: User) -> int:
        """Create a forum topic; return its ``message_thread_id``.

        As on Telegram, the id is that of the topic's "forum_topic_created" service message,
        which plain messages in the topic then appear to reply to.
        """
        if not chat.is_forum:
            raise ValueError(f"chat {chat.id} is not a forum")
        service = {"forum_topic_created": {"name": name, "icon_color": _TOPIC_ICON_COLOR}}
        message = self.new_message(chat, creator, "", service=service)
        message.thread_id = message.message_id
        chat.topics[message.message_id] = name
        return message.message_id

    def resolve_chat(self, chat_id: int | str) -> Chat | None:
        """Find a chat by id or by ``@username``."""
        if isinstance(chat_id, str):
            name = chat_id.removeprefix("@").lower()
            return next(
                (c for c in self.chats.values() if (c.username or "").lower() == name), None
            )
        return self.chats.get(chat_id)

    # -- messages --------------------------------------------------------------------------

    def new_message(
        self,
        chat: Chat,
        sender: User,
        text: str,
        *,
        entities: list[JSON] | None = None,
        reply_markup: JSON | None = None,
        thread_id: int | None = None,
        reply_to: Message | None = None,
        service: JSON | None = None,
        photo: bool = False,
    ) -> Message:
        """Store a new message in ``chat`` and return it.

        In a forum topic a message that replies to nothing replies to the topic's creation
        message, exactly as Telegram reports it.
        """
        if thread_id is not None and reply_to is None:
            reply_to = chat.message(thread_id)
        message = Message(
            message_id=next(self._message_ids[chat.id]),
            chat=chat,
            sender=sender,
            date=int(time.time()),
            text=text,
            entities=entities or [],
            reply_markup=reply_markup,
            thread_id=thread_id,
            reply_to=reply_to,
            service=service,
            photo=photo,
        )
        message.history.append(Edit(text, message.entities, reply_markup, self.clock()))
        chat.messages.append(message)
        return message

    def edit_message(
        self, message: Message, text: str, entities: list[JSON], reply_markup: JSON | None
    ) -> None:
        """Change a message's visible content, keeping the previous states in its history."""
        message.text = text
        message.entities = entities
        message.reply_markup = reply_markup
        message.edit_date = int(time.time())
        message.history.append(Edit(text, entities, reply_markup, self.clock()))

    # -- what users do ---------------------------------------------------------------------

    def user_says(
        self,
        chat: Chat,
        user: User,
        text: str,
        *,
        reply_to: int | Message | None = None,
        thread_id: int | None = None,
        entities: list[JSON] | None = None,
        photo: bool = False,
    ) -> tuple[Message, JSON | None]:
        """Post a user's message (``photo``: a photo captioned ``text``); return it and the
        update the bot gets (None if hidden)."""
        if user.id not in chat.members:
            raise ValueError(f"{user.first_name} is not a member of chat {chat.id}")
        if thread_id is not None and thread_id not in chat.topics:
            raise ValueError(f"chat {chat.id} has no topic {thread_id}")
        replied = self._replied(chat, reply_to)
        if replied is not None and thread_id is None and replied.thread_id is not None:
            thread_id = replied.thread_id  # a reply stays in the topic of what it answers
        message = self.new_message(
            chat,
            user,
            text,
            entities=detect_entities(text) if entities is None else entities,
            thread_id=thread_id,
            reply_to=replied,
            photo=photo,
        )
        if not self._bot_sees(message):
            return message, None
        return message, {"message": message.to_api()}

    def user_edits(self, message: Message, text: str) -> JSON | None:
        """Let the author edit their message; return the ``edited_message`` update or None."""
        self.edit_message(message, text, detect_entities(text), message.reply_markup)
        if not self._bot_sees(message):
            return None
        return {"edited_message": message.to_api()}

    def press_button(self, message: Message, user: User, callback_data: str) -> tuple[str, JSON]:
        """Press an inline keyboard button; return the callback query id and the update.

        The button must be on the message as it is now, as in a real client.
        """
        if message.deleted:
            raise ValueError(f"message {message.message_id} was deleted")
        if not any(button.get("callback_data") == callback_data for button in message.buttons):
            raise ValueError(f"message {message.message_id} has no button {callback_data!r}")
        query_id = str(next(self._callback_ids))
        self.callback_answers[query_id] = None
        update = {
            "callback_query": {
                "id": query_id,
                "from": user.to_api(),
                "message": message.to_api(),
                "chat_instance": str(abs(message.chat.id)),
                "data": callback_data,
            }
        }
        return query_id, update

    def shut_out(self, chat: Chat, actor: User, shut: bool) -> JSON:
        """Record that the bot was blocked (private chat) or removed (group) by ``actor`` -- or,
        with ``shut=False``, let back in; return the ``my_chat_member`` update Telegram sends
        the bot about it."""
        chat.blocked = shut
        kicked = {"status": "kicked", "user": self.bot.to_api(), "until_date": 0}
        member = {"status": "member", "user": self.bot.to_api()}
        old, new = (member, kicked) if shut else (kicked, member)
        return {
            "my_chat_member": {
                "chat": chat.to_api(),
                "from": actor.to_api(),
                "date": int(time.time()),
                "old_chat_member": old,
                "new_chat_member": new,
            }
        }

    def _replied(self, chat: Chat, reply_to: int | Message | None) -> Message | None:
        if reply_to is None:
            return None
        message_id = reply_to if isinstance(reply_to, int) else reply_to.message_id
        replied = chat.message(message_id)
        if replied is None or replied.deleted:
            raise ValueError(f"chat {chat.id} has no message {message_id} to reply to")
        return replied

    def _bot_sees(self, message: Message) -> bool:
        """Apply group privacy mode: without it (or as an admin) the bot sees everything;
        with it, only commands for it, replies to its messages and mentions of it."""
        chat = message.chat
        if not chat.is_group or self.can_read_all_group_messages or chat.bot_is_admin:
            return True
        text = message.text
        command = re.match(r"/\w+(?:@(\w+))?", text)
        if command is not None and command.group(1) in (None, self.bot.username):
            return True
        reply = message.reply_to
        if reply is not None and reply.sender is self.bot:
            return True
        mention = rf"(?<![\w@])@{re.escape(self.bot.username or '')}(?!\w)"
        return re.search(mention, text, re.IGNORECASE) is not None

    def admin_ids(self, chat: Chat) -> list[int]:
        """The chat's administrators' user ids, the creator first and the bot last if admin."""
        return [*chat.admins, *([self.bot.id] if chat.bot_is_admin else [])]

    def member_status(self, chat: Chat, user_id: int) -> str:
        """``creator``, ``administrator``, ``member`` or ``left`` for a user in a chat."""
        admins = self.admin_ids(chat)
        if chat.is_group and admins and admins[0] == user_id and user_id != self.bot.id:
            return "creator"
        if chat.is_group and user_id in admins:
            return "administrator"
        if user_id in chat.members or user_id == self.bot.id:
            return "member"
        return "left"

    def find_user(self, user_id: int) -> User | None:
        """The account with this id, or None."""
        return self.users.get(user_id)
