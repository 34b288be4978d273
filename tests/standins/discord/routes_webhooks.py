"""REST routes for webhooks: channel webhooks (list, create, execute, edit, delete their
messages) and, on the same paths, interaction follow-ups (``/webhooks/{application_id}/{token}``).
"""

from __future__ import annotations

from aiohttp import web

from . import routes_interactions as followups
from .model import Channel, Message, User, Webhook
from .permissions import Permission
from .rest import ApiError, RestContext, invalid_form, json_response

MAX_USERNAME = 80
# Discord refuses webhook names containing these words.
FORBIDDEN_NAME_PARTS = ("clyde", "discord")


def routes(ctx: RestContext) -> list[web.RouteDef]:
    """The routes of this module, bound to ``ctx``."""
    world = ctx.world

    def check_name(name: object, field_name: str) -> None:
        text = str(name or "")
        if not 1 <= len(text) <= MAX_USERNAME:
            raise invalid_form(
                field_name,
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {MAX_USERNAME} in length.",
            )
        if any(part in text.lower() for part in FORBIDDEN_NAME_PARTS):
            raise invalid_form(
                field_name, "USERNAME_INVALID_CONTAINS", "Username cannot contain that word"
            )

    def target_channel(request: web.Request, webhook: Webhook) -> Channel:
        thread_id = request.query.get("thread_id")
        if thread_id is None:
            return webhook.channel
        thread = world.channel(int(thread_id))
        if thread.parent is not webhook.channel:
            raise ApiError(400, 220001, "Webhooks can only post in threads of their channel")
        return thread

    def webhook_message(request: web.Request, webhook: Webhook) -> Message:
        channel = target_channel(request, webhook)
        message = world.message(channel, int(request.match_info["message_id"]))
        if message.webhook_id != webhook.id:
            raise ApiError(404, 10008, "Unknown Message")
        return message

    async def list_webhooks(request: web.Request) -> web.Response:
        channel = ctx.channel(request)
        ctx.require(channel, Permission.MANAGE_WEBHOOKS)
        hooks = [w.to_payload() for w in world.webhooks.values() if w.channel is channel]
        return json_response(hooks)

    async def create_webhook(request: web.Request) -> web.Response:
        channel = ctx.channel(request)
        if channel.guild is None or channel.is_thread:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        ctx.require(channel, Permission.MANAGE_WEBHOOKS)
        body = await ctx.body(request)
        check_name(body.get("name"), "name")
        existing = [w for w in world.webhooks.values() if w.channel is channel]
        if len(existing) >= ctx.config.max_webhooks_per_channel:
            raise ApiError(400, 30007, "Maximum number of webhooks reached (15)")
        webhook = world.create_webhook(channel, str(body["name"]), created_by=world.bot)
        return json_response(webhook.to_payload())

    async def get_webhook(request: web.Request) -> web.Response:
        webhook = world.webhook(int(request.match_info["webhook_id"]))
        ctx.require(webhook.channel, Permission.MANAGE_WEBHOOKS)
        return json_response(webhook.to_payload())

    async def delete_webhook(request: web.Request) -> web.Response:
        webhook = world.webhook(int(request.match_info["webhook_id"]))
        ctx.require(webhook.channel, Permission.MANAGE_WEBHOOKS)
        del world.webhooks[webhook.id]
        return web.Response(status=204)

    async def execute(request: web.Request) -> web.Response:
        interaction = followups.interaction_for(ctx, request)
        if interaction is not None:
            return await followups.send_followup(ctx, interaction, await ctx.body(request))
        webhook = world.webhook(
            int(request.match_info["webhook_id"]), request.match_info["webhook_token"]
        )
        body = await ctx.body(request)
        username = body.get("username") or webhook.name
        check_name(username, "username")
        author = User(id=webhook.id, username=str(username), bot=True)
        channel = target_channel(request, webhook)
        message = ctx.create_message(channel, author, body, webhook_id=webhook.id)
        if request.query.get("wait", "false").lower() in ("true", "1"):
            return json_response(message.to_payload())
        return web.Response(status=204)

    def token_message(request: web.Request) -> Message:
        # The same paths serve interaction responses (application id + interaction token).
        interaction = followups.interaction_for(ctx, request)
        if interaction is not None:
            return followups.interaction_message(interaction, request.match_info["message_id"])
        webhook = world.webhook(
            int(request.match_info["webhook_id"]), request.match_info["webhook_token"]
        )
        return webhook_message(request, webhook)

    async def get_message(request: web.Request) -> web.Response:
        return json_response(token_message(request).to_payload())

    async def edit_message(request: web.Request) -> web.Response:
        message = token_message(request)
        body = await ctx.body(request)
        return json_response(ctx.edit_message(message, body).to_payload())

    async def delete_message(request: web.Request) -> web.Response:
        ctx.delete_message(token_message(request))
        return web.Response(status=204)

    token_path = "/webhooks/{webhook_id}/{webhook_token}"
    return [
        web.get("/channels/{channel_id}/webhooks", list_webhooks),
        web.post("/channels/{channel_id}/webhooks", create_webhook),
        web.get("/webhooks/{webhook_id}", get_webhook),
        web.delete("/webhooks/{webhook_id}", delete_webhook),
        web.post(token_path, execute),
        web.get(token_path + "/messages/{message_id}", get_message),
        web.patch(token_path + "/messages/{message_id}", edit_message),
        web.delete(token_path + "/messages/{message_id}", delete_message),
    ]
