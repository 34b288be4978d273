"""How discord.py's writes end, as the delivery monitor hears it through the session trace."""

from __future__ import annotations

import aiohttp

from bot.observability.delivery import DeliveryMonitor
from bot.platforms.discord.delivery import report_requests
from tests.standins.discord import DiscordStandIn


async def test_server_errors_fail_429s_are_neutral_and_refusals_are_answers(
    standin: DiscordStandIn,
) -> None:
    delivery = DeliveryMonitor("discord", failures=1, seconds=0)
    auth = {"Authorization": f"Bot {standin.token}"}
    url = f"{standin.api_base_url}/channels/1/messages"
    async with aiohttp.ClientSession(trace_configs=[report_requests(delivery)]) as session:

        async def status_of(method: str, headers: dict[str, str]) -> int:
            async with session.request(method, url, json={}, headers=headers) as response:
                return response.status

        standin.fail_writes(503)
        assert await status_of("POST", auth) == 503
        assert not delivery.healthy
        assert await status_of("GET", {}) == 401  # reads are left out
        assert not delivery.healthy
        standin.fail_writes(429)
        assert await status_of("POST", auth) == 429
        assert not delivery.healthy
        standin.fail_writes(None)
        assert await status_of("POST", {}) == 401  # a refusal is an answer
        assert delivery.healthy
