"""The README works as written: its commands run right after ``make run`` / ``make test``, and
every relative link in it and in ``docs/`` leads somewhere.

Commands come from the README's ``sh`` and ``console`` blocks. Those that are offline and
non-interactive (``troupe check``, ``config``, ``preview``, ``schema``, ``db upgrade``, a piped
``chat --fake``, any ``--help``) are run against the checkout; for the others only what can be
checked without a network is (the subcommand exists, the ``make`` target exists, the script exists).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
TROUPE = ".venv/bin/troupe"

#: Subcommands that touch neither a network nor a terminal.
OFFLINE_SUBCOMMANDS = {"check", "config", "preview", "schema", "db"}
#: Subcommands that write into the characters folder: run against a copy of it.
WRITES_CHARACTERS = {"import-card"}
#: Variables that would make a command reach a real service, or read someone's settings.
OUTSIDE_WORLD = re.compile(r"^(MINIMAX_|DISCORD_|TELEGRAM_|DATABASE_URL$|TROUPE_)")

_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Command:
    """One command line of a README code block."""

    text: str
    line: int

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)


def _strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` outside quotes after a space)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def shell_commands(markdown: str) -> list[Command]:
    """The commands of the ``sh`` blocks and the ``$``-prompted lines of ``console`` blocks."""
    commands: list[Command] = []
    language: str | None = None
    pending = ""
    start = 0
    for number, raw in enumerate(markdown.splitlines(), start=1):
        fence = _FENCE.match(raw.strip())
        if fence:
            language = None if language is not None else fence.group(1)
            continue
        if language not in ("sh", "console"):
            continue
        line = raw.strip()
        if language == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if not pending:
            start = number
        line = _strip_comment(line)
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        if text:
            commands.append(Command(text, start))
    return commands


COMMANDS = shell_commands(README.read_text(encoding="utf-8"))


def _environment(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not OUTSIDE_WORLD.match(k)}
    # The default database is a file in the working directory; keep the checkout clean.
    environ["DATABASE_URL"] = f"sqlite:///{tmp_path / 'readme.sqlite3'}"
    return environ


def _run(command: str, tmp_path: Path, extra: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"],
        cwd=ROOT,
        env={**_environment(tmp_path), **(extra or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"README command failed (exit {result.returncode}): {command}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}",
            pytrace=False,
        )


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w.-]*):", text, re.MULTILINE))


def _troupe_stage(command: str) -> list[str] | None:
    """The argv of the ``troupe`` part of ``command`` (the last stage of a pipeline)."""
    stage = command.split("|")[-1].split(">")[0]
    argv = shlex.split(stage)
    return argv if argv and argv[0] == TROUPE else None


def _checkable(command: Command) -> bool:
    """Whether something of ``command`` can be checked here (not ``docker``, ``export``…)."""
    program = command.argv[0]
    return (
        _troupe_stage(command.text) is not None
        or program == "make"
        or program.startswith(".venv/bin/")
    )


#: Docker, ``export``, ``cp`` and the like are left to the people who have them.
CHECKED = [c for c in COMMANDS if _checkable(c)]


def test_readme_has_commands_to_check() -> None:
    runnable = [c for c in CHECKED if _troupe_stage(c.text) is not None]
    assert len(runnable) >= 5, [c.text for c in COMMANDS]


def test_setup_commands_are_make_run_and_make_test() -> None:
    # CI runs `make test`; people start with `make run`.
    assert [c.text for c in COMMANDS[:2]] == ["make run", "make test"]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"line{c.line}")
def test_no_bare_troupe(command: Command) -> None:
    """``troupe`` is not on the PATH after ``make run``: the README says ``.venv/bin/troupe``."""
    stages = [shlex.split(stage)[:1] for stage in command.text.split("|")]
    assert ["troupe"] not in stages, f"README line {command.line}: {command.text}"


@pytest.mark.parametrize("command", CHECKED, ids=lambda c: f"line{c.line}")
def test_readme_command_works(command: Command, tmp_path: Path) -> None:
    argv = command.argv
    troupe = _troupe_stage(command.text)
    if troupe is not None:
        if not (ROOT / TROUPE).exists():
            pytest.fail(f"{TROUPE} is missing: run `make run` or `make test` first")
        subcommand = troupe[1] if len(troupe) > 1 else "--help"
        piped_fake_chat = subcommand == "chat" and "--fake" in troupe and "|" in command.text
        if subcommand in OFFLINE_SUBCOMMANDS or subcommand.startswith("-") or piped_fake_chat:
            _run(command.text, tmp_path)
        elif subcommand in WRITES_CHARACTERS:
            characters = tmp_path / "characters"
            shutil.copytree(ROOT / "characters", characters)
            _run(command.text, tmp_path, {"TROUPE_CHARACTERS_DIR": str(characters)})
            # What it wrote is a valid character beside the others.
            _run(f"{TROUPE} check", tmp_path, {"TROUPE_CHARACTERS_DIR": str(characters)})
        else:
            # Runs a bot or a server: check that the subcommand and its options parse.
            _run(f"{TROUPE} {subcommand} --help", tmp_path)
    elif argv[0] == "make":
        missing = set(argv[1:]) - _makefile_targets()
        assert not missing, f"README line {command.line}: no make target {missing}"
    else:
        assert (ROOT / argv[0]).exists(), f"README line {command.line}: no {argv[0]}"
        for argument in argv[1:]:
            if argument.startswith(("bench/", "tests/")):
                assert (ROOT / argument).exists(), f"README line {command.line}: no {argument}"


# -- links ----------------------------------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def _without_code(markdown: str) -> list[str]:
    lines, inside = [], False
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if not inside:
            lines.append(line)
    return lines


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of ``markdown``."""
    found: set[str] = set()
    for line in _without_code(markdown):
        heading = _HEADING.match(line)
        if heading is None:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1)).lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def relative_links(path: Path) -> list[str]:
    text = "\n".join(_without_code(path.read_text(encoding="utf-8")))
    return [
        target
        for target in _LINK.findall(text)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # https:, mailto:, ...
    ]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_somewhere(document: Path) -> None:
    broken = []
    for target in relative_links(document):
        file_part, _, anchor = target.partition("#")
        destination = (document.parent / file_part).resolve() if file_part else document
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(destination.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, f"{document.relative_to(ROOT)}: {broken}"


def test_anchors_follow_github() -> None:
    headings = "# Design\n## Character → M2-her messages\n### 5.3 Client algorithm (be liberal)\n"
    headings += "## What `troupe run` does\n## Notes\n## Notes\n```\n# not a heading\n```\n"
    assert anchors(headings) == {
        "design",
        "character--m2-her-messages",
        "53-client-algorithm-be-liberal",
        "what-troupe-run-does",
        "notes",
        "notes-1",
    }
