""".env.example: every setting the code reads is documented there, and it holds no secret."""

from __future__ import annotations

import re

import pytest

from bot.settings import DEFAULT_SHUTDOWN_SECONDS
from tests.deploy.dockerfile_model import REPO

EXAMPLE = (REPO / ".env.example").read_text(encoding="utf-8")
#: ``NAME=value`` lines, ``# NAME=value`` (an optional setting shown with its default) too.
ASSIGNMENT = re.compile(r"^(?P<comment># )?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
#: Settings that must stay empty in the example: the owner's own secrets.
SECRETS = {
    "POSTGRES_PASSWORD",
    "MINIMAX_API_KEY",
    "DISCORD_TOKEN",
    "TELEGRAM_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
}
#: Set by docker-compose.yml (the db service) and the image (the mounted folder).
SET_FOR_YOU = {"DATABASE_URL", "TROUPE_CHARACTERS_DIR"}


def assignments() -> dict[str, tuple[bool, str]]:
    """Each documented variable → (whether it is commented out, its value)."""
    found = {}
    for line in EXAMPLE.splitlines():
        if match := ASSIGNMENT.match(line):
            found[match["name"]] = (bool(match["comment"]), match["value"])
    return found


def variables_the_code_reads() -> set[str]:
    pattern = re.compile(
        r"""["']((?:TROUPE|DISCORD|TELEGRAM|MINIMAX)_[A-Z0-9_]+|DATABASE_URL)["']"""
    )
    return {
        name
        for path in (REPO / "bot").rglob("*.py")
        for name in pattern.findall(path.read_text(encoding="utf-8"))
    }


def test_every_variable_the_code_reads_is_documented() -> None:
    documented = set(assignments()) | SET_FOR_YOU
    missing = variables_the_code_reads() - documented
    assert not missing, f"add these to .env.example, each with a comment: {sorted(missing)}"
    for name in SET_FOR_YOU:
        assert name in EXAMPLE, f".env.example should say who sets {name}"


def test_variables_set_for_you_are_not_assigned() -> None:
    # DATABASE_URL here would be overridden by the compose file; a characters folder would
    # point away from the mounted one.
    assert not SET_FOR_YOU & set(assignments())


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_secrets_are_empty(name: str) -> None:
    assert assignments()[name][1] == ""


def test_required_and_secret_settings_are_active_lines() -> None:
    found = assignments()
    for name in ("POSTGRES_PASSWORD", "MINIMAX_API_KEY", "DISCORD_TOKEN", "TELEGRAM_TOKEN"):
        commented, _ = found[name]
        assert not commented, f"{name}= should be a line to fill in, not a comment"


def test_settings_with_an_image_default_are_commented_out() -> None:
    # An empty TROUPE_HEALTH_PORT= would turn the health server (and the check) off.
    commented, value = assignments()["TROUPE_HEALTH_PORT"]
    assert commented
    assert value == "8080"


def test_every_setting_has_a_description_above_it() -> None:
    described = False
    for number, line in enumerate(EXAMPLE.splitlines(), start=1):
        if not line.strip():
            described = False
        elif ASSIGNMENT.match(line):
            assert described, f".env.example:{number}: {line!r} has no comment above it"
        elif line.startswith("#") and not line.startswith("# ----"):
            described = True


def test_documented_shutdown_deadline_is_the_code_default() -> None:
    commented, value = assignments()["TROUPE_SHUTDOWN_SECONDS"]
    assert commented
    assert float(value) == DEFAULT_SHUTDOWN_SECONDS


def test_git_ignores_the_real_env_file() -> None:
    assert ".env" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
