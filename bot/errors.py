"""The root of Troupe's own errors, and the refusals a chat command answers with.

Every error Troupe raises on purpose derives from :class:`TroupeError`. Adapters catch
:class:`Refusal` by type and show its text to the user who asked; anything else is a failure,
logged, and answered with a generic apology.
"""

from __future__ import annotations


class TroupeError(Exception):
    """Base of every error Troupe raises on purpose.

    ``str()`` is safe: it never holds a secret (an API key, a database password) nor text a
    user was not meant to see, so it may be logged. For a :class:`Refusal` it is also written
    for the user and shown as it is; other errors say what failed for operators (an M2-her
    error carries a separate ``user_message``).
    """


class Refusal(TroupeError):
    """What was asked cannot be done; ``str()`` says why, in words for the person who asked."""


class NotAllowed(Refusal):
    """The user may not do this here (an admin's command, someone else's question)."""


class PersonaTooLong(Refusal):
    """A persona longer than the limit every platform shares."""


class MainCharacterStays(Refusal, ValueError):
    """The main character cannot leave the scene; another must become the main one first."""


class BadCommandWords(Refusal):
    """A text command's words do not say a valid change; the message gives the usage."""


class AdultsOnly(Refusal):
    """An adults-only character was asked for where it may not be used."""


class TooLate(Refusal):
    """A reply can no longer be changed: a newer message came after it, or it is gone."""


class OverLimit(Refusal):
    """A rate limit or a daily token budget keeps a turn from running."""
