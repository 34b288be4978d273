"""The ``troupe`` command as people run it: real processes, a real SQLite file, the fake M2-her."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from bot.app import open_engine
from bot.characters.loader import load_characters
from bot.characters.prompt import preview_body
from bot.cli import main
from bot.llm.types import ChatMessage, ChatRequest, Role
from bot.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def troupe(
    *args: str, stdin: str = "", tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MINIMAX_API_KEY", "DISCORD_TOKEN", "TELEGRAM_TOKEN", "TROUPE_LOG_LEVEL")
    }
    environ["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environ,
        timeout=60,
        check=False,
    )


def test_chat_on_a_pipe_answers_each_line_and_says_which_model(tmp_path: Path) -> None:
    result = troupe(
        "chat", "aria", "--user", "Sam", stdin="Hello!\nAnother line\n", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Using the built-in fake M2-her (MINIMAX_API_KEY is not set)")
    replies = [line for line in lines if "heard Sam" in line]
    assert [r.split("“")[1].split("”")[0] for r in replies] == ["Hello!", "Another line"]
    assert result.stderr == ""


def context_size(output: str) -> int:
    """The fake's "(a fake M2-her reply, N messages in context)" count of the last reply."""
    reply = [line for line in output.splitlines() if "messages in context" in line][-1]
    return int(reply.rsplit("reply, ", 1)[1].split()[0])


def test_chat_history_persists_between_runs(tmp_path: Path) -> None:
    first = troupe("chat", "aria", "--user", "Sam", stdin="Remember this.\n", tmp_path=tmp_path)
    second = troupe("chat", "aria", "--user", "Sam", stdin="What did I say?\n", tmp_path=tmp_path)
    # The second run's prompt holds the first run's message and reply too, and no new greeting.
    assert context_size(second.stdout) == context_size(first.stdout) + 2
    assert "A visitor, at this hour?" not in second.stdout
    reset = troupe("chat", "aria", "--user", "Sam", stdin="/reset\n", tmp_path=tmp_path)
    # The greeting, two messages and two replies.
    assert "Conversation reset (5 messages forgotten)." in reset.stdout


def test_chat_commands_work_from_a_pipe(tmp_path: Path) -> None:
    script = "/persona A courier\n/persona\n/character bram\nhi\n/character bramm\n/forget\n"
    result = troupe("chat", "aria", "--user", "Sam", stdin=script, tmp_path=tmp_path)
    out = result.stdout
    assert "* Persona set." in out
    assert "* Your persona: A courier" in out
    assert "* Now talking to Bram Oakbarrel." in out
    assert "Bram Oakbarrel heard Sam: “hi”" in out
    assert "did you mean" in out.lower()
    assert "* Erased 2 messages, 1 persona," in out


