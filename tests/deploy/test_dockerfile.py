"""The Dockerfile: a slim multi-stage build whose final stage runs ``troupe`` as a non-root
user with no build tools, and a .dockerignore that lets in exactly what it copies."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.dockerfile_model import (
    REPO,
    DockerIgnore,
    Stage,
    copy_sources,
    parse_dockerfile,
    seconds,
)

BUILD_TOOLS = re.compile(
    r"\b(apt-get|apt|apk|gcc|g\+\+|cc|make|build-essential|pip wheel|pip install)\b"
)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile()


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def dockerignore() -> DockerIgnore:
    return DockerIgnore((REPO / ".dockerignore").read_text(encoding="utf-8"))


def test_every_stage_is_python_311_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "a builder stage and a final stage"
    for stage in stages:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base), stage.base


def test_final_stage_takes_only_the_venv_from_the_builder(stages: list[Stage], final: Stage):
    builder = stages[0]
    assert builder.name == "builder"
    from_builder = [copy for copy in final.instructions("COPY") if "--from=builder" in copy.flags]
    assert [copy.value for copy in from_builder] == [("/opt/venv", "/opt/venv")]
    assert final.env["PATH"].startswith("/opt/venv/bin:")


def test_final_stage_installs_and_compiles_nothing(final: Stage) -> None:
    for run in final.instructions("RUN"):
        assert not BUILD_TOOLS.search(run.value[0]), run.original


def test_final_stage_runs_as_a_non_root_user(final: Stage) -> None:
    users = final.instructions("USER")
    assert users, "the final stage must switch to a user"
    user = users[-1].value[0].split(":")[0]
    assert user not in ("root", "0")


def test_entrypoint_is_troupe_run_in_exec_form(final: Stage) -> None:
    (entrypoint,) = final.instructions("ENTRYPOINT")
    (cmd,) = final.instructions("CMD")
    # Exec form: troupe itself receives SIGTERM, not a shell.
    assert entrypoint.json
    assert entrypoint.value == ("troupe",)
    assert cmd.json
    assert cmd.value == ("run",)


def test_migrations_sit_beside_the_installed_bot_package(final: Stage) -> None:
    # bot/storage/migrate.py finds migrations/ next to the bot package, here in site-packages.
    site_packages = final.variables["SITE_PACKAGES"]
    assert site_packages == "/opt/venv/lib/python3.11/site-packages"
    copies = {copy.value[0]: final.expand(copy.value[-1]) for copy in final.instructions("COPY")}
    assert copies["migrations/"] == f"{site_packages}/migrations/"
    assert copies["alembic.ini"] == "/app/alembic.ini"


def test_characters_and_health_port_match_the_compose_file(final: Stage) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    bot = compose["services"]["bot"]
    copies = {copy.value[0]: copy.value[-1] for copy in final.instructions("COPY")}
    characters = final.env["TROUPE_CHARACTERS_DIR"]
    assert copies["characters/"].rstrip("/") == characters
    assert f"./characters:{characters}:ro" in bot["volumes"]
    # The compose health check runs a script the image has, against the port the image sets.
    script = bot["healthcheck"]["test"][-1]
    assert copies["docker/healthcheck.py"] == script
    assert final.env["TROUPE_HEALTH_PORT"] == "8080"
    assert final.instructions("EXPOSE")[0].value == ("8080",)


def test_default_database_is_a_file_the_user_can_write(final: Stage) -> None:
    assert final.env["DATABASE_URL"] == "sqlite:////app/data/troupe.sqlite3"
    runs = " && ".join(run.value[0] for run in final.instructions("RUN"))
    assert "--uid 10001" in runs
    assert "mkdir /app/data" in runs
    assert "chown troupe:troupe /app/data" in runs
    assert final.instructions("USER")[-1].value == ("10001:10001",)


def test_every_copied_path_exists_and_enters_the_build_context(
    stages: list[Stage], dockerignore: DockerIgnore
) -> None:
    for stage in stages:
        for copy in stage.instructions("COPY"):
            if any(flag.startswith("--from=") for flag in copy.flags):
                continue
            for source in copy_sources(copy):
                assert (REPO / source).exists(), source
                assert not dockerignore.excludes(source), f"{source} is in .dockerignore"
    for source in ("bot/app.py", "bot/storage/migrate.py", "migrations/versions/0001_initial.py"):
        assert not dockerignore.excludes(source), source


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.local",
        ".venv/bin/python",
        ".git/config",
        "troupe.sqlite3",
        "tests/conftest.py",
        "bot/__pycache__/app.cpython-311.pyc",
        "bot/storage/__pycache__/migrate.cpython-311.pyc",
        "troupe.yaml",
    ],
)
def test_secrets_and_local_files_stay_out_of_the_build_context(
    dockerignore: DockerIgnore, path: str
) -> None:
    assert dockerignore.excludes(path)


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        # The examples of Docker's .dockerignore documentation.
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "temp", False),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("temp?", "tempa", True),
        ("**/*.go", "a/b/c.go", True),
        ("**/*.go", "c.go", True),
        ("*.md\n!README.md", "README.md", False),
        ("*.md\n!README.md", "CHANGES.md", True),
        # A pattern that matches a folder excludes what is inside it.
        ("bot", "bot/storage/migrate.py", True),
        ("*\n!bot/", "bot/storage/migrate.py", False),
    ],
)
def test_dockerignore_matcher_follows_docker(patterns: str, path: str, excluded: bool) -> None:
    assert DockerIgnore(patterns).excludes(path) is excluded


@pytest.mark.parametrize(
    ("duration", "expected"),
    [("30s", 30), ("1m0s", 60), ("1m30s", 90), ("1h2m3.5s", 3723.5), ("500ms", 0.5)],
)
def test_docker_durations_are_read_in_seconds(duration: str, expected: float) -> None:
    assert seconds(duration) == expected
