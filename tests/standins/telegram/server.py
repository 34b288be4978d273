"""The Telegram Bot API stand-in: an aiohttp server on 127.0.0.1 that tests script.

python-telegram-bot talks to it through its normal httpx networking; the test drives users,
chats and updates from the other side and inspects what the bot did. See
``docs/standins.md`` for a walk-through.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .changes import Changes
from .methods import BLOCKED, ApiError, BotApi, bad_request, scope_key, too_many_requests
from .model import JSON, Call, Chat, Message, User, WebhookDelivery
from .ratelimit import FloodControl, RateLimit
from .updates import UpdateQueue, WebhookInfo
from .world import World

DEFAULT_TOKEN = "123456789:AAStandInTokenForTestsOnly_0123456789"

# Parameters that PTB (and any client sending forms) serialises as JSON strings.
_JSON_PARAMS = frozenset(
    {
        "entities",
        "caption_entities",
        "reply_markup",
        "reply_parameters",
        "link_preview_options",
        "allowed_updates",
        "commands",
        "scope",
        "message_ids",
        "results",
        "media",
        "permissions",
    }
)
_INT_PARAMS = frozenset(
    {
        "chat_id",
        "message_id",
        "message_thread_id",
        "draft_id",
        "offset",
        "limit",
        "user_id",
        "reply_to_message_id",
        "max_connections",
        "cache_time",
        "from_chat_id",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "drop_pending_updates",
        "show_alert",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "can_stop",
        "allow_paid_broadcast",
    }
)


def decode_params(raw: dict[str, Any]) -> JSON:
    """Turn form/query strings into the types Telegram reads them as.

    Integers stay numbers (``chat_id`` may also be ``@username``), JSON-serialised fields are
    parsed (left as strings when invalid, so the method rejects them), ``true``/``false``
    become booleans and ``timeout`` may be fractional.
    """
    params: JSON = {}
    for name, value in raw.items():
        if isinstance(value, str):
            if name in _JSON_PARAMS:
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            elif name in _INT_PARAMS and re.fullmatch(r"-?\d+", value):
                value = int(value)
            elif name in _BOOL_PARAMS:
                value = value.lower() in ("true", "1")
            elif name == "timeout" and re.fullmatch(r"\d+(\.\d+)?", value):
                value = float(value)
        params[name] = value
    return params


async def _read_params(request: web.Request) -> JSON:
    raw: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise bad_request("request body must be a JSON object")
            raw.update(body)
        else:
            for name, value in (await request.post()).items():
                # Uploaded files are recorded by name only; the stand-in stores no media.
                if isinstance(value, web.FileField):
                    raw[name] = f"<file {value.filename}>"
                else:
                    raw[name] = value
    return decode_params(raw)


#: Methods that change what a chat shows (see :meth:`TelegramStandIn.fail_writes`).
WRITES = frozenset(
    {"sendMessage", "editMessageText", "sendMessageDraft", "sendChatAction", "deleteMessage"}
)


@dataclass
class _Failure:
    method: str
    error: ApiError
    chat_id: int | None
    times: int


class TelegramStandIn:
    """A Telegram Bot API server on 127.0.0.1 with a scriptable world behind it.

    Use it as ``async with TelegramStandIn() as tg:`` and build the bot with
    ``ApplicationBuilder().token(tg.token).base_url(tg.base_url).base_file_url(tg.base_file_url)``.

    Args:
        token: the bot token; requests with another token get 401 Unauthorized.
        bot_username: the bot's @username (without ``@``).
        bot_name: the bot's first name.
        can_read_all_group_messages: ``False`` means group privacy mode is on: in groups
            where the bot is not an admin it only gets commands, replies to its messages and
            @mentions (the scripted update is then not delivered).
        drafts_enabled: whether ``sendMessageDraft`` exists; ``False`` answers it with 404
            "Not Found" like a Bot API server that predates it.
        rate_limit: per-chat flood control for sends and edits (429 with ``retry_after``);
            ``None`` disables it. ``RateLimit()`` approximates Telegram.
        webhook_retry_delay: seconds before a failed webhook delivery is first retried; each
            further retry waits twice as long.
        webhook_attempts: deliveries of one update before it is dropped.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "troupe_bot",
        bot_name: str = "Troupe",
        can_read_all_group_messages: bool = True,
        can_join_groups: bool = True,
        drafts_enabled: bool = True,
        rate_limit: RateLimit | None = None,
        webhook_retry_delay: float = 0.1,
        webhook_attempts: int = 6,
    ) -> None:
        self.token = token
        prefix = token.partition(":")[0]
        self.bot = User(
            id=int(prefix) if prefix.isdigit() else 1,
            first_name=bot_name,
            username=bot_username,
            is_bot=True,
            language_code=None,
        )
        #: ``time.monotonic()`` when the stand-in was created: ``call.at + tg.started_at`` is
        #: the monotonic time a call arrived, comparable with other clocks in the process.
        self.started_at = time.monotonic()
        self.world = World(self.bot, self.clock)
        self.world.can_read_all_group_messages = can_read_all_group_messages
        self.world.can_join_groups = can_join_groups
        self.api = BotApi(self.world, FloodControl(rate_limit) if rate_limit else None)
        self.drafts_enabled = drafts_enabled
        self.changes = Changes()
        self.updates = UpdateQueue(
            self.changes, self.clock, retry_delay=webhook_retry_delay, attempts=webhook_attempts
        )
        #: Every request the bot made, in arrival order.
        self.calls: list[Call] = []
        #: Exceptions the stand-in itself raised while answering (answered as 500); a test
        #: that sees one has found a stand-in bug, not an adapter bug.
        self.internal_errors: list[Exception] = []
        self._handlers = {**self.api.handlers(), **self.updates.handlers()}
        self._method_names = {name.lower(): name for name in self._handlers}
        self._failures: list[_Failure] = []
        self._failing_writes: ApiError | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on an ephemeral 127.0.0.1 port."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Answer pending long polls with no updates, stop webhook delivery and stop serving."""
        await self.updates.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """What goes into ``ApplicationBuilder().base_url(...)`` (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """What goes into ``ApplicationBuilder().base_file_url(...)``; no files are served."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    def clock(self) -> float:
        """Seconds since the stand-in was created (monotonic); the unit of ``Call.at``."""
        return time.monotonic() - self.started_at

    # -- settings --------------------------------------------------------------------------

    @property
    def can_read_all_group_messages(self) -> bool:
        """Privacy mode off (True) or on (False); see the class docstring."""
        return self.world.can_read_all_group_messages

    @can_read_all_group_messages.setter
    def can_read_all_group_messages(self, value: bool) -> None:
        self.world.can_read_all_group_messages = value

    # -- scripting the world ---------------------------------------------------------------

    def add_user(
        self, first_name: str, username: str | None = None, *, language_code: str | None = "en"
    ) -> User:
        """Create a person's account."""
        return self.world.add_user(first_name, username, language_code=language_code)

    def private_chat(self, user: User) -> Chat:
        """The user's private chat with the bot (created on first use)."""
        return self.world.private_chat(user)

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
        """Create a group with the bot in it; ``admins[0]`` (default ``members[0]``) created
        it. ``forum=True`` makes a supergroup with topics; ``username`` makes it public."""
        return self.world.group(
            title,
            members,
            admins=admins,
            supergroup=supergroup,
            forum=forum,
            bot_is_admin=bot_is_admin,
            username=username,
        )

    def add_topic(self, chat: Chat, name: str, creator: User | None = None) -> int:
        """Create a forum topic and return its ``message_thread_id``.

        The topic's creation is a service message; the bot gets no update for it.
        """
        owner = creator or self.world.users[chat.admins[0]]
        return self.world.add_topic(chat, name, owner)

    def block(self, user: User, blocked: bool = True) -> None:
        """Let ``user`` block (or, with ``False``, unblock) the bot.

        Writes to their private chat then fail with 403 "Forbidden: bot was blocked by the
        user", and the bot gets a ``my_chat_member`` update (kicked / member) as on Telegram.
        """
        chat = self.world.private_chat(user)
        self.push_update(self.world.shut_out(chat, user, blocked))

    def remove_bot(self, chat: Chat, by: User | None = None, removed: bool = True) -> None:
        """Remove the bot from a group (``removed=False``: add it back), by ``by`` (default: the
        creator). Sends then fail with 403 "Forbidden: bot was kicked from the group chat"
        ("supergroup chat" for supergroups), and the bot gets a ``my_chat_member`` update."""
        actor = by or self.world.users[chat.admins[0]]
        self.push_update(self.world.shut_out(chat, actor, removed))

    def user_says(
        self,
        chat: Chat,
        user: User,
        text: str,
        *,
        reply_to: int | Message | None = None,
        thread_id: int | None = None,
        entities: list[JSON] | None = None,
        deliver: bool = True,
        photo: bool = False,
    ) -> Message:
        """Post ``text`` as ``user`` and queue the ``message`` update for the bot.

        ``photo``: the message is a photo and ``text`` its caption (empty for none).

        ``entities`` default to what Telegram attaches: ``bot_command`` for ``/cmd`` and
        ``/cmd@bot``, ``mention`` for ``@name``, ``url``. A reply to a message in a forum
        topic stays in that topic. The update is not queued when privacy mode hides the
        message from the bot, or when ``deliver=False``.
        """
        message, update = self.world.user_says(
            chat, user, text, reply_to=reply_to, thread_id=thread_id, entities=entities, photo=photo
        )
        if update is not None and deliver:
            self.push_update(update)
        else:
            self.changes.touch()
        return message

    def user_edits(self, message: Message, text: str) -> Message:
        """Edit a user's message and queue the ``edited_message`` update (if the bot sees it)."""
        update = self.world.user_edits(message, text)
        if update is not None:
            self.push_update(update)
        else:
            self.changes.touch()
        return message

    def press(self, message: Message, user: User, callback_data: str) -> str:
        """Press the inline button with ``callback_data`` on ``message``; queue the
        ``callback_query`` update and return its id (see :meth:`callback_answer`)."""
        query_id, update = self.world.press_button(message, user, callback_data)
        self.push_update(update)
        return query_id

    def push_update(self, update: JSON) -> int:
        """Queue any update (without ``update_id``; one is assigned and returned)."""
        return self.updates.push(update)

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (optionally to one chat) fail.

        Without ``description``: 429 is "Too Many Requests: retry after N" (``retry_after``
        defaults to 1), 403 is "Forbidden: bot was blocked by the user"; other codes need one.
        """
        if error_code == 429:
            error = too_many_requests(retry_after or 1)
        elif description is not None:
            error = ApiError(error_code, description, retry_after)
        elif error_code == 403:
            error = ApiError(403, BLOCKED)
        else:
            raise ValueError(f"give a description for error_code {error_code}")
        self._failures.append(_Failure(method, error, chat_id, times))

    def fail_writes(
        self, error_code: int | None = 500, description: str = "Internal Server Error"
    ) -> None:
        """Answer every write (send, edit, draft, typing, delete) with this error until called
        again with ``error_code=None``: Telegram failing on its side while updates still
        arrive. Failed calls are recorded like any other."""
        self._failing_writes = None if error_code is None else ApiError(error_code, description)

    # -- inspection ------------------------------------------------------------------------

    def chat(self, chat_id: int) -> Chat:
        """The chat with this id."""
        return self.world.chats[chat_id]

    def calls_to(
        self, method: str, *, chat: Chat | None = None, ok: bool | None = None
    ) -> list[Call]:
        """Recorded calls of one method, optionally only to ``chat`` or only (un)successful."""
        return [
            call
            for call in self.calls
            if call.method == method
            and (chat is None or call.params.get("chat_id") == chat.id)
            and (ok is None or call.ok == ok)
        ]

    def intervals(self, method: str, *, chat: Chat | None = None, ok: bool = True) -> list[float]:
        """Seconds between consecutive calls of ``method`` (successful ones by default),
        optionally in one chat: ``min(tg.intervals("editMessageText", chat=c))`` is the
        shortest gap between edits."""
        times = [call.at for call in self.calls_to(method, chat=chat, ok=ok)]
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    def commands_for(self, scope: JSON | None = None, language_code: str = "") -> list[JSON] | None:
        """The commands set with ``setMyCommands`` for exactly this scope and language
        (``None`` if never set); ``scope`` defaults to ``{"type": "default"}``."""
        key = scope_key(scope or {"type": "default"}, language_code)
        return self.api.commands.get(key)

    def callback_answer(self, query_id: str) -> JSON | None:
        """The ``answerCallbackQuery`` parameters for a pressed button, or None if unanswered."""
        return self.world.callback_answers[query_id]

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates queued and not yet confirmed by the bot."""
        return list(self.updates.pending)

    @property
    def webhook(self) -> WebhookInfo:
        """The webhook registered with ``setWebhook`` (``url == ""``: none)."""
        return self.updates.webhook

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        """Every POST to the bot's webhook, in order."""
        return self.updates.deliveries

    async def post_webhook(self, update: JSON, *, secret: str | None) -> int:
        """POST ``update`` to the registered webhook with ``secret`` in the secret-token header
        (``None``: no header); return the HTTP status (0 if the bot did not answer).

        Queued updates are delivered this way automatically with the registered secret; call
        it directly to deliver with a wrong or missing secret. An update without
        ``update_id`` gets a fresh one. The update is not queued or retried.
        """
        return await self.updates.post(update, secret=secret)

    # -- waiting ---------------------------------------------------------------------------

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        *,
        since: int = 0,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented test API bounds each wait
    ) -> Call:
        """Wait for an answered call of ``method`` matching ``predicate``; return it.

        Only calls from index ``since`` of :attr:`calls` on are considered: pass
        ``since=len(tg.calls)`` before an action to wait for a call it causes. Raises
        :class:`TimeoutError` listing the calls seen.
        """

        found: list[Call] = []

        def matched() -> bool:
            found[:] = [
                call
                for call in self.calls[since:]
                if call.method == method and call.status and (predicate is None or predicate(call))
            ][:1]
            return bool(found)

        await self.wait_until(matched, timeout=timeout, what=f"a {method} call")
        return found[0]

    async def wait_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented test API bounds each wait
        what: str = "the condition",
    ) -> None:
        """Wait until ``condition()`` is true, re-checking after every call and update.

        Raises :class:`TimeoutError` naming ``what`` and the last calls.
        """
        if not await self.changes.until(condition, timeout=timeout):
            recent = [f"{c.method}->{c.status}" for c in self.calls[-10:]]
            raise TimeoutError(f"waited {timeout}s for {what}; last calls: {recent}")

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        method = self._method_names.get(name.lower(), name)
        call = Call(method, {}, self.clock())
        self.calls.append(call)
        try:
            call.params = await _read_params(request)
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            result = await self._dispatch(method, call.params)
        except ApiError as err:
            call.status, call.description = err.error_code, err.description
            call.retry_after = err.retry_after
            body = err.to_api()
        except Exception as err:  # a stand-in bug: answer like a failing server, keep the error
            self.internal_errors.append(err)
            call.status, call.description = 500, "Internal Server Error"
            body = {"ok": False, "error_code": 500, "description": call.description}
        else:
            call.status, call.result = 200, result
            body = {"ok": True, "result": result}
        self.changes.touch()
        return web.json_response(body, status=call.status)

    async def _dispatch(self, method: str, params: JSON) -> Any:
        handler = self._handlers.get(method)
        if handler is None or (method == "sendMessageDraft" and not self.drafts_enabled):
            raise ApiError(404, "Not Found")
        self._raise_injected(method, params)
        result = handler(params)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    def _raise_injected(self, method: str, params: JSON) -> None:
        if self._failing_writes is not None and method in WRITES:
            raise self._failing_writes
        for failure in self._failures:
            if failure.method == method and failure.chat_id in (None, params.get("chat_id")):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                raise failure.error
