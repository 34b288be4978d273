"""RoleSupport against the fake M2-her: the probe, the fold it decides, re-probing, forced forms."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import aiohttp
import pytest

from bot.llm.client import M2HerClient
from bot.llm.errors import AuthenticationError, M2HerError
from bot.llm.fake import Drop, FakeM2Her
from bot.llm.roles import ADVANCED_ROLES, ADVANCED_ROLES_PROBE, PLAIN_PROBE, RoleSupport
from bot.settings import Settings
from tests.conftest import FAST_RETRY, FAST_TIMEOUTS, TEST_API_KEY

NOON = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def roles_of(body: object) -> set[str]:
    assert isinstance(body, dict)
    return {message["role"] for message in body["messages"]}


def auto() -> RoleSupport:
    return RoleSupport("auto", probing=True, clock=lambda: NOON)


async def test_the_fake_refuses_the_advanced_roles_with_http_500_when_told(
    fake_m2her: FakeM2Her,
) -> None:
    fake_m2her.reject_advanced_roles = True
    url = f"{fake_m2her.base_url}/v1/text/chatcompletion_v2"
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    async with aiohttp.ClientSession() as http:
        for request, status in ((ADVANCED_ROLES_PROBE, 500), (PLAIN_PROBE, 200)):
            body = request.to_wire(stream=False)
            async with http.post(url, json=body, headers=headers) as response:
                assert response.status == status
        one_role = {"model": "M2-her", "messages": [{"role": "group", "content": "A room"}]}
        async with http.post(url, json=one_role, headers=headers) as response:
            assert response.status == 500


async def test_accepted_roles_stay_their_own_roles(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    roles = auto()
    await roles.probe(m2her_client)
    assert (roles.fold, roles.verdict, roles.form) == (False, "accepted", "advanced")
    assert len(fake_m2her.requests) == 1
    assert roles_of(fake_m2her.requests[0].body) >= ADVANCED_ROLES
    assert (
        roles.describe() == "sent as their own roles (M2-her accepted them, 2026-05-04 12:00 UTC)"
    )


async def test_refused_roles_are_folded_with_one_log_line(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake_m2her.reject_advanced_roles = True
    roles = auto()
    with caplog.at_level(logging.INFO, logger="bot.llm"):
        await roles.probe(m2her_client)
    assert (roles.fold, roles.verdict, roles.form) == (True, "refused", "folded")
    # The refusal was checked with a plain call, which went through.
    assert roles_of(fake_m2her.requests[-1].body) == {"system", "user"}
    folding = [r for r in caplog.records if "folding user_system" in r.getMessage()]
    assert len(folding) == 1
    assert "HTTP 500" in folding[0].getMessage()
    assert roles.describe().startswith(
        "folded into the system message (M2-her refused them with HTTP 500"
    )
    assert roles.describe().endswith("2026-05-04 12:00 UTC; asked again every 30 min)")
    assert roles.details()["form"] == "folded"

    # Probing again and finding the same logs nothing more.
    with caplog.at_level(logging.INFO, logger="bot.llm"):
        await roles.probe(m2her_client)
    assert len([r for r in caplog.records if "folding user_system" in r.getMessage()]) == 1


async def test_a_failure_that_says_nothing_about_roles_changes_nothing(
    fake_m2her: FakeM2Her,
) -> None:
    roles = auto()
    async with M2HerClient("sk-invalid", base_url=fake_m2her.base_url) as bad_key:
        with pytest.raises(AuthenticationError):
            await roles.probe(bad_key)
    assert (roles.fold, roles.verdict) == (False, "unknown")

    # A refused probe whose plain check fails too: the API is down, not the roles.
    fake_m2her.reject_advanced_roles = True
    fake_m2her.enqueue(*[Drop()] * 4)  # the plain call's every try
    async with M2HerClient(
        TEST_API_KEY, base_url=fake_m2her.base_url, retry=FAST_RETRY, timeouts=FAST_TIMEOUTS
    ) as client:
        with pytest.raises(M2HerError):
            await roles.probe(client)
    assert (roles.fold, roles.verdict) == (False, "unknown")
    assert "the probe got no answer" in roles.describe()


async def test_re_probing_unfolds_once_m2her_accepts_them_and_then_stops(
    fake_m2her: FakeM2Her, m2her_client: M2HerClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake_m2her.reject_advanced_roles = True
    roles = auto()
    await roles.probe(m2her_client)
    assert roles.fold
    probing = asyncio.create_task(roles.keep_probing(m2her_client, interval=0.05))
    try:
        await asyncio.sleep(0.3)
        assert roles.fold  # still refused ...
        assert not probing.done()  # ... still asking
        fake_m2her.reject_advanced_roles = False
        async with asyncio.timeout(5):
            await probing  # accepted: nothing more to ask
    finally:
        probing.cancel()
    assert (roles.fold, roles.verdict) == (False, "accepted")
    unfolding = [r for r in caplog.records if "accepts the advanced roles again" in r.getMessage()]
    assert len(unfolding) == 1


@pytest.mark.parametrize(("mode", "fold"), [("on", False), ("off", True)])
async def test_a_forced_form_is_kept_whatever_a_probe_finds(
    mode: str, fold: bool, fake_m2her: FakeM2Her, m2her_client: M2HerClient
) -> None:
    settings = Settings.from_environ(
        {"MINIMAX_ADVANCED_ROLES": mode.upper(), "MINIMAX_API_KEY": "k"}
    )
    roles = RoleSupport.from_settings(settings.m2her, fake=False)
    assert (roles.mode, roles.fold, roles.probing) == (mode, fold, False)
    fake_m2her.reject_advanced_roles = not fold
    await roles.probe(m2her_client)
    assert roles.fold is fold
    assert f"MINIMAX_ADVANCED_ROLES={mode}" in roles.describe()


async def test_keep_probing_returns_at_once_without_an_api_to_ask(
    m2her_client: M2HerClient,
) -> None:
    for roles in (RoleSupport("auto", probing=False), RoleSupport("off", probing=True)):
        async with asyncio.timeout(1):
            await roles.keep_probing(m2her_client, interval=60)


def test_with_the_built_in_fake_the_roles_are_on_unless_forced_off() -> None:
    auto_fake = RoleSupport.from_settings(Settings.from_environ({}).m2her, fake=True)
    assert (auto_fake.fold, auto_fake.probing) == (False, False)
    assert auto_fake.describe() == (
        "sent as their own roles (no probe: the built-in fake takes them)"
    )
    off = Settings.from_environ({"MINIMAX_ADVANCED_ROLES": "off"}).m2her
    assert RoleSupport.from_settings(off, fake=True).fold


def test_the_setting_is_auto_on_or_off() -> None:
    assert Settings.from_environ({}).m2her.advanced_roles == "auto"
    with pytest.raises(ValueError, match="MINIMAX_ADVANCED_ROLES must be auto, on or off"):
        Settings.from_environ({"MINIMAX_ADVANCED_ROLES": "sometimes"})
