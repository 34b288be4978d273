"""REST routes for application commands: global and per-guild, bulk overwrite, create, list."""

from __future__ import annotations

from aiohttp import web

from .model import JSON
from .rest import ApiError, RestContext, invalid_form, json_response

MAX_COMMANDS = 100


def routes(ctx: RestContext) -> list[web.RouteDef]:
    """The routes of this module, bound to ``ctx``."""
    world = ctx.world
    application = world.application

    def scope(request: web.Request) -> tuple[list[JSON], int | None]:
        if int(request.match_info["application_id"]) != application.id:
            raise ApiError(403, 50001, "Missing Access")
        if "guild_id" not in request.match_info:
            return application.global_commands, None
        guild = world.guild(int(request.match_info["guild_id"]))
        return application.guild_commands.setdefault(guild.id, []), guild.id

    def registered(definition: JSON, guild_id: int | None, existing: list[JSON]) -> JSON:
        name = definition.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 32:
            raise invalid_form(
                "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
            )
        kind = int(definition.get("type", 1))
        if kind == 1 and not definition.get("description"):
            raise invalid_form("description", "BASE_TYPE_REQUIRED", "This field is required")
        # Re-registering a command keeps its id, as in Discord.
        same = [c for c in existing if c["name"] == name and int(c.get("type", 1)) == kind]
        command: JSON = {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "dm_permission": True,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
            "name_localizations": None,
            "description_localizations": None,
            **definition,
            "id": same[0]["id"] if same else str(world.ids.next_id()),
            "application_id": str(application.id),
            "version": str(world.ids.next_id()),
        }
        if guild_id is not None:
            command["guild_id"] = str(guild_id)
        return command

    async def list_commands(request: web.Request) -> web.Response:
        commands, _ = scope(request)
        return json_response(commands)

    async def overwrite(request: web.Request) -> web.Response:
        commands, guild_id = scope(request)
        body = await ctx.body(request)
        if not isinstance(body, list) or len(body) > MAX_COMMANDS:
            raise invalid_form(
                "_", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_COMMANDS} or fewer in length."
            )
        fresh = [registered(d, guild_id, commands) for d in body]
        commands[:] = fresh
        return json_response(fresh)

    async def create(request: web.Request) -> web.Response:
        commands, guild_id = scope(request)
        command = registered(await ctx.body(request), guild_id, commands)
        commands[:] = [c for c in commands if c["id"] != command["id"]] + [command]
        return json_response(command, status=201)

    global_path = "/applications/{application_id}/commands"
    guild_path = "/applications/{application_id}/guilds/{guild_id}/commands"
    return [
        web.get(global_path, list_commands),
        web.put(global_path, overwrite),
        web.post(global_path, create),
        web.get(guild_path, list_commands),
        web.put(guild_path, overwrite),
        web.post(guild_path, create),
    ]
