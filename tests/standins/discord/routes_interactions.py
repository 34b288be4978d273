"""REST routes for answering interactions: the callback, and the follow-up helpers the webhook
routes use for ``/webhooks/{application_id}/{interaction_token}/...``.

Discord's rules are enforced: one callback per interaction (40060), a callback type that fits
the interaction kind, and the response deadline (10062 "Unknown interaction" when the bot is
later than ``interaction_deadline`` seconds, 3 in Discord).
"""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from .interactions import ALLOWED_CALLBACKS, CallbackType, Interaction
from .model import JSON, NO_FLAGS, Message, MessageFlag, MessageType
from .rest import ApiError, RestContext, invalid_form, json_response

_UNKNOWN_INTERACTION = ApiError(404, 10062, "Unknown interaction")


def interaction_for(ctx: RestContext, request: web.Request) -> Interaction | None:
    """The interaction named by ``/webhooks/{application_id}/{token}``, if the id is the app's."""
    if int(request.match_info["webhook_id"]) != ctx.world.application.id:
        return None
    token = request.match_info["webhook_token"]
    for interaction in ctx.interactions.values():
        if secrets.compare_digest(interaction.token, token):
            return interaction
    raise _UNKNOWN_INTERACTION


def interaction_message(interaction: Interaction, message_id: str) -> Message:
    """``@original`` or one of the follow-ups of ``interaction``."""
    candidates = interaction.replies
    if message_id == "@original":
        if interaction.original is not None:
            return interaction.original
        if interaction.message is not None and interaction.acknowledged:
            # After a button's deferred update, @original is the message the button is on.
            return interaction.message
        raise ApiError(404, 10008, "Unknown Message")
    for message in candidates:
        if str(message.id) == message_id and not message.deleted:
            return message
    raise ApiError(404, 10008, "Unknown Message")


async def send_followup(ctx: RestContext, interaction: Interaction, body: JSON) -> web.Response:
    """A follow-up message; after a deferral the first one fills the "thinking" message."""
    if not interaction.acknowledged:
        raise _UNKNOWN_INTERACTION
    original = interaction.original
    if original is not None and original.flags & MessageFlag.LOADING:
        return json_response(ctx.edit_message(original, body).to_payload())
    message = ctx.create_message(
        interaction.channel,
        ctx.world.bot,
        body,
        webhook_id=ctx.world.application.id,
        interaction=interaction,
    )
    interaction.followups.append(message)
    return json_response(message.to_payload())


def routes(ctx: RestContext) -> list[web.RouteDef]:
    """The routes of this module, bound to ``ctx``."""

    def respond_with_message(interaction: Interaction, body: JSON, loading: bool) -> Message:
        data = dict(body.get("data") or {})
        message = ctx.create_message(
            interaction.channel,
            ctx.world.bot,
            data,
            webhook_id=ctx.world.application.id,
            interaction=interaction,
            extra_flags=MessageFlag.LOADING if loading else NO_FLAGS,
        )
        if interaction.message is not None:
            # Answers to a button click are ordinary messages, not command responses.
            message.type = MessageType.DEFAULT
        interaction.original = message
        return message

    async def callback(request: web.Request) -> web.Response:
        interaction = ctx.interactions.get(int(request.match_info["webhook_id"]))
        if interaction is None or not secrets.compare_digest(
            interaction.token, request.match_info["webhook_token"]
        ):
            raise _UNKNOWN_INTERACTION
        if time.monotonic() - interaction.created_at > ctx.config.interaction_deadline:
            raise _UNKNOWN_INTERACTION
        if interaction.acknowledged:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        body = await ctx.body(request)
        try:
            kind = CallbackType(int(body.get("type", 0)))
        except ValueError:
            raise invalid_form(
                "type", "BASE_TYPE_CHOICES", "Value must be one of the callback types."
            ) from None
        if kind not in ALLOWED_CALLBACKS.get(interaction.type, frozenset()):
            raise ApiError(
                400, 40043, "Interaction callback type is not valid for this interaction"
            )

        message: Message | None = None
        if kind is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
            message = respond_with_message(interaction, body, loading=False)
        elif kind is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            message = respond_with_message(interaction, body, loading=True)
        elif kind is CallbackType.UPDATE_MESSAGE and interaction.message is not None:
            message = ctx.edit_message(interaction.message, dict(body.get("data") or {}))
        interaction.callbacks.append(body)
        ctx.on_change()

        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        summary: JSON = {"id": str(interaction.id), "type": int(interaction.type)}
        resource: JSON = {"type": int(kind)}
        if message is not None:
            summary.update(
                response_message_id=str(message.id),
                response_message_loading=bool(message.flags & MessageFlag.LOADING),
                response_message_ephemeral=message.ephemeral,
            )
            resource["message"] = message.to_payload()
        return json_response({"interaction": summary, "resource": resource})

    return [web.post("/interactions/{webhook_id}/{webhook_token}/callback", callback)]
