"""The ``troupe`` command (also ``python -m bot``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import __version__
from bot.settings import ConfigError, Settings, help_text

if TYPE_CHECKING:
    from bot.characters.schema import Character

#: The settings sections (or single fields) each command reads, listed by its ``--help``;
#: every command reads the logs section, and ``run`` and ``config`` read everything.
_READS: dict[str, tuple[str, ...]] = {
    "run": (),
    "chat": ("logs", "storage", "m2her", "conversation"),
    "check": ("logs", "conversation.characters_dir"),
    "schema": ("logs",),
    "preview": ("logs", "conversation.characters_dir", "m2her.advanced_roles"),
    "config": (),
    "upgrade": ("logs", "storage"),
    "fake-m2her": ("logs",),
    "import-card": ("logs", "conversation.characters_dir"),
    "export-card": ("logs", "conversation.characters_dir"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``troupe`` console script; returns the exit code."""
    from bot.observability.logs import configure_logging

    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_environ(os.environ)
        configure_logging(settings)
    except ConfigError as error:
        print(f"troupe: {error}", file=sys.stderr)
        return 1
    try:
        code: int = args.handler(args, settings)
    except KeyboardInterrupt:
        return 130
    return code


def _command(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A sub-command of ``commands`` (argparse's sub-parsers action, which has no public
    type) whose ``--help`` ends with the environment variables it reads."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=help[:1].upper() + help[1:] + ".",
        epilog=help_text(_READS[name]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="troupe", description="AI characters on Discord and Telegram, powered by M2-her."
    )
    parser.add_argument("--version", action="version", version=f"troupe {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    run = _command(
        commands, "run", "run the bot (the terminal chat while no platform token is set)"
    )
    run.set_defaults(handler=_run)

    chat = _command(commands, "chat", "chat with a character in this terminal")
    chat.add_argument("character", nargs="?", help="file name without .yaml, or the name")
    chat.add_argument("--user", default=_user_name(), help="your name")
    chat.add_argument("--fake", action="store_true", help="use the built-in fake M2-her")
    chat.add_argument(
        "--scene",
        metavar="NAME[,NAME…]",
        type=_names,
        default=(),
        help="bring these characters into the scene too (they stay until /scene sends them out)",
    )
    chat.set_defaults(handler=_chat)

    check = _command(commands, "check", "validate character files or folders")
    check.add_argument("paths", nargs="*", type=Path, help="default: the characters folder")
    check.set_defaults(handler=_check)

    schema = _command(commands, "schema", "print the JSON Schema of a character file")
    schema.set_defaults(handler=_schema)

    preview = _command(commands, "preview", "print the exact request body for a character")
    preview.add_argument("character")
    preview.add_argument("--user", default="User", help="the user's display name")
    preview.add_argument("--message", default="Hello!", help="the user's message")
    preview.add_argument(
        "--greeting",
        metavar="N|none",
        help="open with greeting N (1: `greeting`, then `alternate_greetings`, then in a group "
        "`group_only_greetings`), or none (default: one at random, as a new conversation)",
    )
    preview.add_argument(
        "--group",
        action="store_true",
        help="a group chat: its greetings include `group_only_greetings`",
    )
    preview.add_argument(
        "--roles",
        choices=("advanced", "folded"),
        help="the form to show: M2-her's advanced roles, or folded into the system message "
        "(default: folded if MINIMAX_ADVANCED_ROLES=off, else advanced)",
    )
    preview.add_argument(
        "--scene",
        metavar="NAME[,NAME…]",
        type=_names,
        help="a scene with these characters besides CHARACTER (the main one): print who would "
        "answer --message and why (the director's scores) instead of the body",
    )
    preview.add_argument(
        "--lorebook",
        action="append",
        default=[],
        metavar="BOOK",
        help="also scan this world book, as a channel that uses it (repeatable)",
    )
    preview.set_defaults(handler=_preview)

    import_card = _command(
        commands,
        "import-card",
        "turn SillyTavern character cards (PNG, JSON, CHARX) into characters",
    )
    import_card.add_argument("files", nargs="+", type=Path, metavar="FILE")
    import_card.add_argument(
        "--into", type=Path, help="the folder to write to (default: the characters folder)"
    )
    import_card.add_argument("--force", action="store_true", help="replace existing files")
    import_card.set_defaults(handler=_import_card)

    export_card = _command(commands, "export-card", "write a character as a SillyTavern card")
    export_card.add_argument("character", help="file name without .yaml, or the name")
    export_card.add_argument("--format", choices=("png", "json"), default="png")
    export_card.add_argument("--spec", choices=("v2", "v3"), default="v3")
    export_card.add_argument(
        "-o", "--output", type=Path, help="the file to write (default: ID.card.png or .json here)"
    )
    export_card.add_argument("--force", action="store_true", help="replace an existing file")
    export_card.set_defaults(handler=_export_card)

    config = _command(
        commands,
        "config",
        "print the effective configuration (secrets masked) and check troupe.yaml",
    )
    config.add_argument(
        "--probe",
        action="store_true",
        help="ask M2-her now whether it takes the advanced roles (one tiny call)",
    )
    config.set_defaults(handler=_config)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(required=True, metavar="ACTION")
    upgrade = _command(db_commands, "upgrade", "apply the migrations (also done at start)")
    upgrade.set_defaults(handler=_db_upgrade)

    fake = _command(commands, "fake-m2her", "run the fake M2-her server")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8765)
    fake.add_argument("--api-key", help="accept only this key (default: any non-empty key)")
    fake.add_argument(
        "--reject-advanced-roles",
        action="store_true",
        help="answer HTTP 500 to user_system, group and sample_message_* (as some M2-her does)",
    )
    fake.set_defaults(handler=_fake_m2her)
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.memory import pin_mmap_threshold
    from bot.platforms.registry import enabled_platforms
    from bot.runtime import run_bot

    if not enabled_platforms(settings):
        if not sys.stdin.isatty():
            # A service with no token would only chat with an empty stdin and exit.
            print(
                "troupe: no platform token is set: set DISCORD_TOKEN and/or TELEGRAM_TOKEN to "
                "run the bot (`troupe chat` talks to a character in a terminal or a pipe).",
                file=sys.stderr,
            )
            return 2
        # No platform token, a person at a terminal: the terminal chat is the bot.
        return _terminal_chat(settings, user=_user_name())
    pin_mmap_threshold()  # a process that runs for months: keep socket buffers off the heap
    return _guard(lambda: asyncio.run(run_bot(settings, out=sys.stdout, hard_exit=True)))


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    return _terminal_chat(
        settings, character=args.character, user=args.user, scene=args.scene, fake=args.fake
    )


