"""``troupe import-card`` and ``troupe export-card`` as people run them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bot.characters import load_character, load_characters
from bot.characters.cards.files import read_card_file
from tests.characters.cards.helpers import CORPUS

REPO = Path(__file__).resolve().parents[3]


def troupe(*args: str, cwd: Path, characters: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TROUPE_", "MINIMAX_"))}
    environ["TROUPE_CHARACTERS_DIR"] = str(characters)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )


def test_import_then_export_from_the_command_line(tmp_path: Path) -> None:
    characters = tmp_path / "characters"
    result = troupe(
        "import-card",
        str(CORPUS / "v2_ztxt.png"),
        str(CORPUS / "v1_root_only.json"),
        cwd=tmp_path,
        characters=characters,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{CORPUS / 'v2_ztxt.png'} -> "
        f"{characters / 'seraphina.yaml'}, {characters / 'seraphina.png'}",
        f"{CORPUS / 'v1_root_only.json'} -> {characters / 'old-tom.yaml'}",
    ]
    assert load_characters(characters).ids() == ["old-tom", "seraphina"]

    result = troupe(
        "export-card",
        "Seraphina",
        "--format",
        "json",
        "--spec",
        "v2",
        cwd=tmp_path,
        characters=characters,
    )
    assert result.returncode == 0, result.stderr
    card = json.loads((tmp_path / "seraphina.card.json").read_text(encoding="utf-8"))
    assert card["spec"] == "chara_card_v2"
    assert card["data"]["character_book"]["name"] == "Eldoria"
    assert card["name"] == card["data"]["name"] == "Seraphina"  # V1 readers see the root

    result = troupe("export-card", "old-tom", cwd=tmp_path, characters=characters)
    assert result.returncode == 0, result.stderr
    assert "old-tom has no local PNG avatar; the card shows a blank picture" in result.stderr
    exported = read_card_file(tmp_path / "old-tom.card.png")
    assert exported.card["spec"] == "chara_card_v3"
    again = troupe("export-card", "old-tom", cwd=tmp_path, characters=characters)
    assert again.returncode == 1
    assert "old-tom.card.png exists; choose another --output or pass --force" in again.stderr


def test_a_bad_card_fails_alone_with_its_json_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"spec": "chara_card_v3", "data": {"name": "", "description": "x"}}))
    result = troupe(
        "import-card",
        str(bad),
        str(CORPUS / "v1_root_only.json"),
        cwd=tmp_path,
        characters=tmp_path / "out",
    )
    assert result.returncode == 1
    assert f"troupe: {bad}: data.name: string should have at least 1 character" in result.stderr
    assert (tmp_path / "out" / "old-tom.yaml").is_file()  # the good one is imported
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["old-tom.yaml"]


def test_higher_spec_version_warns_and_imports(tmp_path: Path) -> None:
    card = json.loads((CORPUS / "v3_assets_decorators.json").read_text(encoding="utf-8"))
    card["spec_version"] = "3.1"
    source = tmp_path / "future.json"
    source.write_text(json.dumps(card), encoding="utf-8")
    result = troupe(
        "import-card", str(source), "--into", "chars", cwd=tmp_path, characters=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "warning: spec_version 3.1 is newer than 3.0" in result.stderr
    assert load_character(tmp_path / "chars" / "kestrel-vane.yaml").nicknames == ["Captain"]


def test_export_keeps_the_avatar_picture(tmp_path: Path) -> None:
    shutil.copytree(REPO / "characters", tmp_path / "characters")
    result = troupe(
        "export-card",
        "aria",
        "-o",
        "aria-card.png",
        cwd=tmp_path,
        characters=tmp_path / "characters",
    )
    assert result.returncode == 0, result.stderr
    card = read_card_file(tmp_path / "aria-card.png")
    assert card.card["data"]["name"] == "Aria"
    assert card.image == (REPO / "characters" / "aria.png").read_bytes()
