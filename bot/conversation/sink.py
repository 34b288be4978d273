"""How the engine talks back: the platform-side half of a turn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.characters.schema import Character


class DeliveryFailed(Exception):
    """The platform did not take a reply or notice, after the retries the sink allows."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        #: The chat will not take messages again (bot blocked or removed, channel gone).
        self.permanent = permanent


class ReplySink(Protocol):
    """Delivers one conversation's replies on one platform.

    The engine calls, per turn: :meth:`begin`, then :meth:`delta` for each streamed piece, then
    exactly one of :meth:`finish` or :meth:`retract`. :meth:`notice` may come at any time,
    also outside a turn (answers to commands).
    Adapters own the platform limits: edit cadence, message length, splitting.
    """

    async def begin(self, character: Character) -> None:
        """A reply from ``character`` is on its way (show a typing indicator)."""

    async def delta(self, text: str) -> None:
        """The next piece of the reply, as it streams in."""

    async def finish(self, text: str) -> Sequence[str]:
        """Show exactly ``text`` as the final reply; return the platform ids of the messages.

        Raises :class:`DeliveryFailed` when the platform did not take it after the sink's
        retries (never an empty list to mean failure).
        """

    async def retract(self, replacement: str | None = None) -> None:
        """Withdraw whatever was shown of the current reply: it must not stay visible.

        With ``replacement``, the character says that instead (edit in place or post anew).
        """

    async def notice(self, text: str) -> None:
        """Post a short plain notice (an error, a command's answer).

        Raises :class:`DeliveryFailed` when the platform did not take it.
        """


@runtime_checkable
class SwipeSink(ReplySink, Protocol):
    """A sink that can also rewrite a reply already shown and offer its swipe controls.

    Before :meth:`~ReplySink.finish` the engine calls :meth:`offer_controls`.
    For a regeneration or a continuation the engine calls :meth:`begin_over` instead of
    :meth:`~ReplySink.begin`: :meth:`~ReplySink.finish` then makes the messages that show
    the old reply show the new text (posting more, or deleting some, as its length needs),
    and :meth:`~ReplySink.retract` puts the old text back.
    """

    async def begin_over(
        self, character: Character, message_ids: Sequence[str], shown: str, *, keep: bool
    ) -> None:
        """The reply shown as ``message_ids`` (reading ``shown``) is to be rewritten; with
        ``keep`` the new text continues ``shown``, otherwise it replaces it."""

    async def offer_controls(self, controls: SwipeControls) -> None:
        """Show ``controls`` under the reply the next :meth:`~ReplySink.finish` shows (on
        its last part). Called just before it, so that the buttons can ride on the write
        that puts the final text up instead of costing one of their own.

        Only the newest reply gets controls; an older reply's are not taken away (that
        would cost a write per reply): pressing them answers "too late".
        """


@dataclass(frozen=True, slots=True)
class SwipeControls:
    """What a reply's swipe controls show: which message they act on, which alternative is
    shown of how many, and whether it can be regenerated and continued (a greeting
    cannot: its alternatives are the character's other greetings)."""

    message_id: int
    position: int
    count: int
    generated: bool

    @property
    def label(self) -> str:
        """``"2/3"``: the alternative shown, counted from 1, of how many."""
        return f"{self.position + 1}/{self.count}"
