"""The whole program against an M2-her that refuses its advanced roles (HTTP 500, as a project
reported): ``troupe run`` probes at start, folds them into the system message, says so in
``/healthz``, unfolds when they are accepted again; the setting forces either form; ``troupe
config --probe`` and ``troupe preview`` show the form."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bot.characters import load_characters, preview_body
from bot.llm.fake import FakeM2Her
from bot.llm.roles import ADVANCED_ROLES
from bot.runtime import run_bot
from bot.settings import Settings
from tests.standins.telegram import TelegramStandIn, free_loopback_port
from tests.test_cli import troupe

REPO = Path(__file__).resolve().parents[1]
WAIT = 20.0
ARIA = load_characters(REPO / "characters").get("aria")


@dataclass
class Running:
    tg: TelegramStandIn
    fake: FakeM2Her
    health_port: int
    out: io.StringIO

    async def health(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{self.health_port}/healthz"
            async with session.get(url) as response:
                body: dict[str, Any] = await response.json()
                return body

    async def roles_detail(self) -> dict[str, str]:
        detail: dict[str, str] = (await self.health())["details"]["m2her_advanced_roles"]
        return detail

    async def chat(self, text: str) -> str:
        """Alice says ``text`` in a direct message; Aria's answer."""
        alice = self.tg.add_user("Alice", "alice")
        dm = self.tg.private_chat(alice)
        before = len(dm.bot_messages())
        self.tg.user_says(dm, alice, text)
        await self.tg.wait_until(lambda: len(dm.bot_messages()) > before, timeout=WAIT)
        return dm.bot_messages()[-1].text


@asynccontextmanager
async def troupe_run(
    tmp_path: Path, *, reject: bool, mode: str = "auto", reprobe_seconds: float = 1800
) -> AsyncIterator[Running]:
    async with TelegramStandIn() as tg, FakeM2Her(reject_advanced_roles=reject) as fake:
        port = free_loopback_port()
        environ = {
            "TELEGRAM_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.base_url,
            "MINIMAX_API_KEY": "sk-api-for-the-fake",
            "MINIMAX_BASE_URL": fake.base_url,
            "MINIMAX_ADVANCED_ROLES": mode,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'troupe.sqlite3'}",
            "TROUPE_CHARACTERS_DIR": str(REPO / "characters"),
            "TROUPE_DEFAULT_CHARACTER": "aria",
            "TROUPE_HEALTH_PORT": str(port),
        }
        out, stop = io.StringIO(), asyncio.Event()
        running = asyncio.create_task(
            run_bot(
                Settings.from_environ(environ),
                out=out,
                stop=stop,
                reprobe_seconds=reprobe_seconds,
            )
        )
        try:
            async with asyncio.timeout(WAIT):
                while "Running: telegram" not in out.getvalue():
                    assert not running.done(), out.getvalue()
                    await asyncio.sleep(0.02)
            yield Running(tg, fake, port, out)
        finally:
            stop.set()
            assert await asyncio.wait_for(running, WAIT) == 0


def roles_of(body: Any) -> set[str]:
    return {message["role"] for message in body["messages"]}


async def test_refused_roles_are_folded_at_start_and_unfolded_when_accepted_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with troupe_run(tmp_path, reject=True, reprobe_seconds=0.3) as run:
        detail = await run.roles_detail()
        assert (detail["form"], detail["verdict"]) == ("folded", "refused")
        assert "M2-her refused them with HTTP 500" in detail["why"]
        assert (await run.health())["status"] == "ok"  # folded is no failure
        folding = [r for r in caplog.records if "folding user_system" in r.getMessage()]
        assert len(folding) == 1

        reply = await run.chat("Hello there")
        assert reply.startswith("Aria heard Alice: “Hello there”")
        sent = run.fake.requests[-1].body
        assert not ADVANCED_ROLES & roles_of(sent)
        folded = preview_body(ARIA, user="Alice", message="Hello there", fold_roles=True)
        assert sent["messages"][0] == folded["messages"][0]
        assert "\n\n[Example dialogue]\nAlice: " in sent["messages"][0]["content"]

        run.fake.reject_advanced_roles = False  # MiniMax fixed it
        async with asyncio.timeout(WAIT):
            while (await run.roles_detail())["form"] != "advanced":  # noqa: ASYNC110 - polled
                await asyncio.sleep(0.1)
        assert (await run.roles_detail())["verdict"] == "accepted"
        assert (await run.chat("Still there?")).startswith("Aria heard Alice: “Still there?”")
        assert {"sample_message_user", "sample_message_ai"} <= roles_of(run.fake.requests[-1].body)