def _terminal_chat(
    settings: Settings,
    *,
    user: str,
    character: str | None = None,
    scene: Sequence[str] = (),
    fake: bool = False,
) -> int:
    """Chat with ``character`` (the default one if ``None``) in this terminal or pipe."""
    from bot.app import open_engine
    from bot.platforms.console import run_console

    if settings.logs.level is None:
        # The chat itself says what failed; warnings would only garble the conversation.
        logging.getLogger().setLevel(logging.ERROR)

    async def chat() -> int:
        async with open_engine(settings, force_fake=fake) as engine:
            print(engine.backend, flush=True)
            print(engine.characters_summary(), flush=True)
            return await run_console(
                engine.manager,
                character=character or engine.manager.default_character.id,
                user_name=user,
                stdin=sys.stdin,
                out=sys.stdout,
                scene=scene,
            )

    return _guard(lambda: asyncio.run(chat()))


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import token_budget
    from bot.characters.loader import check_paths

    paths = args.paths or [settings.conversation.characters_dir]
    return _guard(
        lambda: check_paths(paths, sys.stdout, budget=token_budget(settings.conversation))
    )


def _schema(args: argparse.Namespace, settings: Settings) -> int:
    from bot.characters.loader import character_json_schema

    print(json.dumps(character_json_schema(), indent=2, ensure_ascii=False))
    return 0


