"""Who runs a chat command, where, and whether they may administer the chat."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.conversation.incoming import ConversationKey
from bot.errors import NotAllowed

#: The words a platform without its own says to someone who is not an admin.
NOT_ADMIN = "Only the chat's admins can do that."


async def _everyone() -> bool:
    return True


class Caller:
    """The person running one command, in the conversation they run it in."""

    __slots__ = ("_admin", "_may_administer", "key", "not_admin", "user_id")

    def __init__(
        self,
        key: ConversationKey,
        user_id: str,
        may_administer: Callable[[], Awaitable[bool]] = _everyone,
        not_admin: str = NOT_ADMIN,
    ) -> None:
        self.key = key
        self.user_id = user_id
        #: Asked once, by the first step that needs it (a platform may ask its servers).
        self._may_administer = may_administer
        self._admin: bool | None = None
        #: The platform's words for who may (Discord's Manage Server, a Telegram group's admins).
        self.not_admin = not_admin

    @property
    def platform(self) -> str:
        """The platform the command came from."""
        return self.key.platform

    async def require_admin(self) -> None:
        """Raise :class:`~bot.errors.NotAllowed` unless the caller may administer the chat."""
        if self._admin is None:
            self._admin = await self._may_administer()
        if not self._admin:
            raise NotAllowed(self.not_admin)
