"""What happens when M2-her flags a message: the per-server moderation policy."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta


class ModerationAction(enum.StrEnum):
    """How the chat learns that something was blocked."""

    #: The character says its ``blocked_reply``, staying in the story.
    IN_CHARACTER = "in_character"
    #: A short plain notice from the bot.
    NOTICE = "notice"
    #: Nothing is posted (the event is still recorded).
    SILENT = "silent"


@dataclass(frozen=True, slots=True)
class ModerationPolicy:
    """Per-server moderation rules. Every flag is recorded whatever the action."""

    on_blocked_input: ModerationAction = ModerationAction.NOTICE
    on_blocked_output: ModerationAction = ModerationAction.IN_CHARACTER
    #: After this many flags within ``cooldown_window`` the author is not answered until the
    #: window has passed. 0 turns cool-down off.
    cooldown_after: int = 3
    cooldown_window: timedelta = timedelta(hours=1)

    def cooldown_notice(self) -> str:
        minutes = max(1, round(self.cooldown_window.total_seconds() / 60))
        return (
            "You have hit the content filter several times; the characters will not answer you "
            f"for a while (up to {minutes} minutes)."
        )
