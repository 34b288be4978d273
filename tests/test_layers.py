"""The layering, checked on the source: platforms → conversation → characters / llm / storage;
each platform library only inside its adapter; SQL only in bot/storage.

Every import counts, at the top of a module, inside a function or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Rule:
    """Modules under ``where`` (folders of ``bot/``, relative to the repository) must not
    import ``forbidden`` (a module and its submodules); ``unless`` exempts folders."""

    where: tuple[str, ...]
    forbidden: tuple[str, ...]
    why: str
    unless: tuple[str, ...] = ()


RULES = (
    Rule(("bot",), ("discord",), "discord.py belongs in its adapter", ("bot/platforms/discord",)),
    Rule(
        ("bot",),
        ("telegram",),
        "python-telegram-bot belongs in its adapter",
        ("bot/platforms/telegram",),
    ),
    Rule(
        ("bot/platforms",),
        ("bot.app", "bot.storage", "bot.characters.loader", "bot.characters.watch"),
        "platforms get what they need through PlatformServices",
    ),
    Rule(
        ("bot/conversation", "bot/characters", "bot/llm", "bot/storage"),
        ("bot.platforms", "bot.app"),
        "lower layers never depend on the platforms or the wiring",
    ),
    Rule(("bot",), ("sqlalchemy", "alembic"), "SQL stays in bot/storage", ("bot/storage",)),
)


def imported_modules(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The modules ``node`` (in a module of ``package``) imports, relative ones resolved;
    for ``from a import b`` both ``a`` and ``a.b`` (``b`` may be a submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        parent = parts[: len(parts) - node.level + 1]
        base = ".".join([*parent, base] if base else parent)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _within(name: str, prefix: str) -> bool:
    """Whether module ``name`` is ``prefix`` or one of its submodules."""
    return name == prefix or name.startswith(prefix + ".")


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder + "/")


def violations(root: Path) -> list[str]:
    """``path:line: imports X (why)`` for every import under ``root/bot`` that breaks a rule."""
    found = []
    for path in sorted((root / "bot").rglob("*.py")):
        relative = path.relative_to(root)
        where = relative.as_posix()
        package = ".".join(relative.parent.parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = imported_modules(node, package)
            for rule in RULES:
                if not any(_under(where, folder) for folder in rule.where):
                    continue
                if any(_under(where, folder) for folder in rule.unless):
                    continue
                bad = {
                    forbidden
                    for name in names
                    for forbidden in rule.forbidden
                    if _within(name, forbidden)
                }
                for forbidden in sorted(bad):
                    found.append(f"{where}:{node.lineno}: imports {forbidden} ({rule.why})")
    return found


def test_every_import_respects_the_layers() -> None:
    found = violations(REPO)
    assert not found, "layering broken:\n" + "\n".join(found)


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_check_names_file_and_line_of_each_violation(tmp_path: Path) -> None:
    write(tmp_path, "bot/platforms/discord/client.py", "import discord\nfrom bot.app import x\n")
    write(tmp_path, "bot/platforms/telegram/app.py", "import telegram\nimport discord.ext\n")
    write(
        tmp_path,
        "bot/platforms/telegram/moderation.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.storage import S\n"
        "def f():\n    from ...characters import watch\n",
    )
    write(tmp_path, "bot/conversation/turn.py", "from bot.platforms.text import split\n")
    write(tmp_path, "bot/llm/client.py", "from .. import app\n")
    write(tmp_path, "bot/storage/__init__.py", "from ..platforms import registry\n")
    write(tmp_path, "bot/storage/database.py", "import sqlalchemy\nimport alembic\n")
    write(tmp_path, "bot/runtime.py", "from sqlalchemy.ext import asyncio\nimport bot.storage\n")
    assert violations(tmp_path) == [
        "bot/conversation/turn.py:1: imports bot.platforms "
        "(lower layers never depend on the platforms or the wiring)",
        "bot/llm/client.py:1: imports bot.app "
        "(lower layers never depend on the platforms or the wiring)",
        "bot/platforms/discord/client.py:2: imports bot.app "
        "(platforms get what they need through PlatformServices)",
        "bot/platforms/telegram/app.py:2: imports discord (discord.py belongs in its adapter)",
        "bot/platforms/telegram/moderation.py:3: imports bot.storage "
        "(platforms get what they need through PlatformServices)",
        "bot/platforms/telegram/moderation.py:5: imports bot.characters.watch "
        "(platforms get what they need through PlatformServices)",
        "bot/runtime.py:1: imports sqlalchemy (SQL stays in bot/storage)",
        "bot/storage/__init__.py:1: imports bot.platforms "
        "(lower layers never depend on the platforms or the wiring)",
    ]
