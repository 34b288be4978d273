"""The chat commands every platform offers, once: their rules, limits and wordings.

Each function takes the manager and a :class:`Caller` (who runs the command, where, and
whether they may administer the chat), does what was asked and returns the answer to show,
or raises a :class:`~bot.errors.Refusal` saying why not. A platform maps its UI onto these:
Discord's slash options and buttons, Telegram's text commands and inline buttons, the
terminal's lines.

- :mod:`.persona`: who the user is in the story (show, set, clear; one length limit).
- :mod:`.scene`: the character menu (main character, scene, available characters).
- :mod:`.erase`: reset and forget, each after a :class:`Question`.
- :mod:`.usage`: tokens and cost.
- :mod:`.memory`: what the character remembers (show, forget an item, fix an item).
- :mod:`.triggers`: when characters speak in a chat.
- :mod:`.moderation`: a server's moderation policy and recent events.
- :mod:`.lore`: the world books attached to a chat.
- :mod:`.swipes`: regenerate, browse and continue a reply (who may; too late).
- :mod:`.nudges`: whether and when characters speak first.
"""

from bot.conversation.commands.caller import Caller
from bot.conversation.commands.erase import (
    CANCEL,
    CANCELLED,
    FORGET_QUESTION,
    NOT_YOURS,
    Question,
    ask_reset,
    forget,
    reset,
)
from bot.conversation.commands.lore import LOREBOOKS_USAGE, chat_lorebooks
from bot.conversation.commands.memory import (
    MEMORY_USAGE,
    fix_memory,
    forget_memory,
    memory_command,
    show_memory,
)
from bot.conversation.commands.moderation import (
    Mentions,
    change_from_words,
    change_policy,
    describe_events,
    describe_policy,
    describe_report_chat,
    moderation_settings,
    report_to,
)
from bot.conversation.commands.nudges import NUDGES_USAGE, describe_nudges, nudges_command
from bot.conversation.commands.persona import (
    PERSONA_MAX,
    clear_persona,
    persona_command,
    set_persona,
    show_persona,
)
from bot.conversation.commands.scene import (
    Admit,
    describe_scene,
    join_scene,
    leave_scene,
    make_main,
    toggle_in_scene,
)
from bot.conversation.commands.swipes import (
    GREETING_STAYS,
    LABELS,
    NOT_YOUR_REPLY,
    NOTHING_TO_SWIPE,
    TOO_LATE,
    parse_swipe_data,
    swipe,
    swipe_data,
)
from bot.conversation.commands.triggers import (
    TRIGGERS_USAGE,
    change_triggers,
    chat_triggers,
    describe_triggers,
)
from bot.conversation.commands.usage import describe_usage, usage_line

__all__ = [
    "CANCEL",
    "CANCELLED",
    "FORGET_QUESTION",
    "GREETING_STAYS",
    "LABELS",
    "LOREBOOKS_USAGE",
    "MEMORY_USAGE",
    "NOTHING_TO_SWIPE",
    "NOT_YOURS",
    "NOT_YOUR_REPLY",
    "NUDGES_USAGE",
    "PERSONA_MAX",
    "TOO_LATE",
    "TRIGGERS_USAGE",
    "Admit",
    "Caller",
    "Mentions",
    "Question",
    "ask_reset",
    "change_from_words",
    "change_policy",
    "change_triggers",
    "chat_lorebooks",
    "chat_triggers",
    "clear_persona",
    "describe_events",
    "describe_nudges",
    "describe_policy",
    "describe_report_chat",
    "describe_scene",
    "describe_triggers",
    "describe_usage",
    "fix_memory",
    "forget",
    "forget_memory",
    "join_scene",
    "leave_scene",
    "make_main",
    "memory_command",
    "moderation_settings",
    "nudges_command",
    "parse_swipe_data",
    "persona_command",
    "report_to",
    "reset",
    "set_persona",
    "show_memory",
    "show_persona",
    "swipe",
    "swipe_data",
    "toggle_in_scene",
    "usage_line",
]
