"""REST routes for channel messages: send, history, fetch, edit, delete, and typing."""

from __future__ import annotations

from aiohttp import web

from .model import Channel, Message
from .permissions import Permission
from .rest import ApiError, RestContext, json_response, missing_permissions

HISTORY_MAX = 100


def routes(ctx: RestContext) -> list[web.RouteDef]:
    """The routes of this module, bound to ``ctx``."""
    world = ctx.world

    def own_message(request: web.Request) -> tuple[Channel, Message]:
        channel = ctx.channel(request)
        ctx.require(channel)
        return channel, world.message(channel, int(request.match_info["message_id"]))

    async def send(request: web.Request) -> web.Response:
        channel = ctx.channel(request)
        ctx.require(channel, ctx.send_permission(channel))
        if channel.recipient is not None and channel.recipient.dms_closed:
            raise ApiError(403, 50007, "Cannot send messages to this user")
        body = await ctx.body(request)
        message = ctx.create_message(channel, world.bot, body)
        return json_response(message.to_payload())

    async def history(request: web.Request) -> web.Response:
        channel = ctx.channel(request)
        ctx.require(channel)
        if channel.guild is not None and not (
            channel.guild.permissions_for(world.bot, channel) & Permission.READ_MESSAGE_HISTORY
        ):
            # Discord answers an empty page rather than an error.
            return json_response([])
        limit = min(int(request.query.get("limit", 50)), HISTORY_MAX)
        messages = [m for m in channel.live_messages() if not m.ephemeral]
        if "before" in request.query:
            messages = [m for m in messages if m.id < int(request.query["before"])]
        if "after" in request.query:
            after = int(request.query["after"])
            messages = [m for m in messages if m.id > after][:limit]
        # Newest first, as Discord returns them.
        page = list(reversed(messages))[:limit]
        return json_response([m.to_payload() for m in page])

    async def fetch(request: web.Request) -> web.Response:
        channel, message = own_message(request)
        ctx.require(channel, Permission.READ_MESSAGE_HISTORY)
        return json_response(message.to_payload())

    async def edit(request: web.Request) -> web.Response:
        _, message = own_message(request)
        if message.author is not world.bot:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        body = await ctx.body(request)
        return json_response(ctx.edit_message(message, body).to_payload())

    async def delete(request: web.Request) -> web.Response:
        channel, message = own_message(request)
        if message.author is not world.bot:
            guild = channel.guild
            if (
                guild is None
                or not guild.permissions_for(world.bot, channel) & Permission.MANAGE_MESSAGES
            ):
                raise missing_permissions()
        ctx.delete_message(message)
        return web.Response(status=204)

    async def typing(request: web.Request) -> web.Response:
        channel = ctx.channel(request)
        ctx.require(channel, ctx.send_permission(channel))
        return web.Response(status=204)

    return [
        web.post("/channels/{channel_id}/messages", send),
        web.get("/channels/{channel_id}/messages", history),
        web.get("/channels/{channel_id}/messages/{message_id}", fetch),
        web.patch("/channels/{channel_id}/messages/{message_id}", edit),
        web.delete("/channels/{channel_id}/messages/{message_id}", delete),
        web.post("/channels/{channel_id}/typing", typing),
    ]
