"""The REST side's shared machinery: errors, call recording, rate limiting, message writes.

Route modules (``routes_*.py``) hold the handlers; they all go through ``RestContext``, which
creates, edits and deletes messages the way Discord does (validation, permissions, gateway
events), and through ``middleware``, which authenticates, rate-limits and records every call.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from .gateway import Gateway
from .interactions import Interaction
from .model import (
    JSON,
    NO_FLAGS,
    Channel,
    Edit,
    Message,
    MessageFlag,
    MessageType,
    User,
    iso_timestamp,
)
from .permissions import Permission
from .ratelimit import RateLimiter
from .world import UnknownEntity, World

API_PREFIX = "/api/v10"
MAX_CONTENT = 2000
_MAJOR_PARAMETERS = ("channel_id", "guild_id", "webhook_id", "webhook_token")


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer with Content-Type exactly ``application/json``, as discord.py requires
    (it compares the header verbatim, so aiohttp's ``; charset=utf-8`` would not do)."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


class ApiError(Exception):
    """A Discord JSON error: HTTP status, Discord error code, message and field errors."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.errors = errors

    def to_response(self) -> web.Response:
        """The error as Discord sends it."""
        body: JSON = {"message": str(self), "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, status=self.status)


def invalid_form(field_name: str, code: str, message: str) -> ApiError:
    """Discord's 400 / 50035 "Invalid Form Body" for one field."""
    errors = {field_name: {"_errors": [{"code": code, "message": message}]}}
    return ApiError(400, 50035, "Invalid Form Body", errors)


def missing_permissions() -> ApiError:
    """Discord's 403 / 50013."""
    return ApiError(403, 50013, "Missing Permissions")


@dataclass(frozen=True)
class Call:
    """One REST request the bot made, and the stand-in's answer.

    ``route`` is the template with discord.py's parameter names, e.g.
    ``"PATCH /channels/{channel_id}/messages/{message_id}"`` (``None`` for unknown paths);
    ``at`` is ``time.monotonic()`` when the request arrived (the event loop's clock).
    The Authorization header is stored redacted.
    """

    method: str
    path: str
    route: str | None
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    at: float
    status: int = 0
    response: Any = None


@dataclass
class RestConfig:
    """Settings the REST side needs from the stand-in."""

    token: str
    shard_count: int
    gateway_url: str
    interaction_deadline: float
    max_webhooks_per_channel: int = 15


@dataclass
class RestContext:
    """What every route handler works with."""

    world: World
    gateway: Gateway
    limiter: RateLimiter
    config: RestConfig
    on_change: Callable[[], None]
    calls: list[Call] = field(default_factory=list)
    interactions: dict[int, Interaction] = field(default_factory=dict)
    #: The status every write (a request other than GET) gets, while set.
    failing_writes: int | None = None

    # -- request helpers -------------------------------------------------------------------

    @staticmethod
    async def body(request: web.Request) -> Any:
        """The JSON body (``payload_json`` of a multipart body), ``{}`` when empty."""
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            raw = form.get("payload_json")
            text = str(raw) if raw is not None else ""
        else:
            text = await request.text()
        try:
            return json.loads(text) if text else {}
        except ValueError:
            raise ApiError(400, 50109, "The request body contains invalid JSON.") from None

    def channel(self, request: web.Request) -> Channel:
        """The channel named by ``{channel_id}``."""
        return self.world.channel(int(request.match_info["channel_id"]))

    def require(self, channel: Channel, *needed: Permission) -> None:
        """Raise Discord's 403 unless the bot has ``needed`` in ``channel`` (DMs always pass)."""
        guild = channel.guild
        if guild is None:
            return
        have = guild.permissions_for(self.world.bot, channel)
        if not have & Permission.VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        if any(not have & p for p in needed):
            raise missing_permissions()

    def send_permission(self, channel: Channel) -> Permission:
        """The permission that allows posting in ``channel`` (threads have their own)."""
        return (
            Permission.SEND_MESSAGES_IN_THREADS if channel.is_thread else Permission.SEND_MESSAGES
        )

    # -- message writes --------------------------------------------------------------------

    def validate(self, body: JSON, *, creating: bool) -> None:
        """Discord's checks on a message body: length, and (when creating) not empty."""
        content = body.get("content")
        if content is not None and len(str(content)) > MAX_CONTENT:
            raise invalid_form(
                "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
            )
        if creating and not (content or body.get("embeds") or body.get("components")):
            raise ApiError(400, 50006, "Cannot send an empty message")

    def create_message(
        self,
        channel: Channel,
        author: User,
        body: JSON,
        *,
        webhook_id: int | None = None,
        interaction: Interaction | None = None,
        extra_flags: MessageFlag = NO_FLAGS,
    ) -> Message:
        """Store a message the bot (or its webhook) sent and announce it on the gateway."""
        self.validate(body, creating=not extra_flags & MessageFlag.LOADING)
        reference = self._reference(channel, body.get("message_reference"))
        message = Message(
            id=self.world.ids.next_id(),
            channel=channel,
            author=author,
            content=str(body.get("content") or ""),
            flags=MessageFlag(int(body.get("flags") or 0)) | extra_flags,
            reference=reference,
            type=MessageType.REPLY if reference is not None else MessageType.DEFAULT,
            embeds=list(body.get("embeds") or []),
            components=list(body.get("components") or []),
            allowed_mentions=body.get("allowed_mentions"),
            webhook_id=webhook_id,
            avatar_url=body.get("avatar_url"),
            tts=bool(body.get("tts")),
        )
        if interaction is not None:
            message.type = MessageType.CHAT_INPUT_COMMAND
            message.application_id = self.world.application.id
            message.interaction_metadata = {
                "id": str(interaction.id),
                "type": int(interaction.type),
                "user": interaction.user.to_payload(),
                "authorizing_integration_owners": {},
            }
        self.apply_mentions(message)
        self.world.store_message(message)
        if not message.ephemeral:
            self.announce("MESSAGE_CREATE", message)
        return message

    def edit_message(self, message: Message, body: JSON) -> Message:
        """Apply a PATCH body to ``message``, record the edit and announce it."""
        self.validate(body, creating=False)
        if "content" in body:
            message.content = str(body["content"] or "")
        for key in ("embeds", "components"):
            if key in body:
                setattr(message, key, list(body[key] or []))
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        if "flags" in body and body["flags"] is not None:
            keep = message.flags & (MessageFlag.EPHEMERAL | MessageFlag.LOADING)
            message.flags = MessageFlag(int(body["flags"])) | keep
        message.flags &= ~MessageFlag.LOADING
        message.edited_timestamp = iso_timestamp()
        message.edits.append(Edit(at=time.monotonic(), content=message.content))
        self.apply_mentions(message)
        if not message.ephemeral:
            self.announce("MESSAGE_UPDATE", message)
        return message

    def delete_message(self, message: Message) -> None:
        """Mark ``message`` deleted and announce it."""
        message.deleted = True
        guild = message.channel.guild
        data: JSON = {"id": str(message.id), "channel_id": str(message.channel.id)}
        if guild is not None:
            data["guild_id"] = str(guild.id)
        if not message.ephemeral:
            self.gateway.dispatch("MESSAGE_DELETE", data, guild_id=guild.id if guild else None)

    def announce(self, event: str, message: Message) -> None:
        """Dispatch a message event to the shard that owns the message's guild."""
        guild = message.channel.guild
        self.gateway.dispatch(event, message.to_payload(), guild_id=guild.id if guild else None)

    def _reference(self, channel: Channel, reference: JSON | None) -> Message | None:
        if not reference or reference.get("message_id") is None:
            return None
        self.require(channel, Permission.READ_MESSAGE_HISTORY)
        target_channel = self.world.channels.get(int(reference.get("channel_id") or channel.id))
        found = self.world.messages.get(int(reference["message_id"]))
        if found is None or found.deleted or found.channel is not target_channel:
            if reference.get("fail_if_not_exists", True):
                raise invalid_form(
                    "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
            return None
        return found

    def apply_mentions(self, message: Message) -> None:
        """Fill ``mentions``/``mention_roles``/``mention_everyone`` from who the message pings."""
        # Discord lists in ``mentions`` only the users the message actually pings.
        pings = message.pings
        message.mentions = [self.world.users[u] for u in pings.users if u in self.world.users]
        message.mention_roles = sorted(pings.roles)
        message.mention_everyone = pings.everyone


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_of(request: web.Request) -> str | None:
    """``"METHOD /template"`` for a matched request, ``None`` when no route matched."""
    info = request.match_info
    if info.http_exception is not None:
        return None
    canonical = info.route.resource.canonical if info.route.resource else ""
    return f"{request.method} {canonical.removeprefix(API_PREFIX)}"


def _major(request: web.Request) -> str:
    return "+".join(request.match_info[k] for k in _MAJOR_PARAMETERS if k in request.match_info)


def _redacted(headers: Any) -> dict[str, str]:
    out = {str(k): str(v) for k, v in headers.items()}
    for key in list(out):
        if key.lower() == "authorization":
            scheme = out[key].split(" ", 1)[0]
            out[key] = f"{scheme} <redacted>"
    return out


# Routes reached with a webhook or interaction token in the path: no bot token needed.
_TOKEN_IN_PATH = ("/webhooks/{webhook_id}/{webhook_token}", "/interactions/")


def middleware(ctx: RestContext) -> Middleware:
    """Authenticate, rate-limit, run the handler, map errors and record the call."""

    @web.middleware
    async def handle(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/gateway" or not request.path.startswith(API_PREFIX):
            return await handler(request)
        route = route_of(request)
        text = await request.text() if not request.content_type.startswith("multipart/") else ""
        call = Call(
            method=request.method,
            path=request.path.removeprefix(API_PREFIX),
            route=route,
            params=dict(request.match_info) if route else {},
            query=dict(request.query),
            json=_loads(text),
            headers=_redacted(request.headers),
            at=time.monotonic(),
        )
        response = await _respond(ctx, request, handler, route)
        body = getattr(response, "text", None)
        ctx.calls.append(replace(call, status=response.status, response=_loads(body or "")))
        ctx.on_change()
        return response

    return handle


async def _respond(
    ctx: RestContext, request: web.Request, handler: Handler, route: str | None
) -> web.StreamResponse:
    if route is None:
        return ApiError(404, 0, "404: Not Found").to_response()
    token_in_path = any(marker in route for marker in _TOKEN_IN_PATH)
    if not token_in_path:
        auth = request.headers.get("Authorization", "")
        if not secrets.compare_digest(auth, f"Bot {ctx.config.token}"):
            return ApiError(401, 0, "401: Unauthorized").to_response()
    if ctx.failing_writes is not None and request.method != "GET":
        return ApiError(ctx.failing_writes, 0, f"{ctx.failing_writes}: Server Error").to_response()
    verdict = ctx.limiter.check(route, _major(request))
    if verdict.limited:
        return json_response(verdict.body(), status=429, headers=verdict.headers)
    try:
        response = await handler(request)
    except ApiError as error:
        response = error.to_response()
    except UnknownEntity as unknown:
        response = ApiError(404, unknown.code, f"Unknown {unknown.kind}").to_response()
    response.headers.update(verdict.headers)
    return response


def _loads(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