def test_run_without_tokens_and_without_a_terminal_says_what_to_set(tmp_path: Path) -> None:
    result = troupe("run", stdin="hello\n", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "set DISCORD_TOKEN and/or TELEGRAM_TOKEN" in result.stderr
    assert "heard" not in result.stdout


def test_run_without_tokens_at_a_terminal_is_the_terminal_chat(tmp_path: Path) -> None:
    primary, terminal = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TELEGRAM_TOKEN")}
    environ.update(DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite3'}", MINIMAX_API_KEY="")
    with subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=environ,
        text=True,
    ) as process:
        os.close(terminal)
        os.write(primary, b"Hello from a terminal\n/quit\n")
        out, err = process.communicate(timeout=60)
    os.close(primary)
    assert process.returncode == 0, err
    assert "heard" in out
    assert "“Hello from a terminal”" in out


def test_check_reports_problems_and_exits_non_zero(tmp_path: Path) -> None:
    assert troupe("check", tmp_path=tmp_path).returncode == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: X\ndescriptoin: typo\n", encoding="utf-8")
    result = troupe("check", str(broken), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "broken.yaml:2: descriptoin" in result.stdout
    assert "did you mean 'description'" in result.stdout


def test_schema_is_json(tmp_path: Path) -> None:
    result = troupe("schema", tmp_path=tmp_path)
    schema = json.loads(result.stdout)
    assert "name" in schema["properties"]


def test_preview_prints_the_exact_body(tmp_path: Path) -> None:
    result = troupe(
        "preview",
        "mara",
        "--user",
        "Kit",
        "--message",
        "Any news?",
        "--greeting",
        "none",
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    mara = load_characters(REPO / "characters").get("mara")
    assert json.loads(result.stdout) == preview_body(mara, user="Kit", message="Any news?")


def test_an_unknown_character_is_one_clear_line(tmp_path: Path) -> None:
    result = troupe("preview", "arya", tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "aria" in result.stderr


def test_a_broken_database_url_is_one_clear_line(tmp_path: Path) -> None:
    result = troupe("db", "upgrade", tmp_path=tmp_path, env={"DATABASE_URL": "nonsense://x"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "DATABASE_URL" in result.stderr or "database" in result.stderr.lower()


def test_db_upgrade_creates_the_database(tmp_path: Path) -> None:
    result = troupe("db", "upgrade", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cli.sqlite3").exists()


async def test_fake_m2her_serves_until_sigterm(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "fake-m2her", "--port", "0", "--api-key", "k1"),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().split()[-1]
        body = {"model": "M2-her", "messages": [{"role": "user", "name": "Sam", "content": "hi"}]}
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": "Bearer k1"}
            async with session.post(
                f"{url}/v1/text/chatcompletion_v2", json=body, headers=headers
            ) as r:
                reply = await r.json()
        assert "heard Sam: “hi”" in reply["choices"][0]["message"]["content"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0


def test_version_and_help(tmp_path: Path) -> None:
    assert "troupe 0.1.0" in troupe("--version", tmp_path=tmp_path).stdout
    assert "fake-m2her" in troupe("--help", tmp_path=tmp_path).stdout


def test_the_token_budget_comes_from_the_environment(tmp_path: Path) -> None:
    small = {"TROUPE_CONTEXT_WINDOW": "3000", "TROUPE_MAX_REPLY_TOKENS": "200"}
    result = troupe("chat", "aria", stdin="word " * 3000 + "\n", tmp_path=tmp_path, env=small)
    assert "too long" in result.stdout
    bad = troupe("chat", "aria", tmp_path=tmp_path, env={"TROUPE_CONTEXT_WINDOW": "lots"})
    assert bad.returncode == 1
    assert "TROUPE_CONTEXT_WINDOW must be a whole number, got 'lots'" in bad.stderr
    too_small = troupe("chat", "aria", tmp_path=tmp_path, env={"TROUPE_CONTEXT_WINDOW": "100"})
    assert too_small.returncode == 1
    assert "no room for a prompt" in too_small.stderr


def test_config_shows_the_effective_settings_with_secrets_masked(tmp_path: Path) -> None:
    config = tmp_path / "troupe.yaml"
    config.write_text(
        "limits: {user_daily_tokens: 5000}\n"
        "platforms:\n  discord:\n    servers:\n"
        "      '42': {moderation: {on_blocked_input: silent}}\n",
        encoding="utf-8",
    )
    secrets = {
        "MINIMAX_API_KEY": "sk-api-very-secret",
        "DISCORD_TOKEN": "discord-token-secret",
        "DATABASE_URL": "postgresql://troupe:db-password-secret@db:5432/troupe",
        "TROUPE_CONFIG": str(config),
    }
    result = troupe("config", tmp_path=tmp_path, env=secrets)
    assert result.returncode == 0, result.stderr
    for secret in ("sk-api-very-secret", "discord-token-secret", "db-password-secret"):
        assert secret not in result.stdout
    assert "MINIMAX_API_KEY: '*** (set)'" in result.stdout
    assert "postgresql+asyncpg://troupe:***@db:5432/troupe" in result.stdout
    assert "user_daily_tokens: 5000" in result.stdout
    assert "platforms.discord.servers.42:" in result.stdout


def test_a_broken_config_file_is_refused_at_start_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "troupe.yaml"
    config.write_text("limits:\n  user_daily_tokens: lots\n", encoding="utf-8")
    result = troupe("chat", stdin="hi\n", tmp_path=tmp_path, env={"TROUPE_CONFIG": str(config)})
    assert result.returncode == 1
    assert f"{config}:2: limits.user_daily_tokens:" in result.stderr


def test_the_config_file_governs_the_chat(tmp_path: Path) -> None:
    config = tmp_path / "troupe.yaml"
    config.write_text("limits: {user_messages_per_minute: 1}\n", encoding="utf-8")
    result = troupe(
        "chat", "aria", stdin="one\ntwo\n", tmp_path=tmp_path, env={"TROUPE_CONFIG": str(config)}
    )
    assert result.stdout.count("heard") == 1
    assert "at most 1 messages a minute" in result.stdout


def test_an_unreachable_database_says_how_to_fix_it(tmp_path: Path) -> None:
    url = "postgresql://troupe:pw-secret@127.0.0.1:1/troupe"  # nothing listens on port 1
    result = troupe("db", "upgrade", tmp_path=tmp_path, env={"DATABASE_URL": url})
    assert result.returncode == 1
    assert "Fix: check DATABASE_URL" in result.stderr
    assert "pw-secret" not in result.stderr


def help_of(*command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return capsys.readouterr().out


def listed_variables(help_text: str) -> list[str]:
    environment = help_text.split("environment (blank counts as unset):\n", 1)[1]
    return [line.split("=")[0].strip() for line in environment.splitlines() if line[2] != " "]


def test_each_commands_help_lists_the_variables_it_reads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs = ["TROUPE_LOG_LEVEL", "TROUPE_LOG_FORMAT"]
    assert listed_variables(help_of("schema", capsys=capsys)) == logs
    assert listed_variables(help_of("check", capsys=capsys)) == [*logs, "TROUPE_CHARACTERS_DIR"]
    assert listed_variables(help_of("db", "upgrade", capsys=capsys)) == [*logs, "DATABASE_URL"]
    chat = help_of("chat", capsys=capsys)
    assert "  DATABASE_URL=sqlite+aiosqlite:///troupe.sqlite3\n" in chat
    assert "  TROUPE_CONTEXT_WINDOW=65536\n" in chat
    assert "DISCORD_TOKEN" not in chat
    every = [variable.name for variable in Settings.variables()]
    assert sorted(listed_variables(help_of("run", capsys=capsys))) == sorted(every)
    assert sorted(listed_variables(help_of("config", capsys=capsys))) == sorted(every)


def test_config_shows_every_setting(tmp_path: Path) -> None:
    result = troupe(
        "config",
        tmp_path=tmp_path,
        env={"TELEGRAM_TOKEN": "123:tg-token-secret", "TELEGRAM_WEBHOOK_SECRET": "hook_value_9"},
    )
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    listed = [name for section in shown["settings"].values() for name in section]
    assert sorted(listed) == sorted(variable.name for variable in Settings.variables())
    assert shown["settings"]["telegram"]["TELEGRAM_WEBHOOK_SECRET"] == "*** (set)"
    assert shown["settings"]["discord"]["DISCORD_EDIT_INTERVAL"] == 1.2
    assert shown["platforms"] == {"discord": "off (no token)", "telegram": "on"}
    assert "tg-token-secret" not in result.stdout
    assert "hook_value_9" not in result.stdout


def test_every_malformed_variable_is_one_clear_line(tmp_path: Path) -> None:
    env = {"TROUPE_LOG_LEVEL": "loud", "DISCORD_SHARD_COUNT": "many"}
    result = troupe("schema", tmp_path=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "troupe: DISCORD_SHARD_COUNT must be a number or 'auto', got 'many'",
        "TROUPE_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'LOUD'",
    ]


async def test_the_built_in_fake_is_called_in_the_configured_api_style(tmp_path: Path) -> None:
    settings = Settings.from_environ(
        {
            "TROUPE_CHARACTERS_DIR": str(REPO / "characters"),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'style.sqlite3'}",
            "MINIMAX_API_STYLE": "openai",
        }
    )
    async with open_engine(settings) as engine:
        assert engine.client is not None
        assert engine.client.api_style == "openai"
        hello = ChatRequest((ChatMessage(Role.USER, "Hello", "Sam"),))
        assert "heard Sam" in (await engine.client.complete(hello)).text


def test_chat_with_a_scene_lets_the_characters_answer_each_other(tmp_path: Path) -> None:
    said = "Aria, what does Mara think?\n"
    result = troupe(
        "chat", "aria", "--scene", "mara", "--user", "Sam", stdin=said, tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "* Talking to Aria with Mara Quill as Sam. /help for commands." in lines
    replies = [line for line in lines if " heard " in line]
    # Aria, named, answers; her line names Mara, who answers her: the budget of two turns.
    assert [line.split(":", 1)[0] for line in replies] == ["Aria", "Mara Quill"]
    assert replies[1].startswith("Mara Quill: Mara Quill heard Aria:")


def test_preview_scene_says_who_would_answer_and_why(tmp_path: Path) -> None:
    named = troupe(
        "preview", "aria", "--scene", "bram,mara", "--message", "Is the detective in?",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert named.returncode == 0, named.stderr
    assert "Mara Quill answers: addressed by name." in named.stdout.splitlines()
    unnamed = troupe(
        "preview", "aria", "--scene", "bram", "--message", "evening", "--greeting", "1",
        tmp_path=tmp_path,
    )  # fmt: skip
    lines = unnamed.stdout.splitlines()
    # Aria just greeted: Bram, quiet longest, answers.
    assert lines[2] == "Bram Oakbarrel answers: the best score."
    assert lines[3] == "  Bram Oakbarrel: 0.38 (relevance 0.00, quiet 1.00, talkativeness 0.50)"
    assert lines[4] == "  Aria: 0.12 (relevance 0.00, quiet 0.00, talkativeness 0.50)"
    unknown = troupe("preview", "aria", "--scene", "nobody", tmp_path=tmp_path)
    assert unknown.returncode != 0
    assert "nobody" in unknown.stderr
