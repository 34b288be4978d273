"""Handing updates to the bot: long polling with ``getUpdates``, or POSTs to its webhook.

Updates stay queued until the bot confirms them (a later ``offset``, or a 2xx webhook
answer), so a bot that restarts gets what it had not confirmed, as on Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .changes import Changes
from .methods import ApiError, as_int, bad_request
from .model import JSON, WebhookDelivery

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CONFLICT_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
    "delete the webhook first"
)
# Update types Telegram only sends when asked for them in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago, for PTB's webhook server
    (which needs its port before it starts, to build ``webhook_url``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _update_type(update: JSON) -> str:
    return next(key for key in update if key != "update_id")


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class WebhookInfo:
    """The webhook the bot registered with ``setWebhook`` (empty ``url``: none)."""

    url: str = ""
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


class UpdateQueue:
    """Updates waiting for the bot and the two ways Telegram hands them over.

    Args:
        changes: the stand-in's change signal; long polls and delivery wait on it.
        clock: the stand-in's clock, for :class:`~.model.WebhookDelivery` timestamps.
        retry_delay: seconds before the first retry of a failed webhook delivery; each further
            retry waits twice as long.
        attempts: deliveries of one update before it is dropped.
    """

    def __init__(
        self, changes: Changes, clock: Callable[[], float], *, retry_delay: float, attempts: int
    ) -> None:
        self.changes = changes
        self.clock = clock
        self.retry_delay = retry_delay
        self.attempts = attempts
        self.pending: list[JSON] = []
        self.webhook = WebhookInfo()
        self.deliveries: list[WebhookDelivery] = []
        self._ids = itertools.count(1)
        self._allowed: list[str] = []
        self._poll_generation = 0
        self._closing = False
        self._session: aiohttp.ClientSession | None = None
        self._delivery: asyncio.Task[None] | None = None

    def handlers(self) -> dict[str, Callable[[JSON], Any]]:
        """The Bot API methods this queue answers."""
        return {
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
        }

    def push(self, update: JSON) -> int:
        """Queue an update (without ``update_id``); return the id it was given."""
        update_id = next(self._ids)
        self.pending.append({"update_id": update_id, **update})
        self.changes.touch()
        return update_id

    async def close(self) -> None:
        """Answer waiting polls with no updates and stop webhook delivery."""
        self._closing = True
        self.changes.touch()
        await self._stop_delivery()
        if self._session is not None:
            await self._session.close()

    # -- getUpdates ------------------------------------------------------------------------

    def _ready(self, limit: int) -> list[JSON]:
        if self._allowed:
            ready = [u for u in self.pending if _update_type(u) in self._allowed]
        else:
            ready = [u for u in self.pending if _update_type(u) not in _OPT_IN_UPDATES]
        return ready[:limit]

    def _confirm(self, offset: int | None) -> None:
        if offset is None or offset == 0:
            return
        if offset < 0:
            self.pending = self.pending[offset:]
        else:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        self.changes.touch()

    async def get_updates(self, params: JSON) -> list[JSON]:
        """getUpdates: long polling with ``offset`` confirmation, ``limit`` and
        ``allowed_updates`` (which persists). A newer call ends a waiting one with 409."""
        if self.webhook.url:
            raise ApiError(409, CONFLICT_WEBHOOK)
        self._confirm(as_int(params, "offset"))
        if params.get("allowed_updates") is not None:
            self._allowed = list(params["allowed_updates"])
        limit = min(max(as_int(params, "limit") or 100, 1), 100)
        timeout = params.get("timeout") or 0
        if not isinstance(timeout, int | float):
            raise bad_request("invalid timeout specified")
        self._poll_generation += 1
        generation = self._poll_generation
        self.changes.touch()  # wakes an older poll so it sees it was superseded

        def settled() -> bool:
            superseded = generation != self._poll_generation
            return superseded or self._closing or bool(self._ready(limit))

        await self.changes.until(settled, timeout=timeout)
        if generation != self._poll_generation:
            raise ApiError(409, CONFLICT_POLL)
        return self._ready(limit)

    # -- webhooks --------------------------------------------------------------------------

    async def set_webhook(self, params: JSON) -> bool:
        """setWebhook: register a loopback URL and start POSTing updates to it."""
        url = str(params.get("url") or "")
        if not url:
            return await self.delete_webhook(params)
        if urlsplit(url).scheme not in ("http", "https") or not _is_loopback(url):
            raise bad_request("bad webhook: the stand-in only delivers to loopback URLs")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self.pending.clear()
        allowed = params.get("allowed_updates")
        self.webhook = WebhookInfo(
            url=url,
            secret_token=secret,
            allowed_updates=allowed,
            max_connections=as_int(params, "max_connections") or 40,
        )
        if allowed is not None:
            self._allowed = list(allowed)
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.create_task(self._deliver_forever())
        return True

    async def delete_webhook(self, params: JSON) -> bool:
        """deleteWebhook: stop webhook delivery so getUpdates can be used."""
        self.webhook = WebhookInfo()
        await self._stop_delivery()
        if params.get("drop_pending_updates"):
            self.pending.clear()
        return True

    def get_webhook_info(self, params: JSON) -> JSON:
        """getWebhookInfo: the registration and the state of delivery."""
        info: JSON = {
            "url": self.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending),
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
        if self.webhook.last_error_date is not None:
            info["last_error_date"] = self.webhook.last_error_date
            info["last_error_message"] = self.webhook.last_error_message
        return info

    async def _stop_delivery(self) -> None:
        task, self._delivery = self._delivery, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _deliver_forever(self) -> None:
        failures: dict[int, int] = {}
        while True:
            await self.changes.until(lambda: bool(self._ready(1)) or self._closing, timeout=None)
            if self._closing or not self.webhook.url:
                return
            update = self._ready(1)[0]
            update_id = update["update_id"]
            status = await self.post(update, secret=self.webhook.secret_token)
            if 200 <= status < 300:
                self._confirm(update_id + 1)
                continue
            failures[update_id] = failures.get(update_id, 0) + 1
            self.webhook.last_error_date = int(time.time())
            self.webhook.last_error_message = (
                f"Wrong response from the webhook: {status}" if status else "Connection refused"
            )
            if failures[update_id] >= self.attempts:
                self._confirm(update_id + 1)  # Telegram, too, gives up on an update eventually
            else:
                # Backing off doubles each time, so a bot whose server starts listening just
                # after setWebhook (as PTB's does) still gets its first update.
                await asyncio.sleep(self.retry_delay * 2 ** (failures[update_id] - 1))

    async def post(self, update: JSON, *, secret: str | None) -> int:
        """POST ``update`` to the webhook with ``secret`` in the secret-token header (``None``:
        no header); return the HTTP status, 0 if the bot did not answer."""
        if not self.webhook.url:
            raise RuntimeError("no webhook is set")
        if "update_id" not in update:
            update = {"update_id": next(self._ids), **update}
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        try:
            async with self._session.post(
                self.webhook.url,
                json=update,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=5),
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        self.deliveries.append(WebhookDelivery(update, secret, status, self.clock()))
        self.changes.touch()
        return status
