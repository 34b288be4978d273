"""REST routes for identity and structure: the bot user, its application, the gateway, guilds,
members, DM channels and channel lookups."""

from __future__ import annotations

from aiohttp import web

from .model import JSON
from .rest import RestContext, json_response


def routes(ctx: RestContext) -> list[web.RouteDef]:
    """The routes of this module, bound to ``ctx``."""
    world = ctx.world

    async def get_me(request: web.Request) -> web.Response:
        return json_response({**world.bot.to_payload(), "verified": True, "mfa_enabled": False})

    async def get_user(request: web.Request) -> web.Response:
        return json_response(world.user(int(request.match_info["user_id"])).to_payload())

    async def get_application(request: web.Request) -> web.Response:
        return json_response(world.application.to_payload())

    async def get_gateway(request: web.Request) -> web.Response:
        return json_response({"url": ctx.config.gateway_url})

    async def get_gateway_bot(request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return json_response(
            {
                "url": ctx.config.gateway_url,
                "shards": ctx.config.shard_count,
                "session_start_limit": limit,
            }
        )

    async def get_guild(request: web.Request) -> web.Response:
        guild = world.guild(int(request.match_info["guild_id"]))
        payload: JSON = guild.to_payload()
        for key in ("members", "channels", "threads", "voice_states", "presences"):
            payload.pop(key)
        return json_response(payload)

    async def get_guild_channels(request: web.Request) -> web.Response:
        guild = world.guild(int(request.match_info["guild_id"]))
        plain = [c.to_payload() for c in guild.channels.values() if not c.is_thread]
        return json_response(plain)

    async def get_guild_roles(request: web.Request) -> web.Response:
        guild = world.guild(int(request.match_info["guild_id"]))
        return json_response([r.to_payload() for r in guild.roles.values()])

    async def get_member(request: web.Request) -> web.Response:
        guild = world.guild(int(request.match_info["guild_id"]))
        user_id = int(request.match_info["user_id"])
        if user_id not in guild.members:
            return json_response({"message": "Unknown Member", "code": 10007}, status=404)
        return json_response(guild.members[user_id].to_payload())

    async def get_channel(request: web.Request) -> web.Response:
        channel = ctx.channel(request)
        ctx.require(channel)
        return json_response(channel.to_payload())

    async def create_dm(request: web.Request) -> web.Response:
        body = await ctx.body(request)
        recipient = world.user(int(body["recipient_id"]))
        return json_response(world.open_dm(recipient).to_payload())

    return [
        web.get("/users/@me", get_me),
        web.get("/users/{user_id}", get_user),
        web.post("/users/@me/channels", create_dm),
        web.get("/applications/@me", get_application),
        web.get("/oauth2/applications/@me", get_application),
        web.get("/gateway", get_gateway),
        web.get("/gateway/bot", get_gateway_bot),
        web.get("/guilds/{guild_id}", get_guild),
        web.get("/guilds/{guild_id}/channels", get_guild_channels),
        web.get("/guilds/{guild_id}/roles", get_guild_roles),
        web.get("/guilds/{guild_id}/members/{user_id}", get_member),
        web.get("/channels/{channel_id}", get_channel),
    ]