def _preview(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import load_for_engine, token_budget
    from bot.characters.lore.report import describe_lore
    from bot.characters.prompt import preview_prompt

    form = args.roles or ("folded" if settings.m2her.advanced_roles == "off" else "advanced")

    def preview() -> int:
        # The characters `troupe run` would load: a broken file leaves only itself out.
        library = load_for_engine(settings.conversation).library
        character = library.get(args.character)
        missing = [book for book in args.lorebook if book not in library.books]
        if missing:
            known = ", ".join(sorted(library.books)) or "none"
            raise ConfigError(f"--lorebook: no world book {missing[0]!r} (known: {known})")
        greeting, greeting_note = _preview_greeting(character.greetings_for(group=args.group), args)
        if args.scene is not None:
            scene = [character, *(library.get(name) for name in args.scene)]
            print("\n".join(_scene_preview(scene, greeting, args.user, args.message)))
            print(greeting_note, file=sys.stderr)
            return 0
        prompt = preview_prompt(
            character,
            user=args.user,
            message=args.message,
            greeting=greeting,
            fold_roles=form == "folded",
            budget=token_budget(settings.conversation),
            lorebooks=library.lorebooks(args.lorebook),
        )
        print(json.dumps(prompt.request.to_wire(stream=True), indent=2, ensure_ascii=False))
        # On stderr, so that stdout stays the body alone.
        print(greeting_note, file=sys.stderr)
        print(_preview_form_note(form, settings), file=sys.stderr)
        if character.lorebooks or args.lorebook:
            print(describe_lore(prompt.lore), file=sys.stderr)
        return 0

    return _guard(preview)


def _import_card(args: argparse.Namespace, settings: Settings) -> int:
    from bot.characters.cards.importing import CardImportError, import_card

    into = args.into or settings.conversation.characters_dir
    failed = 0
    for file in args.files:
        try:
            imported = import_card(file, into, overwrite=args.force)
        except CardImportError as error:
            print(f"troupe: {error}", file=sys.stderr)
            failed += 1
            continue
        for warning in imported.warnings:
            print(f"troupe: {file}: warning: {warning}", file=sys.stderr)
        written = [imported.character, *([imported.avatar] if imported.avatar else [])]
        assets = f" and {len(imported.assets)} asset file(s)" if imported.assets else ""
        print(f"{file} -> {', '.join(str(p) for p in written)}{assets}")
    return 1 if failed else 0


def _export_card(args: argparse.Namespace, settings: Settings) -> int:
    from bot.characters.cards.export import card_json, card_png
    from bot.characters.loader import load_characters

    def export() -> int:
        character = load_characters(settings.conversation.characters_dir).get(args.character)
        output = args.output or Path(f"{character.id}.card.{args.format}")
        if output.exists() and not args.force:
            print(
                f"troupe: {output} exists; choose another --output or pass --force", file=sys.stderr
            )
            return 1
        if args.format == "json":
            card = card_json(character, spec=args.spec)
            output.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", "utf-8")
        else:
            image, has_avatar = card_png(character, spec=args.spec)
            output.write_bytes(image)
            if not has_avatar:
                print(
                    f"troupe: {character.id} has no local PNG avatar; the card shows a blank "
                    "picture",
                    file=sys.stderr,
                )
        print(f"{character.id} -> {output}")
        return 0

    return _guard(export)


def _names(value: str) -> tuple[str, ...]:
    """A comma-separated list of character names or ids."""
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _scene_preview(
    scene: list[Character], greeting: str | None, user: str, message: str
) -> list[str]:
    """``troupe preview --scene``: who would answer ``message`` in a new conversation of
    ``scene`` (the main character first, opening with ``greeting``) and why."""
    from bot.conversation.director import Director, SceneLine

    now = datetime.now(UTC)
    lines = [SceneLine(None, message, now)]
    if greeting is not None:
        lines.insert(0, SceneLine(scene[0].id, scene[0].render(greeting, user=user), now))
    pick = Director().first(scene, lines, now)
    weights = Director().weights
    return [
        f"Scene: {', '.join(c.name for c in scene)} (main: {scene[0].name}).",
        f"{user}: {message}",
        *pick.explain(),
        f"Scores: relevance x{weights.relevance:g} + quiet x{weights.quiet:g} + "
        f"talkativeness x{weights.talkativeness:g}.",
        "Then characters may answer each other, up to the channel's scene_turns (2 by "
        "default): the one named, else the best-scored other with a chance of its "
        "talkativeness.",
    ]


def _preview_greeting(candidates: list[str], args: argparse.Namespace) -> tuple[str | None, str]:
    """The greeting ``troupe preview`` opens with (picked at random among ``candidates`` as
    a new conversation does, unless ``--greeting`` says), and a note saying which."""
    if not candidates:
        return None, "troupe: the character has no greeting: the user's message comes first."
    if args.greeting == "none":
        return None, (
            "troupe: shown without a greeting: a conversation started by a message, not by /start."
        )
    count = len(candidates)
    if args.greeting is None:
        index = random.randrange(count)
        how = "picked at random, as a new conversation does"
    else:
        index = int(args.greeting) - 1 if args.greeting.isdigit() else -1
        if not 0 <= index < count:
            raise ConfigError(f"--greeting: the character has {count} greeting(s), 1..{count}")
        how = "chosen with --greeting"
    where = " (group chat)" if args.group else ""
    return candidates[index], (
        f"troupe: opened with greeting {index + 1} of {count}{where}, {how}; "
        "--greeting N shows another, --greeting none none at all."
    )


def _preview_form_note(form: str, settings: Settings) -> str:
    """Which form ``troupe preview`` showed, and how to see the other."""
    mode = settings.m2her.advanced_roles
    if form == "folded":
        shown = "the folded form: user persona, scene and examples inside the system message"
    else:
        shown = "M2-her's advanced roles (user_system, group, sample_message_*)"
    note = f"troupe: shown: {shown}; MINIMAX_ADVANCED_ROLES={mode}"
    if mode == "auto":
        note += " (troupe run folds them if M2-her refuses them; troupe config --probe asks)"
    other = "advanced" if form == "folded" else "folded"
    return note + f"; --roles {other} shows the other form."


def _config(args: argparse.Namespace, settings: Settings) -> int:
    import yaml

    from bot.app import describe_configuration, role_support

    def describe() -> int:
        roles = asyncio.run(role_support(settings, probe=args.probe))
        configuration = describe_configuration(settings, roles=roles)
        text = yaml.safe_dump(configuration, sort_keys=False, allow_unicode=True)
        print(text, end="")
        return 0

    return _guard(describe)


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from bot.storage import upgrade

    def migrate() -> int:
        upgrade(settings.storage.database_url)
        print("Database is up to date.")
        return 0

    return _guard(migrate)


def _fake_m2her(args: argparse.Namespace, settings: Settings) -> int:
    from bot.llm.fake import run_fake_server

    return run_fake_server(
        args.host, args.port, args.api_key, reject_advanced_roles=args.reject_advanced_roles
    )


def _user_name() -> str:
    """The terminal's user (``USER``): a name to chat under, not a Troupe setting."""
    return os.environ.get("USER") or "User"


def _guard(action: Callable[[], int]) -> int:
    """Run ``action``, turning a broken character, an unknown name or an unusable database
    into one clear message."""
    from bot.characters.loader import CharacterLoadError
    from bot.configfile import ConfigFileError
    from bot.storage import StorageError

    try:
        return action()
    except (CharacterLoadError, ConfigError, ConfigFileError) as error:
        print(f"troupe: {error}", file=sys.stderr)
        return 1
    except StorageError as error:
        print(
            f"troupe: {error}\nFix: check DATABASE_URL, and that the database server is "
            "running and reachable from here.",
            file=sys.stderr,
        )
        return 1
    except KeyError as error:
        print(f"troupe: {error.args[0]}", file=sys.stderr)
        return 1
