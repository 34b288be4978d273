"""The character menu: who is the main character, who else is in the scene, who could be.

Changing the characters is for the chat's admins. A platform that keeps some characters out
of some chats (Discord's age-restricted channels) passes ``admit``, which raises a
:class:`~bot.errors.Refusal` for a character it keeps out.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.characters.schema import Character
from bot.conversation.commands.caller import Caller
from bot.conversation.manager import ConversationManager
from bot.errors import MainCharacterStays

#: Checks a character may be brought into the caller's chat (raises a Refusal if not).
Admit = Callable[[Character], None]


def _admit_all(character: Character) -> None:
    """Every character may be used everywhere."""


async def describe_scene(manager: ConversationManager, caller: Caller) -> str:
    """The main character, the others in the scene, and the characters available."""
    scene = await manager.scene(caller.key)
    main, extras = scene[0], scene[1:]
    present = {c.id for c in scene}
    others = [c.name for c in manager.characters if c.id not in present]
    text = f"Main character: {main.name}."
    if extras:
        text += " Also in the scene: " + ", ".join(c.name for c in extras) + "."
    return text + f"\nAvailable: {', '.join(others) or 'nobody else'}."


async def _chosen(
    manager: ConversationManager, caller: Caller, name: str, admit: Admit
) -> Character:
    """The character called ``name``, once the caller may change the scene and it may come."""
    await caller.require_admin()
    character = manager.characters.get(name)
    admit(character)
    return character


async def make_main(
    manager: ConversationManager, caller: Caller, name: str, admit: Admit = _admit_all
) -> str:
    """Make the character called ``name`` (id or name) the main one."""
    character = await _chosen(manager, caller, name, admit)
    await manager.set_character(caller.key, character.id)
    return f"Now talking to {character.name}."


async def join_scene(
    manager: ConversationManager, caller: Caller, name: str, admit: Admit = _admit_all
) -> str:
    """Bring the character called ``name`` into the scene."""
    character = await _chosen(manager, caller, name, admit)
    await manager.add_to_scene(caller.key, character.id)
    return f"{character.name} joins the scene."


async def leave_scene(manager: ConversationManager, caller: Caller, name: str) -> str:
    """Send the character called ``name`` out of the scene; the main character stays."""
    character = await _chosen(manager, caller, name, _admit_all)
    main = await manager.character_for(caller.key)
    if character.id == main.id:
        raise MainCharacterStays(
            f"{character.name} is the main character here; make another character the main "
            "one first."
        )
    await manager.remove_from_scene(caller.key, character.id)
    return f"{character.name} leaves the scene."


async def toggle_in_scene(
    manager: ConversationManager, caller: Caller, name: str, admit: Admit = _admit_all
) -> str:
    """Bring the character called ``name`` into the scene, or send it out if it is there."""
    await caller.require_admin()
    character = manager.characters.get(name)
    if any(c.id == character.id for c in await manager.scene(caller.key)):
        return await leave_scene(manager, caller, character.id)
    return await join_scene(manager, caller, character.id, admit)
