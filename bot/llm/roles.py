"""Whether M2-her takes its advanced roles, and the probe that finds out.

See ``docs/m2her-api.md`` §3.6.

A project reported an M2-her that answered HTTP 500 to every request holding ``user_system``,
``group`` or ``sample_message_*`` while ``system``/``user``/``assistant`` worked. Troupe asks at
start (the start-up call of ``troupe run`` is the probe) and, while they are refused, folds them
into the ``system`` message (:func:`bot.characters.fold.fold_advanced_roles`), asking again every
:data:`REPROBE_SECONDS`. ``MINIMAX_ADVANCED_ROLES`` forces either form.

:class:`RoleSupport` is that state, one per engine. A turn reads only :attr:`RoleSupport.fold`,
a plain attribute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from bot.llm.errors import (
    AuthenticationError,
    InsufficientBalance,
    M2HerError,
    RateLimited,
    RequestTimeout,
    StreamInterrupted,
    UsageWindowExceeded,
)
from bot.llm.types import ChatMessage, ChatRequest, Role

if TYPE_CHECKING:
    from bot.llm.client import M2HerClient
    from bot.settings import AdvancedRoles, M2HerSettings

__all__ = [
    "ADVANCED_ROLES",
    "ADVANCED_ROLES_PROBE",
    "PLAIN_PROBE",
    "REPROBE_SECONDS",
    "RoleSupport",
]

log = logging.getLogger("bot.llm")

#: The roles a folded request leaves out.
ADVANCED_ROLES = frozenset(
    {Role.USER_SYSTEM, Role.GROUP, Role.SAMPLE_MESSAGE_USER, Role.SAMPLE_MESSAGE_AI}
)

#: While the roles are refused, ask again this often. The refusal looked like a server fault
#: MiniMax may fix any day, and a probe is one call of one reply token: twice an hour unfolds
#: soon after a fix at a cost nobody sees.
REPROBE_SECONDS = 30 * 60

#: The start-up call without the advanced roles: does the key work at all?
PLAIN_PROBE = ChatRequest(
    (ChatMessage(Role.SYSTEM, "Reply with one word.", "Check"), ChatMessage(Role.USER, "Hi")),
    max_completion_tokens=1,
)
#: The start-up call with every advanced role once.
ADVANCED_ROLES_PROBE = ChatRequest(
    (
        ChatMessage(Role.SYSTEM, "Reply with one word.", "Check"),
        ChatMessage(Role.USER_SYSTEM, "A visitor.", "Visitor"),
        ChatMessage(Role.GROUP, "A quiet room.", "Room"),
        ChatMessage(Role.SAMPLE_MESSAGE_USER, "Hello?", "Visitor"),
        ChatMessage(Role.SAMPLE_MESSAGE_AI, "Hello.", "Check"),
        ChatMessage(Role.USER, "Hi", "Visitor"),
    ),
    max_completion_tokens=1,
)

#: Failures that say nothing about the roles: the key, the account, the load, the network.
_BESIDE_THE_POINT = (
    AuthenticationError,
    InsufficientBalance,
    RateLimited,
    RequestTimeout,
    StreamInterrupted,
    UsageWindowExceeded,
)

Verdict = Literal["accepted", "refused", "unknown"]


class RoleSupport:
    """Whether requests carry the advanced roles or fold them into ``system``.

    ``mode`` is ``MINIMAX_ADVANCED_ROLES``: ``on`` and ``off`` force a form; ``auto`` sends
    the roles until a probe sees them refused. ``probing`` says there is an API to ask (not
    with the built-in fake, which takes the roles).
    """

    __slots__ = ("_checked_at", "_clock", "_probing", "_why", "fold", "mode", "verdict")

    def __init__(
        self,
        mode: AdvancedRoles = "on",
        *,
        probing: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.mode: AdvancedRoles = mode
        #: True while requests fold the advanced roles into ``system``; all a turn reads.
        self.fold = mode == "off"
        #: What the last probe found.
        self.verdict: Verdict = "unknown"
        self._probing = mode == "auto" and probing
        self._clock = clock
        self._checked_at: datetime | None = None
        self._why = ""

    @classmethod
    def from_settings(cls, settings: M2HerSettings, *, fake: bool | None = None) -> RoleSupport:
        """The state ``MINIMAX_ADVANCED_ROLES`` starts with; ``fake``: the built-in fake
        answers (by default, when no API key is set)."""
        if fake is None:
            fake = settings.api_key is None
        return cls(settings.advanced_roles, probing=not fake)

    @property
    def probing(self) -> bool:
        """Whether probes decide the form (``auto`` with a real API)."""
        return self._probing

    @property
    def form(self) -> Literal["advanced", "folded"]:
        """The form requests take now."""
        return "folded" if self.fold else "advanced"

    async def probe(self, client: M2HerClient) -> None:
        """Ask M2-her once whether it takes the advanced roles, and fold or unfold.

        A refusal is checked with a plain call, so a broken key or a down API is not taken
        for one. Raises the :class:`~bot.llm.errors.M2HerError` of a call that says nothing
        about the roles (the verdict is then ``unknown``, the form unchanged).
        """
        try:
            await client.complete(ADVANCED_ROLES_PROBE)
        except M2HerError as refusal:
            if not _refuses(refusal):
                self._found("unknown", f"the probe got no answer: {refusal}")
                raise
            try:
                await client.complete(PLAIN_PROBE)
            except M2HerError as error:
                self._found("unknown", f"the probe got no answer: {error}")
                raise
            answer = _answer(refusal)
            if self._found("refused", f"M2-her refused them with {answer}"):
                log.warning(
                    "M2-her refused the advanced roles with %s: folding user_system, group and "
                    "sample_message_* into the system message, asking again every %d min",
                    answer,
                    REPROBE_SECONDS // 60,
                )
        else:
            if self._found("accepted", "M2-her accepted them"):
                log.warning("M2-her accepts the advanced roles again: sending them as such")

    async def keep_probing(self, client: M2HerClient, interval: float = REPROBE_SECONDS) -> None:
        """Probe every ``interval`` seconds until M2-her accepts the roles (runs until then,
        or until cancelled; returns at once unless probes decide the form)."""
        while self._probing:
            await asyncio.sleep(interval)
            if self.verdict == "accepted":
                return
            try:
                await self.probe(client)
            except M2HerError as error:
                log.warning("could not probe M2-her's advanced roles: %s", error)

    def describe(self) -> str:
        """One line for people: the form, and why."""
        if self.mode != "auto":
            why = f"MINIMAX_ADVANCED_ROLES={self.mode}"
        elif not self._probing:
            why = "no probe: the built-in fake takes them"
        elif self._checked_at is None:
            why = "not probed yet: troupe run probes at start"
        else:
            why = f"{self._why}, {self._checked_at:%Y-%m-%d %H:%M} UTC"
            if self.verdict != "accepted":
                why += f"; asked again every {REPROBE_SECONDS // 60} min"
        if self.fold:
            return f"folded into the system message ({why})"
        return f"sent as their own roles ({why})"

    def details(self) -> dict[str, str]:
        """The state as plain data, for ``/healthz``."""
        return {
            "form": self.form,
            "mode": self.mode,
            "verdict": self.verdict,
            "why": self.describe(),
        }

    def _found(self, verdict: Verdict, why: str) -> bool:
        """Record a probe's ``verdict``; whether the form changed."""
        fold = verdict == "refused" or (verdict == "unknown" and self.fold)
        if not self._probing:
            fold = self.fold  # a forced form stays whatever a probe finds
        changed = fold != self.fold
        self.fold, self.verdict, self._why = fold, verdict, why
        self._checked_at = self._clock()
        return changed


def _answer(error: M2HerError) -> str:
    """``HTTP 500 (the error)`` or ``code 2013 (the error)``: what M2-her answered."""
    status = f"HTTP {error.http_status}" if error.http_status is not None else f"code {error.code}"
    return f"{status} ({error})"


def _refuses(error: M2HerError) -> bool:
    """Whether ``error`` is an answer refusing the request, not a missing one."""
    if isinstance(error, _BESIDE_THE_POINT):
        return False
    return error.code is not None or error.http_status is not None
