"""A scene in a Telegram group: characters answer each other, each reply headed with its
speaker's name, until the budget is spent or someone writes again (Telegram does not tell
bots who is typing)."""

from __future__ import annotations

import asyncio

from bot.conversation.director import Director
from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ConversationManager
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Reply
from bot.platforms.telegram.app import TelegramBot
from tests.conversation.test_director import FixedChance
from tests.standins.telegram import Chat, Message, TelegramStandIn, User
from tests.telegram.conftest import WAIT

#: Long enough for a chained turn to have started, were one coming.
SETTLE = 0.5


async def tavern(tg: TelegramStandIn, manager: ConversationManager) -> tuple[User, User, Chat]:
    """Alice and Bob in a group whose scene is Aria and Bram; unnamed chained turns always
    happen."""
    alice, bob = tg.add_user("Alice", "alice"), tg.add_user("Bob", "bob")
    chat = tg.group("Tavern", [alice, bob], admins=[alice], supergroup=True)
    manager.director = Director(rng=FixedChance(0.0))
    await manager.add_to_scene(ConversationKey("telegram", str(chat.id)), "bram")
    return alice, bob, chat


async def replies(tg: TelegramStandIn, chat: Chat, count: int) -> list[Message]:
    """The bot's first ``count`` messages in ``chat``, once their texts are final."""

    def final() -> list[Message]:
        done = [m for m in chat.bot_messages() if m.text.endswith("in context)")]
        return done if len(done) >= count else []

    await tg.wait_until(lambda: bool(final()), timeout=WAIT, what=f"{count} replies")
    return final()[:count]


async def test_characters_answer_each_other_each_under_its_name(
    tg: TelegramStandIn, manager: ConversationManager, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    alice, _, chat = await tavern(tg, manager)
    tg.user_says(chat, alice, "Aria, hello")
    aria, bram = await replies(tg, chat, 2)
    assert aria.text.startswith("Aria\nAria heard Alice")
    assert bram.text.startswith("Bram Oakbarrel\nBram Oakbarrel heard Aria")
    assert bram.entities[0] == {"type": "bold", "offset": 0, "length": len("Bram Oakbarrel")}
    await asyncio.sleep(SETTLE)
    assert len(fake_m2her.requests) == 2  # the default budget: two character turns


async def test_a_newer_message_ends_the_chain(
    tg: TelegramStandIn, manager: ConversationManager, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    alice, bob, chat = await tavern(tg, manager)
    fake_m2her.enqueue(Reply(delay=0.5))
    tg.user_says(chat, alice, "Aria, hello")
    await tg.wait_until(lambda: len(fake_m2her.requests) == 1, timeout=WAIT)
    tg.user_says(chat, bob, "nice fire in here")  # not for the characters, but newer
    [aria] = await replies(tg, chat, 1)
    assert aria.text.startswith("Aria\nAria heard Alice")
    await asyncio.sleep(SETTLE)
    assert len(fake_m2her.requests) == 1
