"""Characters that speak first on Telegram: ``/nudges`` through python-telegram-bot and the
Bot API stand-in, on an injected clock; a user who blocks the bot gets no more."""

from __future__ import annotations

from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.conversation.nudges import NudgeDefaults
from bot.llm.fake import Error, FakeM2Her
from bot.observability.health import HealthServer
from bot.platforms.telegram.app import TelegramBot
from tests.conversation.nudging import Clock, ahead, eventually, settle
from tests.observability.probe import healthz
from tests.standins.telegram import TelegramStandIn
from tests.standins.telegram.model import Chat
from tests.telegram.conftest import WAIT, BotFactory, ManagerFactory, said_back

DEFAULTS = NudgeDefaults(quiet_minutes=60, quiet_hours="off", timezone="UTC", max_per_day=3)


async def started(
    make_manager: ManagerFactory, start_bot: BotFactory
) -> tuple[Clock, TelegramBot, ConversationManager]:
    """The adapter on an engine whose clock the test moves (noon UTC), connected."""
    clock = ahead(12)
    manager = await make_manager(
        settings=ManagerSettings(default_character="aria", nudges=DEFAULTS), now=clock
    )
    bot = await start_bot(manager)
    await settle(manager)  # connected: the scheduler runs
    return clock, bot, manager


async def left_alone(
    tg: TelegramStandIn, manager: ConversationManager, clock: Clock, chat: Chat, **later: float
) -> None:
    """Nothing reaches ``chat`` however long it stays quiet."""
    calls = len(tg.calls)
    clock.advance(**later)
    await settle(manager)
    assert [c for c in tg.calls[calls:] if c.params.get("chat_id") == chat.id] == []


async def test_a_private_chat_after_opting_in_and_never_once_the_user_blocked_the_bot(
    tg: TelegramStandIn, make_manager: ManagerFactory, start_bot: BotFactory
) -> None:
    clock, _, manager = await started(make_manager, start_bot)
    alice = tg.add_user("Alice", "alice")
    dm = tg.private_chat(alice)
    key = ConversationKey("telegram", str(dm.id))
    tg.user_says(dm, alice, "Hello, Aria")
    await said_back(tg, dm, "Aria heard Alice")
    clock.advance(hours=3)
    await settle(manager)
    assert len(dm.bot_messages()) == 1  # she did not ask

    tg.user_says(dm, alice, "/nudges on")
    answer = await said_back(tg, dm, "Characters may speak first here.")
    assert "After 60 minutes without a message, a character opens a topic." in answer
    messages = len(dm.bot_messages())
    clock.advance(minutes=60)
    await settle(manager)
    await tg.wait_until(lambda: len(dm.bot_messages()) == messages + 1, timeout=WAIT)
    assert dm.bot_messages()[-1].text.startswith("Aria heard Alice")

    # She blocks the bot while its update about that is lost (another process ran then): the
    # next nudge meets the 403.
    tg.world.shut_out(dm, alice, True)
    calls = len(tg.calls)
    clock.advance(minutes=60)
    await settle(manager)
    refused = [c for c in tg.calls[calls:] if c.status == 403]
    assert refused
    assert "bot was blocked by the user" in (refused[0].description or "")
    plan = await manager.nudge_plan(key)
    assert not plan.settings.enabled
    assert plan.state.blocked_at == clock.at

    await left_alone(tg, manager, clock, dm, days=2)  # remembered: no more tries


async def test_blocking_the_bot_turns_nudges_off_at_once(
    tg: TelegramStandIn, make_manager: ManagerFactory, start_bot: BotFactory
) -> None:
    clock, _, manager = await started(make_manager, start_bot)
    bob = tg.add_user("Bob", "bob")
    dm = tg.private_chat(bob)
    key = ConversationKey("telegram", str(dm.id))
    tg.user_says(dm, bob, "/nudges on")
    await said_back(tg, dm, "Characters may speak first here.")
    tg.block(bob)  # Telegram tells the bot (my_chat_member: kicked)

    async def off() -> bool:
        return (await manager.nudge_plan(key)).state.blocked_at is not None

    await eventually(off)
    await left_alone(tg, manager, clock, dm, hours=3)


async def test_in_a_group_its_admins_turn_nudges_on(
    tg: TelegramStandIn, make_manager: ManagerFactory, start_bot: BotFactory
) -> None:
    clock, _, manager = await started(make_manager, start_bot)
    bob, alice = tg.add_user("Bob", "bob"), tg.add_user("Alice", "alice")
    group = tg.group("Lantern", [bob, alice], admins=[bob])
    tg.user_says(group, alice, "/nudges on")
    await said_back(tg, group, "Only the group's admins can do that.")
    tg.user_says(group, bob, "/nudges on quiet 30")  # one change per command
    await said_back(tg, group, "Unknown setting")
    tg.user_says(group, bob, "/nudges on")
    await said_back(tg, group, "Characters may speak first here.")
    tg.user_says(group, bob, "/nudges quiet 30")
    await said_back(tg, group, "After 30 minutes without a message")

    messages = len(group.bot_messages())
    clock.advance(minutes=30)
    await settle(manager)
    await tg.wait_until(lambda: len(group.bot_messages()) == messages + 1, timeout=WAIT)
    tg.user_says(group, alice, "/usage")
    usage = await said_back(tg, group, "of which characters speaking first:")
    assert " in 1 nudge (≈ $" in usage


async def test_failing_nudges_leave_healthz_healthy(
    tg: TelegramStandIn, make_manager: ManagerFactory, start_bot: BotFactory, fake_m2her: FakeM2Her
) -> None:
    clock, bot, manager = await started(make_manager, start_bot)
    users = [tg.add_user(name) for name in ("Alice", "Bob", "Carol", "Dan")]
    chats = [tg.private_chat(user) for user in users]
    for user, chat in zip(users, chats, strict=True):
        tg.user_says(chat, user, "/nudges on")
        await said_back(tg, chat, "Characters may speak first here.")
    for user, chat in zip(users[:2], chats[:2], strict=True):
        tg.world.shut_out(chat, user, True)  # unannounced: their nudges meet 403s
    fake_m2her.enqueue(*(Error(2013) for _ in range(2)))  # and two calls fail at M2-her
    async with HealthServer(manager.metrics, host="127.0.0.1", port=0) as health:
        health.add_check("telegram", bot.delivery.check)
        for _ in range(2):
            clock.advance(minutes=60)
            await settle(manager)
            status, body = await healthz(health.port)
            assert (status, body["status"]) == (200, "ok")
    # The scheduler carried on: whoever takes messages got a nudge by the second round, and
    # those who blocked the bot are off.
    reachable = chats[2:]
    await tg.wait_until(
        lambda: all(len(chat.bot_messages()) >= 2 for chat in reachable), timeout=WAIT
    )
    for chat in chats[:2]:
        plan = await manager.nudge_plan(ConversationKey("telegram", str(chat.id)))
        assert plan.state.blocked_at is not None
