"""A corpus of broken character files, each declaring the problems it must produce.

Every file in ``broken/`` (or folder of files, for problems between files) starts with
lines ``# expect: LINE: FIELD: MESSAGE`` (``-`` for no field). Loading must report
exactly those problems: the same file, line and field path, with MESSAGE in the text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.characters import CharacterLoadError, load_characters

BROKEN = Path(__file__).parent / "broken"
EXPECT = re.compile(rb"^# expect: (\d+): ([^:]+): (.+)$", re.MULTILINE)

CASES = sorted(BROKEN.iterdir())


def expected_problems(case: Path) -> list[tuple[Path, int, str, str]]:
    files = sorted(case.glob("*.yaml")) if case.is_dir() else [case]
    expected = []
    for file in files:
        for line, field, message in EXPECT.findall(file.read_bytes()):
            name = field.decode()
            expected.append((file, int(line), "" if name == "-" else name, message.decode()))
    return expected


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 20
    assert all(expected_problems(case) for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_broken_file_reports_its_problems(case: Path) -> None:
    with pytest.raises(CharacterLoadError) as caught:
        load_characters(case)

    expected = expected_problems(case)
    problems = caught.value.problems
    assert sorted((p.path, p.line, p.field) for p in problems) == sorted(
        (path, line, field) for path, line, field, _ in expected
    )
    for path, line, field, message in expected:
        (problem,) = [p for p in problems if (p.path, p.line, p.field) == (path, line, field)]
        assert message in problem.message
        location = f"{path}:{line}: {field}: " if field else f"{path}:{line}: "
        assert str(problem) == location + problem.message
        assert str(problem) in str(caught.value)