async def test_on_sends_the_roles_even_to_an_m2her_that_refuses_them(tmp_path: Path) -> None:
    async with troupe_run(tmp_path, reject=True, mode="on") as run:
        # No probe: the start-up call is the plain key check.
        assert [roles_of(r.body) for r in run.fake.requests] == [{"system", "user"}]
        detail = await run.roles_detail()
        assert (detail["form"], detail["why"]) == (
            "advanced",
            "sent as their own roles (MINIMAX_ADVANCED_ROLES=on)",
        )
        reply = await run.chat("Hello there")
        assert "server had a problem" in reply
        assert {"sample_message_user", "sample_message_ai"} <= roles_of(run.fake.requests[-1].body)


async def test_off_folds_them_even_for_an_m2her_that_takes_them(tmp_path: Path) -> None:
    async with troupe_run(tmp_path, reject=False, mode="off") as run:
        detail = await run.roles_detail()
        assert (detail["form"], detail["why"]) == (
            "folded",
            "folded into the system message (MINIMAX_ADVANCED_ROLES=off)",
        )
        assert (await run.chat("Hello there")).startswith("Aria heard Alice: “Hello there”")
        assert all(not ADVANCED_ROLES & roles_of(r.body) for r in run.fake.requests)
        assert len(run.fake.requests) == 2  # the plain key check, the turn


async def test_troupe_config_shows_the_state_and_probes_when_asked(tmp_path: Path) -> None:
    fake = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "fake-m2her", "--port", "0", "--reject-advanced-roles"),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert fake.stdout is not None
        url = (await asyncio.wait_for(fake.stdout.readline(), 20)).decode().split()[-1]
        env = {"MINIMAX_API_KEY": "sk-api-for-the-fake", "MINIMAX_BASE_URL": url}
        plain, probed = await asyncio.gather(
            asyncio.to_thread(troupe, "config", tmp_path=tmp_path, env=env),
            asyncio.to_thread(troupe, "config", "--probe", tmp_path=tmp_path, env=env),
        )
    finally:
        fake.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(fake.wait(), 10) == 0
    assert plain.returncode == 0, plain.stderr
    assert yaml.safe_load(plain.stdout)["m2her_advanced_roles"] == (
        "sent as their own roles (not probed yet: troupe run probes at start)"
    )
    assert probed.returncode == 0, probed.stderr
    state = yaml.safe_load(probed.stdout)["m2her_advanced_roles"]
    assert state.startswith("folded into the system message (M2-her refused them with HTTP 500")
    assert "sk-api-for-the-fake" not in probed.stdout + probed.stderr


def test_troupe_config_without_a_key_needs_no_probe(tmp_path: Path) -> None:
    result = troupe("config", "--probe", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["m2her_advanced_roles"] == (
        "sent as their own roles (no probe: the built-in fake takes them)"
    )


def test_troupe_preview_shows_the_folded_form_and_says_which(tmp_path: Path) -> None:
    preview = ("preview", "aria", "--user", "Kit", "--message", "Hi", "--greeting", "none")
    folded = preview_body(ARIA, user="Kit", message="Hi", fold_roles=True)
    by_flag = troupe(*preview, "--roles", "folded", tmp_path=tmp_path)
    by_setting = troupe(*preview, tmp_path=tmp_path, env={"MINIMAX_ADVANCED_ROLES": "off"})
    for result in (by_flag, by_setting):
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == folded
        assert "shown: the folded form" in result.stderr
    assert "MINIMAX_ADVANCED_ROLES=off" in by_setting.stderr
    advanced = troupe(*preview, tmp_path=tmp_path)
    assert json.loads(advanced.stdout) == preview_body(ARIA, user="Kit", message="Hi")
    assert "shown: M2-her's advanced roles" in advanced.stderr
    assert "--roles folded shows the other form" in advanced.stderr
