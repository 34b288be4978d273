"""The repository's Dockerfile and .dockerignore, read the way Docker reads them, and Docker's
durations.

The Dockerfile goes through BuildKit's own parser (the ``dockerfile`` package), so line
continuations, JSON forms and flags are understood exactly as ``docker build`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import dockerfile  # type: ignore[import-not-found]  # a Go extension without stubs

REPO = Path(__file__).resolve().parents[2]

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


@dataclass
class Stage:
    """One ``FROM`` stage: its base image, name, instructions, and its ARG and ENV values."""

    base: str
    name: str | None
    commands: list[dockerfile.Command] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def instructions(self, cmd: str) -> list[dockerfile.Command]:
        """This stage's instructions of one kind (``"RUN"``, ``"COPY"``, …), in order."""
        return [command for command in self.commands if command.cmd == cmd]

    def expand(self, text: str) -> str:
        """``text`` with the ``$NAME`` / ``${NAME}`` it knows substituted (others kept)."""
        known = {**self.variables, **self.env}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            return known.get(name, match.group(0))

        return _VARIABLE.sub(substitute, text)


def parse_dockerfile(path: Path = REPO / "Dockerfile") -> list[Stage]:
    """The stages of the Dockerfile at ``path``, with global ARGs expanded in ``FROM``."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            base = Stage(base="", name=None, variables=global_args).expand(command.value[0])
            name = command.value[2] if len(command.value) == 3 else None
            stages.append(Stage(base=base, name=name))
        elif not stages:
            if command.cmd == "ARG":
                global_args.update(_assignments(command.value))
        else:
            stage = stages[-1]
            stage.commands.append(command)
            if command.cmd == "ARG":
                stage.variables.update(_assignments(command.value))
            elif command.cmd == "ENV":
                pairs = dict(zip(command.value[::2], command.value[1::2], strict=True))
                stage.env.update({key: stage.expand(value) for key, value in pairs.items()})
    return stages


def _assignments(values: tuple[str, ...]) -> dict[str, str]:
    return dict(value.split("=", 1) for value in values if "=" in value)


def copy_sources(command: dockerfile.Command) -> list[str]:
    """The build-context paths a ``COPY`` takes (all its values but the destination)."""
    return list(command.value[:-1])


class DockerIgnore:
    """The patterns of a ``.dockerignore``, matched as Docker matches them.

    A pattern excludes a path when it matches the path or one of its parent folders; ``!``
    patterns include again; the last matching pattern wins. ``*`` stays within one path
    element, ``**`` spans any number of them.
    """

    def __init__(self, text: str) -> None:
        self._patterns: list[tuple[bool, re.Pattern[str]]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = line.removeprefix("!").strip().strip("/")
            self._patterns.append((include, re.compile(_pattern_regex(pattern))))

    def excludes(self, path: str) -> bool:
        """Whether ``path`` (relative to the build context) stays out of the context."""
        parts = path.strip("/").split("/")
        candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
        excluded = False
        for include, regex in self._patterns:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                excluded = not include
        return excluded


def _pattern_regex(pattern: str) -> str:
    regex = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            regex += "(?:.*/)?"
            index += 3
        elif pattern.startswith("**", index):
            regex += ".*"
            index += 2
        elif pattern[index] == "*":
            regex += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            regex += "[^/]"
            index += 1
        else:
            regex += re.escape(pattern[index])
            index += 1
    return regex


def seconds(duration: str) -> float:
    """A Compose / Go duration such as ``30s``, ``1m30s`` or ``1m0s``, in seconds."""
    parts = _DURATION_PART.findall(duration)
    assert "".join(number + unit for number, unit in parts) == duration, duration
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
