"""``troupe preview`` says which entries fired, by which key, and which were cut; the terminal
chat's ``/lorebooks`` attaches a world book."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import troupe

MARA = """name: Mara
description: A detective.
lorebook:
  token_budget: 12
  entries:
    - {name: Vance, keys: [Vance], content: Vance smuggles rum., priority: 5}
    - {name: Rum, keys: [rum], content: Rum comes in on Tuesdays by the north pier., priority: 1}
    - {name: Docks, keys: [docks], position: depth, depth: 0, content: The docks reek.}
"""


def characters(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "characters"
    (folder / "lorebooks").mkdir(parents=True)
    (folder / "mara.yaml").write_text(MARA)
    (folder / "lorebooks" / "harbour.yaml").write_text(
        "entries:\n  - {keys: [tide], content: The tide turns at six.}\n"
    )
    return {"TROUPE_CHARACTERS_DIR": str(folder)}


def test_preview_shows_what_fired_and_what_was_cut(tmp_path: Path) -> None:
    env = characters(tmp_path)
    result = troupe(
        "preview", "mara", "--message", "Vance, rum, the tide.", "--lorebook", "harbour",
        tmp_path=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    system = json.loads(result.stdout)["messages"][0]["content"]
    assert system == "Vance smuggles rum.\nThe tide turns at six.\n\nA detective."
    lore = result.stderr[result.stderr.index("troupe: lorebook entries") :]
    assert lore == (
        "troupe: lorebook entries sent: 2\n"
        "  + 'Vance' [mara]: key 'Vance' (before_char, 6 tokens)\n"
        "  + 'tide' [harbour]: key 'tide' (before_char, 7 tokens)\n"
        "troupe: cut for the lore budget: 1\n"
        "  - 'Rum' [mara]: key 'rum' (before_char, 12 tokens)\n"
    )
    unknown = troupe("preview", "mara", "--lorebook", "atlantis", tmp_path=tmp_path, env=env)
    assert unknown.returncode != 0
    assert "--lorebook: no world book 'atlantis' (known: harbour)" in unknown.stderr


def test_the_terminal_chat_attaches_a_world_book(tmp_path: Path) -> None:
    script = "/lorebooks\n/lorebooks add harbour\nthe tide?\n"
    result = troupe(
        "chat", "mara", "--fake", stdin=script, tmp_path=tmp_path, env=characters(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert "World books in this chat: none.\nAvailable: harbour." in result.stdout
    assert "World books in this chat: harbour.\nAvailable: no other." in result.stdout
