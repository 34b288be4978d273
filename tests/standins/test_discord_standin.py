"""Self-tests of the Discord stand-in: an unmodified discord.py runs against it over loopback.

Every test that runs a discord.py client also proves nothing left 127.0.0.1: the client's
aiohttp trace (``loopback_only_trace``) raises on any other host, and the URLs it saw are checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
import zlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.standins.discord import (
    CallbackType,
    CloseCode,
    CommandNotAvailable,
    DiscordStandIn,
    Intent,
    Permission,
    loopback_only_trace,
    shard_for,
)

SEND = "POST /channels/{channel_id}/messages"
EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"
NO_PINGS = discord.AllowedMentions.none()


@pytest.fixture
async def standin() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn() as server:
        yield server


@pytest.fixture
def pointed(standin: DiscordStandIn) -> Iterator[DiscordStandIn]:
    with standin.point_discord_py_here():
        yield standin


def make_client(
    cls: type[discord.Client] = discord.Client,
    *,
    message_content: bool = True,
    seen: list[str] | None = None,
    **options: object,
) -> discord.Client:
    intents = discord.Intents.default()
    intents.message_content = message_content
    return cls(
        intents=intents,
        guild_ready_timeout=0.05,
        http_trace=loopback_only_trace(seen),
        **options,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def running(client: discord.Client, standin: DiscordStandIn) -> AsyncIterator[discord.Client]:
    """Start ``client`` against the stand-in, wait for READY, and always close it."""
    task = asyncio.create_task(client.start(standin.token))
    try:
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({ready, task}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises what stopped the client
        assert ready in done, "client did not get READY"
        yield client
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)


def world(standin: DiscordStandIn):
    guild = standin.create_guild("Tavern")
    general = standin.create_text_channel(guild, "general")
    alice = standin.create_member(guild, "alice", global_name="Alice")
    return guild, general, alice


# -- connecting -------------------------------------------------------------------------------


async def test_client_connects_over_zlib_stream_and_sees_the_world(pointed: DiscordStandIn):
    guild, general, _ = world(pointed)
    thread = pointed.create_thread(general, "side plot")
    mods = pointed.create_role(guild, "Mods", Permission.MANAGE_GUILD)
    seen: list[str] = []
    async with running(make_client(seen=seen), pointed) as client:
        assert client.user is not None
        assert client.user.id == pointed.bot.id
        assert client.application_id == pointed.application_id
        got = client.get_guild(guild.id)
        assert got is not None
        assert got.get_channel(general.id).name == "general"  # type: ignore[union-attr]
        assert got.get_thread(thread.id).parent_id == general.id  # type: ignore[union-attr]
        assert got.get_role(mods.id).permissions.manage_guild  # type: ignore[union-attr]
        assert got.owner_id == guild.owner_id
        assert got.get_member(pointed.bot.id) is not None

        (session,) = pointed.gateway.ready_sessions
        assert session.compression == "zlib-stream"
        assert session.intents & Intent.MESSAGE_CONTENT
        assert pointed.gateway.heartbeats >= 1  # discord.py beats right after HELLO
    assert pointed.gateway.identify_payloads[0]["token"] == "<redacted>"
    assert all(url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:")) for url in seen)
    assert {"GET /users/@me", "GET /oauth2/applications/@me"} <= {c.route for c in pointed.calls}
    assert all(c.headers["Authorization"] == "Bot <redacted>" for c in pointed.calls)
    assert pointed.token not in repr(pointed.calls)


@pytest.mark.parametrize(
    ("query", "identify", "code"),
    [
        ("?encoding=etf", None, CloseCode.DECODE_ERROR),
        ("?compress=zstd-stream", None, CloseCode.DECODE_ERROR),
        ("", {"shard": [2, 2]}, CloseCode.INVALID_SHARD),
    ],
)
async def test_gateway_refuses_what_discord_refuses(
    standin: DiscordStandIn, query: str, identify: dict[str, object] | None, code: int
):
    async with aiohttp.ClientSession() as http, http.ws_connect(standin.gateway_url + query) as ws:
        if identify is not None:
            await ws.receive_json(timeout=2)
            payload = {"token": standin.token, "intents": 1, "properties": {}, **identify}
            await ws.send_json({"op": 2, "d": payload})
        while (await ws.receive(timeout=2)).type is not aiohttp.WSMsgType.CLOSE:
            pass
        assert ws.close_code == code


async def test_second_identify_closes_4005_and_bad_resume_is_invalid(standin: DiscordStandIn):
    identify = {"op": 2, "d": {"token": standin.token, "intents": 1, "properties": {}}}
    async with aiohttp.ClientSession() as http, http.ws_connect(standin.gateway_url) as ws:
        await ws.receive_json(timeout=2)
        await ws.send_json({"op": 6, "d": {"token": standin.token, "session_id": "nope", "seq": 1}})
        assert await ws.receive_json(timeout=2) == {"op": 9, "d": False}
        await ws.send_json(identify)
        assert (await ws.receive_json(timeout=2))["t"] == "READY"
        await ws.send_json(identify)
        while (await ws.receive(timeout=2)).type is not aiohttp.WSMsgType.CLOSE:
            pass
        assert ws.close_code == CloseCode.ALREADY_AUTHENTICATED


async def test_plain_json_gateway_hello_identify_heartbeat(standin: DiscordStandIn):
    guild = standin.create_guild("Tavern")
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(standin.gateway_url + "?v=10") as ws,
    ):
        hello = await ws.receive_json(timeout=2)
        assert hello["op"] == 10
        assert hello["d"]["heartbeat_interval"] == 41_250
        await ws.send_json({"op": 1, "d": None})
        assert (await ws.receive_json(timeout=2))["op"] == 11
        identify = {"token": standin.token, "intents": int(Intent.GUILDS), "properties": {}}
        await ws.send_json({"op": 2, "d": identify})
        ready = await ws.receive_json(timeout=2)
        assert (ready["t"], ready["s"]) == ("READY", 1)
        assert ready["d"]["guilds"] == [{"id": str(guild.id), "unavailable": True}]
        assert ready["d"]["resume_gateway_url"] == standin.gateway_url
        created = await ws.receive_json(timeout=2)
        assert (created["t"], created["d"]["id"]) == ("GUILD_CREATE", str(guild.id))
        assert len(standin.gateway.sessions) == 1
        await ws.close(code=1000)
    # A clean close ends the session; any other code would leave it open for RESUME.
    await standin.wait_for(lambda: not standin.gateway.sessions, timeout=2)


async def test_zlib_stream_frames_end_with_a_sync_flush(standin: DiscordStandIn):
    url = standin.gateway_url + "?v=10&encoding=json&compress=zlib-stream"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        frame = await ws.receive_bytes(timeout=2)
        assert frame.endswith(b"\x00\x00\xff\xff")
        assert json.loads(zlib.decompressobj().decompress(frame))["op"] == 10


async def test_bad_token_closes_4004_and_fails_rest_login(pointed: DiscordStandIn):
    async with aiohttp.ClientSession() as http, http.ws_connect(pointed.gateway_url) as ws:
        await ws.receive_json(timeout=2)
        await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 1, "properties": {}}})
        closed = await ws.receive(timeout=2)
        assert closed.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == CloseCode.AUTHENTICATION_FAILED

    client = make_client()
    with pytest.raises(discord.LoginFailure):
        await client.login("wrong")
    await client.close()


async def test_message_content_intent_switched_off_closes_4014():
    async with DiscordStandIn(message_content_intent=False) as server:
        with server.point_discord_py_here():
            client = make_client(message_content=True)
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(client.start(server.token), 5)
            await client.close()
        assert server.gateway.close_codes == [CloseCode.DISALLOWED_INTENTS]
        assert not server.world.application.flags & (1 << 19)


async def test_without_message_content_guild_text_is_blank_unless_the_bot_is_mentioned(
    pointed: DiscordStandIn,
):
    _, general, alice = world(pointed)
    received: asyncio.Queue[discord.Message] = asyncio.Queue()
    client = make_client(message_content=False)
    client.event(_queue_into(received, "on_message"))
    async with running(client, pointed):
        await pointed.user_says(general, alice, "secret plans")
        await pointed.user_says(general, alice, "hey", mentions=[pointed.bot])
        await pointed.user_says(pointed.open_dm(alice), alice, "in private")
        contents = [(await asyncio.wait_for(received.get(), 2)).content for _ in range(3)]
    assert contents == ["", f"{pointed.bot.mention} hey", "in private"]


# -- messages ---------------------------------------------------------------------------------


def _queue_into(queue: asyncio.Queue, name: str):  # type: ignore[type-arg]
    async def handler(*args: object) -> None:
        await queue.put(args[0] if len(args) == 1 else args)

    handler.__name__ = name
    return handler


async def test_scripted_message_reaches_on_message_and_the_reply_is_recorded(
    pointed: DiscordStandIn,
):
    guild, general, alice = world(pointed)
    received: asyncio.Queue[discord.Message] = asyncio.Queue()
    client = make_client()
    client.event(_queue_into(received, "on_message"))
    async with running(client, pointed):
        first = await pointed.user_says(general, alice, "hello", mentions=[pointed.bot])
        seen = await asyncio.wait_for(received.get(), 2)
        assert seen.content == f"{pointed.bot.mention} hello"
        assert seen.author.id == alice.id
        assert isinstance(seen.author, discord.Member)
        assert seen.author.display_name == "Alice"
        assert client.user in seen.mentions

        sent = await seen.reply(
            f"greetings, <@{alice.id}> and @everyone", allowed_mentions=NO_PINGS
        )
        stored = await pointed.wait_for_message(general, after=first)
        assert stored.id == sent.id
        assert stored.reference is not None
        assert stored.reference.id == first.id
        assert stored.allowed_mentions == {"parse": []}
        assert not stored.pings
        echoed = await asyncio.wait_for(received.get(), 2)  # bots receive their own messages
        assert echoed.author.id == pointed.bot.id

        loud = await general_channel(client, general.id).send(f"<@{alice.id}> @everyone")
        pinged = pointed.world.messages[loud.id].pings
        assert pinged.users == {alice.id}
        assert pinged.everyone

        reply = await pointed.user_says(general, alice, "thanks", reply_to=stored)
        seen_reply = await asyncio.wait_for(received.get(), 2)
        while seen_reply.id != reply.id:
            seen_reply = await asyncio.wait_for(received.get(), 2)
        assert seen_reply.reference is not None
        assert seen_reply.reference.message_id == sent.id
        assert client.user in seen_reply.mentions  # a reply pings the replied-to author
    assert [c.route for c in pointed.calls_to(SEND, general)] == [SEND, SEND]
    assert guild.permissions_for(pointed.bot, general) & Permission.SEND_MESSAGES


def general_channel(client: discord.Client, channel_id: int) -> discord.TextChannel:
    channel = client.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_edits_are_recorded_with_times_and_foreign_edits_refused(pointed: DiscordStandIn):
    _, general, alice = world(pointed)
    theirs = await pointed.user_says(general, alice, "mine")
    async with running(make_client(), pointed) as client:
        channel = general_channel(client, general.id)
        sent = await channel.send("draft")
        before = time.monotonic()
        for text in ("draft two", "final"):
            sent = await sent.edit(content=text)
        stored = pointed.world.messages[sent.id]
        assert stored.content == "final"
        assert [e.content for e in stored.edits] == ["draft two", "final"]
        assert stored.created_at <= before <= stored.edits[0].at <= stored.edits[1].at
        assert [c.json["content"] for c in pointed.calls_to(EDIT, general)] == [
            "draft two",
            "final",
        ]

        foreign = await channel.fetch_message(theirs.id)
        with pytest.raises(discord.Forbidden) as refused:
            await foreign.edit(content="hijacked")
        assert refused.value.code == 50005
        assert pointed.world.messages[theirs.id].content == "mine"


async def test_content_limits_unknown_messages_and_deletes(pointed: DiscordStandIn):
    _, general, _ = world(pointed)
    async with running(make_client(), pointed) as client:
        channel = general_channel(client, general.id)
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        assert (too_long.value.status, too_long.value.code) == (400, 50035)
        assert "2000" in json.dumps(pointed.calls[-1].response)
        exact = await channel.send("x" * 2000)
        assert len(pointed.world.messages[exact.id].content) == 2000
        with_file = await channel.send("notes", file=discord.File(io.BytesIO(b"data"), "a.txt"))
        assert pointed.world.messages[with_file.id].content == "notes"  # multipart payload_json

        with pytest.raises(discord.HTTPException) as empty:
            await client.http.send_message(
                general.id, params=discord.http.handle_message_parameters()
            )
        assert empty.value.code == 50006

        await exact.delete()
        assert pointed.world.messages[exact.id].deleted
        with pytest.raises(discord.HTTPException) as dangling:
            await channel.send("re", reference=exact)
        assert dangling.value.code == 50035
        with pytest.raises(discord.NotFound) as gone:
            await channel.fetch_message(exact.id)
        assert gone.value.code == 10008
        with pytest.raises(discord.NotFound):
            await exact.edit(content="again")


async def test_permissions_from_roles_and_overwrites_are_enforced(pointed: DiscordStandIn):
    guild, general, alice = world(pointed)
    muted = pointed.create_text_channel(guild, "announcements")
    hidden = pointed.create_text_channel(guild, "staff")
    no_history = pointed.create_text_channel(guild, "no-history")
    thread = pointed.create_thread(general, "plot")
    pointed.set_overwrite(muted, guild.everyone, deny=Permission.SEND_MESSAGES)
    pointed.set_overwrite(hidden, guild.everyone, deny=Permission.VIEW_CHANNEL)
    pointed.set_overwrite(no_history, pointed.bot, deny=Permission.READ_MESSAGE_HISTORY)
    earlier = await pointed.user_says(no_history, alice, "old news")
    async with running(make_client(), pointed) as client:
        with pytest.raises(discord.Forbidden) as cannot_send:
            await general_channel(client, muted.id).send("hi")
        assert cannot_send.value.code == 50013
        with pytest.raises(discord.Forbidden) as cannot_see:
            await general_channel(client, hidden.id).send("hi")
        assert cannot_see.value.code == 50001

        quiet = general_channel(client, no_history.id)
        assert [m async for m in quiet.history()] == []
        with pytest.raises(discord.Forbidden) as cannot_reply:
            await quiet.send(
                "re",
                reference=discord.MessageReference(message_id=earlier.id, channel_id=no_history.id),
            )
        assert cannot_reply.value.code == 50013

        # Threads follow the parent channel and need SEND_MESSAGES_IN_THREADS.
        in_thread = client.get_channel(thread.id)
        assert isinstance(in_thread, discord.Thread)
        await in_thread.send("in the thread")
        bot_role = next(r for r in guild.roles.values() if r.bot_id == pointed.bot.id)
        pointed.set_overwrite(general, bot_role, deny=Permission.SEND_MESSAGES_IN_THREADS)
        with pytest.raises(discord.Forbidden):
            await in_thread.send("not any more")
        await general_channel(client, general.id).send("but here yes")

        # An administrator role overrides every overwrite.
        pointed.set_role_permissions(bot_role, Permission.ADMINISTRATOR)
        await general_channel(client, hidden.id).send("admin sees all")


async def test_discord_py_computes_the_permissions_the_stand_in_enforces(pointed: DiscordStandIn):
    guild, general, alice = world(pointed)
    mods = pointed.create_role(guild, "Mods", Permission.MANAGE_WEBHOOKS)
    pointed.set_member_roles(guild, alice, [mods])
    quiet = pointed.create_text_channel(guild, "quiet")
    staff = pointed.create_text_channel(guild, "staff")
    bot_role = next(r for r in guild.roles.values() if r.bot_id == pointed.bot.id)
    pointed.set_overwrite(quiet, guild.everyone, deny=Permission.SEND_MESSAGES)
    pointed.set_overwrite(quiet, bot_role, deny=Permission.MANAGE_WEBHOOKS)
    pointed.set_overwrite(staff, guild.everyone, deny=Permission.VIEW_CHANNEL)
    pointed.set_overwrite(staff, alice, allow=Permission.VIEW_CHANNEL)
    mask = (
        Permission.VIEW_CHANNEL
        | Permission.SEND_MESSAGES
        | Permission.READ_MESSAGE_HISTORY
        | Permission.MANAGE_WEBHOOKS
        | Permission.MANAGE_MESSAGES
        | Permission.SEND_MESSAGES_IN_THREADS
    )
    intents = discord.Intents.default()
    intents.members = True
    client = discord.Client(
        intents=intents, guild_ready_timeout=0.05, http_trace=loopback_only_trace()
    )
    async with running(client, pointed):
        seen = client.get_guild(guild.id)
        assert seen is not None
        for user in (pointed.bot, alice):
            member = seen.get_member(user.id)
            assert member is not None
            for channel in (general, quiet, staff):
                theirs = general_channel(client, channel.id).permissions_for(member).value
                ours = pointed.permissions_for(user, channel)
                assert theirs & mask == ours & mask, (user.username, channel.name)


async def test_typing_history_and_guild_member_lookups(pointed: DiscordStandIn):
    guild, general, alice = world(pointed)
    for text in ("one", "two", "three"):
        await pointed.user_says(general, alice, text)
    async with running(make_client(), pointed) as client:
        channel = general_channel(client, general.id)
        async with channel.typing():
            pass
        assert len(pointed.calls_to("POST /channels/{channel_id}/typing", general)) == 1
        assert [m.content async for m in channel.history(limit=2)] == ["three", "two"]
        assert [m.content async for m in channel.history(oldest_first=True)] == [
            "one",
            "two",
            "three",
        ]
        member = await client.get_guild(guild.id).fetch_member(alice.id)  # type: ignore[union-attr]
        assert member.display_name == "Alice"
        fetched = await client.fetch_channel(general.id)
        assert fetched.id == general.id
        fetched_guild = await client.fetch_guild(guild.id)
        assert fetched_guild.name == "Tavern"
        assert [c.id for c in await fetched_guild.fetch_channels()] == [general.id]
        assert {r.id for r in await fetched_guild.fetch_roles()} == set(guild.roles)
        with pytest.raises(discord.NotFound) as no_channel:
            await client.fetch_channel(12345)
        assert no_channel.value.code == 10003


async def test_user_edits_and_deletes_reach_the_bot(pointed: DiscordStandIn):
    _, general, alice = world(pointed)
    edits: asyncio.Queue[discord.RawMessageUpdateEvent] = asyncio.Queue()
    deletes: asyncio.Queue[discord.RawMessageDeleteEvent] = asyncio.Queue()
    client = make_client()
    client.event(_queue_into(edits, "on_raw_message_edit"))
    client.event(_queue_into(deletes, "on_raw_message_delete"))
    async with running(client, pointed):
        said = await pointed.user_says(general, alice, "helo")
        await pointed.user_edits(said, "hello")
        assert [e.content for e in said.edits] == ["hello"]
        edited = await asyncio.wait_for(edits.get(), 2)
        assert (edited.message_id, edited.data["content"]) == (said.id, "hello")
        await pointed.user_deletes(said)
        deleted = await asyncio.wait_for(deletes.get(), 2)
        assert (deleted.message_id, deleted.channel_id) == (said.id, general.id)


async def test_a_user_who_closed_their_dms_refuses_the_bots_messages_with_50007(
    pointed: DiscordStandIn,
):
    _, _, alice = world(pointed)
    dm = pointed.open_dm(alice)
    async with running(make_client(), pointed) as client:
        user = await client.fetch_user(alice.id)
        await user.send("before")
        pointed.close_dms(alice)
        with pytest.raises(discord.Forbidden) as refused:
            await user.send("after")
        assert refused.value.code == 50007
        assert refused.value.text == "Cannot send messages to this user"
        pointed.close_dms(alice, closed=False)
        await user.send("again")
    assert [m.content for m in pointed.bot_messages(dm)] == ["before", "again"]


async def test_direct_messages_and_threads(pointed: DiscordStandIn):
    _, general, alice = world(pointed)
    thread = pointed.create_thread(general, "side plot", owner=alice)
    received: asyncio.Queue[discord.Message] = asyncio.Queue()
    client = make_client()
    client.event(_queue_into(received, "on_message"))
    async with running(client, pointed):
        dm = pointed.open_dm(alice)
        await pointed.user_says(dm, alice, "psst")
        private = await asyncio.wait_for(received.get(), 2)
        assert isinstance(private.channel, discord.DMChannel)
        await private.channel.send("hi in private")
        assert (await pointed.wait_for_message(dm)).content == "hi in private"
        user = await client.fetch_user(alice.id)
        await user.send("again")  # opens the DM through POST /users/@me/channels
        assert [m.content for m in pointed.bot_messages(dm)] == ["hi in private", "again"]

        await pointed.user_says(thread, alice, "in the thread")
        threaded = await _next_from(received, alice.id)
        assert isinstance(threaded.channel, discord.Thread)
        await threaded.channel.send("answer in thread")
        assert (await pointed.wait_for_message(thread)).content == "answer in thread"
        assert not pointed.bot_messages(general)

        with pytest.raises(PermissionError):
            await pointed.user_says(dm, pointed.create_user("mallory"), "not my DM")


async def _next_from(queue: asyncio.Queue[discord.Message], author_id: int) -> discord.Message:
    while True:
        message = await asyncio.wait_for(queue.get(), 2)
        if message.author.id == author_id:
            return message


# -- webhooks ---------------------------------------------------------------------------------


async def test_webhooks_post_with_username_avatar_and_in_threads(pointed: DiscordStandIn):
    guild, general, _ = world(pointed)
    thread = pointed.create_thread(general, "plot")
    received: asyncio.Queue[discord.Message] = asyncio.Queue()
    client = make_client()
    client.event(_queue_into(received, "on_message"))
    async with running(client, pointed):
        channel = general_channel(client, general.id)
        hook = await channel.create_webhook(name="Troupe characters")
        assert [w.id for w in await channel.webhooks()] == [hook.id]
        sent = await hook.send(
            "I am Aria.",
            username="Aria",
            avatar_url="https://example.invalid/aria.png",
            wait=True,
            allowed_mentions=NO_PINGS,
        )
        stored = await pointed.wait_for_message(general)
        assert (stored.id, stored.author.username, stored.content) == (
            sent.id,
            "Aria",
            "I am Aria.",
        )
        assert stored.webhook_id == hook.id
        assert stored.avatar_url == "https://example.invalid/aria.png"
        echoed = await asyncio.wait_for(received.get(), 2)
        assert (echoed.webhook_id, echoed.author.name) == (hook.id, "Aria")

        in_thread = client.get_channel(thread.id)
        assert isinstance(in_thread, discord.Thread)
        await hook.send("in the thread", username="Aria", thread=in_thread, wait=True)
        assert (await pointed.wait_for_message(thread)).author.username == "Aria"

        edited = await hook.edit_message(sent.id, content="I am Aria, edited.")
        assert edited.content == pointed.world.messages[sent.id].content == "I am Aria, edited."
        await hook.delete_message(sent.id)
        assert pointed.world.messages[sent.id].deleted

        with pytest.raises(discord.HTTPException) as bad_name:
            await hook.send("hi", username="Discord Staff")
        assert bad_name.value.code == 50035

        foreign = await pointed.webhook_says(general, "OtherBot", "beep")
        assert foreign not in pointed.bot_messages(general)

        pointed.set_overwrite(general, guild.everyone, deny=Permission.MANAGE_WEBHOOKS)
        bot_role = next(r for r in guild.roles.values() if r.bot_id == pointed.bot.id)
        pointed.set_overwrite(general, bot_role, deny=Permission.MANAGE_WEBHOOKS)
        with pytest.raises(discord.Forbidden) as no_webhooks:
            await channel.webhooks()
        assert no_webhooks.value.code == 50013


async def test_webhook_limits_and_unknown_webhooks(pointed: DiscordStandIn):
    _, general, _ = world(pointed)
    thread = pointed.create_thread(general, "plot")
    async with running(make_client(), pointed) as client:
        channel = general_channel(client, general.id)
        for number in range(15):
            await channel.create_webhook(name=f"hook {number}")
        with pytest.raises(discord.HTTPException) as too_many:
            await channel.create_webhook(name="one more")
        assert too_many.value.code == 30007
        in_thread = client.get_channel(thread.id)
        assert isinstance(in_thread, discord.Thread)
        with pytest.raises(discord.HTTPException) as not_here:
            await client.http.create_webhook(thread.id, name="in a thread")
        assert not_here.value.code == 50024
        with pytest.raises(discord.NotFound) as unknown:
            await client.fetch_webhook(42)
        assert unknown.value.code == 10015


# -- slash commands and components --------------------------------------------------------------


class Confirm(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=5)

    @discord.ui.button(label="Confirm", custom_id="confirm-reset")
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:  # type: ignore[type-arg]
        await interaction.response.edit_message(content="History erased.", view=None)


def command_tree(client: discord.Client, guild_id: int) -> app_commands.CommandTree:
    tree: app_commands.CommandTree = app_commands.CommandTree(client)
    guild = discord.Object(guild_id)
    character = app_commands.Group(name="character", description="Characters of this channel")

    @character.command(name="set", description="Bind a character")
    @app_commands.describe(name="Character name")
    async def character_set(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(f"{name} now lives here.")

    @character_set.autocomplete("name")
    async def names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        known = ["Aria", "Argus", "Bram"]
        return [
            app_commands.Choice(name=n, value=n)
            for n in known
            if n.lower().startswith(current.lower())
        ]

    @app_commands.command(name="reset", description="Forget this channel's history")
    @app_commands.default_permissions(manage_guild=True)
    async def reset(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Really?", view=Confirm(), ephemeral=True)

    @app_commands.command(name="usage", description="Tokens used")
    async def usage(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("1,234 tokens")

    tree.add_command(character, guild=guild)
    tree.add_command(reset, guild=guild)
    tree.add_command(usage, guild=guild)
    return tree


async def test_slash_commands_sync_invoke_autocomplete_and_buttons(pointed: DiscordStandIn):
    guild, general, alice = world(pointed)
    owner = guild.member(guild.owner_id).user
    async with running(make_client(), pointed) as client:
        tree = command_tree(client, guild.id)
        synced = await tree.sync(guild=discord.Object(guild.id))
        assert sorted(c.name for c in synced) == ["character", "reset", "usage"]
        registered = pointed.world.application.guild_commands[guild.id]
        assert {c["name"]: c["id"] for c in registered} == {c.name: str(c.id) for c in synced}

        invoked = await pointed.invoke_command(general, alice, "character set", {"name": "Aria"})
        await pointed.wait_for_response(invoked)
        assert invoked.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
        assert invoked.original is not None
        assert invoked.original.content == "Aria now lives here."
        assert await pointed.wait_for_message(general) is invoked.original

        typing = await pointed.autocomplete(
            general, alice, "character set", {"name": "ar"}, focused="name"
        )
        await pointed.wait_for_response(typing)
        assert [c["value"] for c in typing.choices] == ["Aria", "Argus"]

        deferred = await pointed.invoke_command(general, alice, "usage")
        await pointed.wait_for(lambda: deferred.original is not None and deferred.original.content)
        assert deferred.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
        assert deferred.original is not None
        assert (
            deferred.original.content == "1,234 tokens"
        )  # the follow-up filled the "thinking" message

        with pytest.raises(CommandNotAvailable):
            await pointed.invoke_command(general, alice, "reset")  # needs Manage Server
        with pytest.raises(CommandNotAvailable):
            await pointed.invoke_command(general, alice, "forget-me")  # never registered

        asked = await pointed.invoke_command(general, owner, "reset")
        await pointed.wait_for_response(asked)
        prompt = asked.original
        assert prompt is not None
        assert prompt.ephemeral
        (session,) = pointed.gateway.ready_sessions
        dispatched = [f["d"].get("id") for _, f in session.backlog if f["t"] == "MESSAGE_CREATE"]
        assert str(prompt.id) not in dispatched  # ephemeral messages never reach the gateway
        clicked = await pointed.click(prompt, owner, "confirm-reset")
        await pointed.wait_for_response(clicked)
        assert clicked.callback_type is CallbackType.UPDATE_MESSAGE
        assert prompt.content == "History erased."
        assert prompt.components == []


async def test_interaction_rules_double_ack_and_deadline(pointed: DiscordStandIn):
    guild, general, alice = world(pointed)
    async with running(make_client(), pointed) as client:
        tree = command_tree(client, guild.id)
        await tree.sync(guild=discord.Object(guild.id))
        invoked = await pointed.invoke_command(general, alice, "character set", {"name": "Bram"})
        await pointed.wait_for_response(invoked)
        callback = f"{pointed.api_base_url}/interactions/{invoked.id}/{invoked.token}/callback"
        async with aiohttp.ClientSession() as http:
            async with http.post(callback, json={"type": 4, "data": {"content": "twice"}}) as again:
                assert again.status == 400
                assert (await again.json())["code"] == 40060
            invoked.created_at -= 10  # as if the bot answered too late
            invoked.callbacks.clear()
            async with http.post(callback, json={"type": 4, "data": {"content": "late"}}) as late:
                assert late.status == 404
                assert (await late.json())["code"] == 10062


class Persona(discord.ui.Modal, title="Your persona"):
    text: discord.ui.TextInput[discord.ui.Modal] = discord.ui.TextInput(
        label="Who are you?", custom_id="persona-text"
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"You are: {self.text.value}", ephemeral=True)


class Later(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=5)

    @discord.ui.button(label="Later", custom_id="later")
    async def later(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:  # type: ignore[type-arg]
        await interaction.response.defer()


async def test_modal_deferred_update_original_edits_and_global_commands_in_dms(
    pointed: DiscordStandIn,
):
    guild, general, alice = world(pointed)
    async with running(make_client(), pointed) as client:
        tree: app_commands.CommandTree = app_commands.CommandTree(client)

        @tree.command(name="persona", description="Set your persona")
        async def persona(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(Persona())

        @tree.command(name="ping", description="Ping")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong", view=Later())
            await interaction.edit_original_response(content="pong (edited)")

        await tree.sync()  # global commands work in guilds and in DMs
        assert not pointed.world.application.guild_commands

        in_dm = await pointed.invoke_command(pointed.open_dm(alice), alice, "persona")
        await pointed.wait_for_response(in_dm)
        assert in_dm.callback_type is CallbackType.MODAL
        assert in_dm.modal is not None
        assert in_dm.modal["title"] == "Your persona"
        submitted = await pointed.submit_modal(in_dm, alice, {"persona-text": "a wandering bard"})
        await pointed.wait_for_response(submitted)
        assert submitted.original is not None
        assert submitted.original.content == "You are: a wandering bard"

        pinged = await pointed.invoke_command(general, alice, "ping")
        original = await pointed.wait_for_message(general, lambda m: m.content == "pong (edited)")
        assert original is pinged.original
        assert pointed.calls_to(
            "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"
        )

        clicked = await pointed.click(original, alice, "later")
        await pointed.wait_for_response(clicked)
        assert clicked.callback_type is CallbackType.DEFERRED_UPDATE_MESSAGE
        assert original.content == "pong (edited)"

        # A command the bot's tree does not know goes unanswered; answer it by hand.
        commands_url = f"{pointed.api_base_url}/applications/{pointed.application_id}/commands"
        auth = {"Authorization": f"Bot {pointed.token}"}
        async with aiohttp.ClientSession(headers=auth) as http:
            ghost = {"name": "ghost", "description": "not in the tree"}
            async with http.post(commands_url, json=ghost) as created:
                assert created.status == 201
            unanswered = await pointed.invoke_command(general, alice, "ghost")
            callback = (
                f"{pointed.api_base_url}/interactions/{unanswered.id}/{unanswered.token}/callback"
            )
            async with http.post(callback, json={"type": 1}) as pong:
                assert pong.status == 400  # PONG only answers HTTP pings
                assert (await pong.json())["code"] == 40043
            async with http.post(callback, json={"type": 6}) as wrong_kind:
                assert wrong_kind.status == 400  # deferred update is for components only
            async with http.post(callback, json={"type": 4, "data": {"content": "by hand"}}) as ok:
                assert ok.status == 204
        assert unanswered.original is not None
        assert unanswered.original.content == "by hand"
        with pytest.raises(CommandNotAvailable):
            await pointed.invoke_command(general, alice, "persona", {"unknown": 1})
        assert guild.id not in pointed.world.application.guild_commands


async def test_discord_gates_on_commands_dm_availability_and_nsfw(pointed: DiscordStandIn):
    guild, general, alice = world(pointed)
    lounge = pointed.create_text_channel(guild, "lounge", nsfw=True)
    async with running(make_client(), pointed) as client:
        tree: app_commands.CommandTree = app_commands.CommandTree(client)

        @tree.command(name="bind", description="Guild only", nsfw=True)
        @app_commands.guild_only()
        async def bind(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("bound")

        await tree.sync()
        with pytest.raises(CommandNotAvailable):
            await pointed.invoke_command(pointed.open_dm(alice), alice, "bind")
        with pytest.raises(CommandNotAvailable):
            await pointed.invoke_command(general, alice, "bind")  # age-restricted command
        answered = await pointed.invoke_command(lounge, alice, "bind")
        await pointed.wait_for_response(answered)
        assert answered.replies[0].content == "bound"


async def test_other_bots_and_foreign_webhooks_are_marked_as_such(pointed: DiscordStandIn):
    guild, general, _ = world(pointed)
    other_bot = pointed.create_member(guild, "dicebot", bot=True)
    received: asyncio.Queue[discord.Message] = asyncio.Queue()
    client = make_client()
    client.event(_queue_into(received, "on_message"))
    async with running(client, pointed):
        await pointed.user_says(general, other_bot, "rolled a 6")
        await pointed.webhook_says(general, "RSS feed", "news!")
        from_bot = await asyncio.wait_for(received.get(), 2)
        from_hook = await asyncio.wait_for(received.get(), 2)
    assert (from_bot.author.bot, from_bot.webhook_id) == (True, None)
    assert from_hook.author.bot
    assert from_hook.webhook_id is not None
    assert from_hook.author.name == "RSS feed"


# -- rate limits -------------------------------------------------------------------------------


async def test_injected_429_is_waited_out_by_discord_py(pointed: DiscordStandIn):
    _, general, _ = world(pointed)
    pointed.rate_limits.inject_429(SEND, retry_after=0.3)
    async with running(make_client(), pointed) as client:
        await general_channel(client, general.id).send("patience")
    first, second = pointed.calls_to(SEND, general)
    assert (first.status, second.status) == (429, 200)
    assert first.response["retry_after"] == 0.3
    assert second.at - first.at >= 0.3
    assert [m.content for m in pointed.bot_messages(general)] == ["patience"]


async def test_global_429_holds_every_route_until_it_passes(pointed: DiscordStandIn):
    _, general, _ = world(pointed)
    pointed.rate_limits.inject_429(SEND, retry_after=0.2, is_global=True)
    async with running(make_client(), pointed) as client:
        await general_channel(client, general.id).send("after the global limit")
    limited, retried = pointed.calls_to(SEND, general)
    assert limited.response["global"] is True
    assert limited.status == 429
    assert retried.at - limited.at >= 0.2


async def test_bucket_headers_make_discord_py_pace_itself_per_channel(pointed: DiscordStandIn):
    guild, general, _ = world(pointed)
    other = pointed.create_text_channel(guild, "other")
    pointed.rate_limits.limit(SEND, EDIT, limit=2, per=0.4)
    async with running(make_client(), pointed) as client:
        channel = general_channel(client, general.id)
        first = await channel.send("1")
        await first.edit(content="1!")
        await general_channel(client, other.id).send("elsewhere")  # its own bucket
        await channel.send("2")
    calls = pointed.calls_to(SEND, general) + pointed.calls_to(EDIT, general)
    assert all(c.status == 200 for c in pointed.calls)  # paced, never refused
    assert calls[1].at - calls[0].at >= 0.35  # "2" waited for the shared bucket to reset
    assert pointed.calls_to(SEND, other)[0].at < calls[1].at


async def test_bucket_answers_429_when_the_client_ignores_it(standin: DiscordStandIn):
    _, general, _ = world(standin)
    standin.rate_limits.limit(SEND, limit=1, per=5)
    url = f"{standin.api_base_url}/channels/{general.id}/messages"
    headers = {"Authorization": f"Bot {standin.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(url, json={"content": "a"}) as ok:
            assert ok.status == 200
            assert ok.headers["X-RateLimit-Remaining"] == "0"
        async with http.post(url, json={"content": "b"}) as limited:
            assert limited.status == 429
            assert limited.headers["Via"]
            assert 4 < (await limited.json())["retry_after"] <= 5


# -- shards and reconnects ---------------------------------------------------------------------


class QuickShardedClient(discord.AutoShardedClient):
    """discord.py waits 5 s between shard IDENTIFYs (Discord's max_concurrency); not here."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


async def test_auto_sharded_client_gets_each_guild_on_its_own_shard():
    async with DiscordStandIn(shard_count=2) as server:
        first = server.create_guild("Zero", shard=(0, 2))
        second = server.create_guild("One", shard=(1, 2))
        assert (shard_for(first.id, 2), shard_for(second.id, 2)) == (0, 1)
        channel = server.create_text_channel(second, "general")
        alice = server.create_member(second, "alice")
        received: asyncio.Queue[discord.Message] = asyncio.Queue()
        with server.point_discord_py_here():
            client = make_client(QuickShardedClient)
            client.event(_queue_into(received, "on_message"))
            async with running(client, server):
                assert isinstance(client, discord.AutoShardedClient)
                assert client.shard_count == 2
                sessions = sorted(server.gateway.ready_sessions, key=lambda s: s.shard_id)
                assert [(s.shard_id, s.shard_count) for s in sessions] == [(0, 2), (1, 2)]
                assert client.get_guild(first.id).shard_id == 0  # type: ignore[union-attr]
                assert client.get_guild(second.id).shard_id == 1  # type: ignore[union-attr]

                await server.user_says(channel, alice, "hello shard one")
                message = await asyncio.wait_for(received.get(), 2)
                assert message.guild is not None
                assert message.guild.shard_id == 1
                events = [[frame["t"] for _, frame in s.backlog] for s in sessions]
                assert "MESSAGE_CREATE" in events[1]
                assert "MESSAGE_CREATE" not in events[0]
        assert server.calls_to("GET /gateway/bot")


async def test_reconnect_and_dropped_socket_resume_without_losing_events(pointed: DiscordStandIn):
    _, general, alice = world(pointed)
    received: asyncio.Queue[discord.Message] = asyncio.Queue()
    client = make_client()
    client.event(_queue_into(received, "on_message"))
    async with running(client, pointed):
        (session,) = pointed.gateway.ready_sessions
        await pointed.gateway.reconnect_all()
        await pointed.wait_for(lambda: session.resumes == 1 and session.connected)

        await pointed.gateway.drop_all()
        await pointed.user_says(general, alice, "said while you were away")
        await pointed.wait_for(lambda: session.resumes == 2 and session.connected)
        message = await asyncio.wait_for(received.get(), 3)
        assert message.content == "said while you were away"
        assert pointed.gateway.ready_sessions == [session]
        assert len(pointed.gateway.identify_payloads) == 1


async def test_a_restarted_bot_identifies_afresh_and_sees_the_same_world(pointed: DiscordStandIn):
    _, general, alice = world(pointed)
    async with running(make_client(), pointed) as client:
        await general_channel(client, general.id).send("before the restart")
    await pointed.wait_for(lambda: not pointed.gateway.ready_sessions, timeout=2)

    await pointed.user_says(general, alice, "while the bot was down")
    received: asyncio.Queue[discord.Message] = asyncio.Queue()
    restarted = make_client()
    restarted.event(_queue_into(received, "on_message"))
    async with running(restarted, pointed):
        channel = general_channel(restarted, general.id)
        history = [m.content async for m in channel.history(oldest_first=True)]
        assert history == ["before the restart", "while the bot was down"]
        await pointed.user_says(general, alice, "welcome back")
        assert (await asyncio.wait_for(received.get(), 2)).content == "welcome back"
        assert len(pointed.gateway.ready_sessions) == 1
    assert len(pointed.gateway.identify_payloads) == 2


async def test_member_chunk_request_is_answered(pointed: DiscordStandIn):
    guild, _, alice = world(pointed)
    intents = discord.Intents.default()
    intents.members = True
    client = discord.Client(
        intents=intents, guild_ready_timeout=0.05, http_trace=loopback_only_trace()
    )
    async with running(client, pointed):
        got = client.get_guild(guild.id)
        assert got is not None
        members = await asyncio.wait_for(got.query_members("ali"), 2)
        assert [m.id for m in members] == [alice.id]


async def test_world_changes_after_ready_are_announced(pointed: DiscordStandIn):
    guild, general, _ = world(pointed)
    intents = discord.Intents.default()
    intents.members = True
    client = discord.Client(
        intents=intents, guild_ready_timeout=0.05, http_trace=loopback_only_trace()
    )
    async with running(client, pointed):
        created = pointed.create_text_channel(guild, "late-arrival", nsfw=True)
        await pointed.wait_for(lambda: client.get_channel(created.id) is not None, timeout=2)
        late = client.get_channel(created.id)
        assert isinstance(late, discord.TextChannel)
        assert late.is_nsfw()

        thread = pointed.create_thread(general, "new thread")
        await pointed.wait_for(lambda: client.get_channel(thread.id) is not None, timeout=2)

        seen = client.get_guild(guild.id)
        assert seen is not None
        role = pointed.create_role(guild, "Storytellers")
        await pointed.wait_for(lambda: seen.get_role(role.id) is not None, timeout=2)
        pointed.set_role_permissions(role, Permission.MANAGE_GUILD)
        await pointed.wait_for(lambda: seen.get_role(role.id).permissions.manage_guild, timeout=2)  # type: ignore[union-attr]

        bob = pointed.create_member(guild, "bob", roles=[role])
        await pointed.wait_for(lambda: seen.get_member(bob.id) is not None, timeout=2)
        pointed.set_member_roles(guild, bob, [])
        await pointed.wait_for(lambda: not seen.get_member(bob.id).roles[1:], timeout=2)  # type: ignore[union-attr]

        pointed.set_overwrite(general, role, deny=Permission.SEND_MESSAGES)
        channel = general_channel(client, general.id)
        await pointed.wait_for(
            lambda: channel.overwrites_for(discord.Object(role.id)).send_messages is False,
            timeout=2,
        )

        new_guild = pointed.create_guild("Second home")
        await pointed.wait_for(lambda: client.get_guild(new_guild.id) is not None, timeout=2)


async def test_unknown_routes_bad_json_and_missing_token(pointed: DiscordStandIn):
    _, general, _ = world(pointed)
    async with running(make_client(), pointed) as client:
        with pytest.raises(discord.NotFound):
            await client.fetch_stage_instance(1)
    assert [c.path for c in pointed.unhandled_calls] == ["/stage-instances/1"]

    url = f"{pointed.api_base_url}/channels/{general.id}/messages"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"content": "who am I?"}) as anonymous:
            assert anonymous.status == 401
        auth = {"Authorization": f"Bot {pointed.token}", "Content-Type": "application/json"}
        async with http.post(url, data=b"{not json", headers=auth) as garbled:
            assert garbled.status == 400
            assert (await garbled.json())["code"] == 50109
    assert not pointed.bot_messages(general)
