"""Loading characters: the example files, the library, ``troupe check`` and ``troupe schema``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bot.characters import (
    Character,
    CharacterLibrary,
    CharacterLoadError,
    UnknownCharacter,
    character_json_schema,
    check_paths,
    load_character,
    load_characters,
)

CHARACTERS = Path(__file__).parents[2] / "characters"
SCHEMA_FILE = CHARACTERS / "character.schema.json"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(*paths: Path) -> list[str]:
    with pytest.raises(CharacterLoadError) as caught:
        load_characters(*paths)
    return [str(problem) for problem in caught.value.problems]


# The example characters ------------------------------------------------------


def test_example_characters_load() -> None:
    library = load_characters(CHARACTERS)
    assert library.ids() == ["aria", "bram", "mara"]
    assert [c.name for c in library] == ["Aria", "Bram Oakbarrel", "Mara Quill"]
    for character in library:
        assert character.source_path == CHARACTERS / f"{character.id}.yaml"


def test_example_characters_show_the_features() -> None:
    library = load_characters(CHARACTERS)
    aria, bram, mara = library.get("aria"), library.get("bram"), library.get("mara")
    assert len(aria.examples) >= 2  # one with example exchanges
    assert aria.avatar_file == CHARACTERS / "aria.png"
    assert aria.avatar_file.is_file()
    assert mara.user_persona
    assert mara.scene is not None
    assert mara.avatar_file is None
    assert (mara.avatar or "").startswith("https://")
    assert "group" in bram.tags
    assert bram.scene is not None
    assert "barkeep" in bram.nicknames
    for character in library:
        assert character.greetings
        assert character.blocked_reply
        assert character.description


@pytest.mark.parametrize("path", sorted(CHARACTERS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_files_start_with_the_schema_modeline(path: Path) -> None:
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=./character.schema.json"


def test_committed_schema_file_matches_the_code() -> None:
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == character_json_schema()


def test_schema_describes_the_file_for_editors() -> None:
    schema = character_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert sorted(schema["required"]) == ["description", "name"]
    assert schema["additionalProperties"] is False
    properties = schema["properties"]
    assert "source_path" not in properties
    assert "greeting" in properties
    assert "first_mes" not in properties
    assert all(spec.get("description") for spec in properties.values())
    temperature = schema["$defs"]["Generation"]["properties"]["temperature"]["anyOf"][0]
    assert temperature == {"exclusiveMinimum": 0, "maximum": 1, "type": "number"}


# Loading one file --------------------------------------------------------------


def test_id_defaults_to_the_file_name_made_safe(tmp_path: Path) -> None:
    path = write(tmp_path, "Mr Hobbs.yaml", "name: Hobbs\ndescription: A butler.\n")
    assert load_character(path).id == "mr-hobbs"
    explicit = write(tmp_path, "other.yml", "id: butler\nname: Hobbs\ndescription: A butler.\n")
    assert load_character(explicit).id == "butler"


def test_a_file_name_that_makes_no_id_asks_for_one(tmp_path: Path) -> None:
    path = write(tmp_path, "小明.yaml", "name: 小明\ndescription: A student.\n")
    assert problems_of(path) == [
        f"{path}:1: id: must be 1-64 lower-case letters, digits, '-' or '_', starting with a "
        "letter or digit, got '' (made from the file name; add an `id:` line)"
    ]
    write(tmp_path, "小明.yaml", "id: xiaoming\nname: 小明\ndescription: A student.\n")
    assert load_character(path).id == "xiaoming"


def test_character_built_in_code_takes_its_id_from_the_name() -> None:
    character = Character(name="Mara Quill", description="A detective.")
    assert character.id == "mara-quill"
    assert character.source_path is None


def test_numeric_version_becomes_text(tmp_path: Path) -> None:
    path = write(tmp_path, "pip.yaml", "name: Pip\ndescription: A sprite.\nversion: 1.2\n")
    assert load_character(path).version == "1.2"


def test_avatar_beside_the_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "pip.png").write_bytes(b"\x89PNG")
    path = write(tmp_path, "pip.yaml", "name: Pip\ndescription: A sprite.\navatar: img/pip.png\n")
    assert load_character(path).avatar_file == tmp_path / "img" / "pip.png"


def test_load_character_raises_every_problem_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "pip.yaml", "name: 5\ngeneration: {temperature: 2}\nwat: 1\n")
    with pytest.raises(CharacterLoadError) as caught:
        load_character(path)
    assert str(caught.value).splitlines() == [
        f"{path}:1: name: input should be a valid string, got 5",
        f"{path}:1: description: field required",
        f"{path}:2: generation.temperature: input should be less than or equal to 1, got 2",
        f"{path}:3: wat: unknown field (`troupe schema` lists every field)",
    ]


def test_python_tags_are_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write(
        tmp_path,
        "evil.yaml",
        f"name: Pip\ndescription: !!python/object/apply:os.system ['touch {marker}']\n",
    )
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:2: invalid YAML: could not determine a constructor")
    assert not marker.exists()


def test_alias_bombs_are_stopped(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    (problem,) = problems_of(path)
    assert "document too large or too nested" in problem


def test_a_self_referencing_alias_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "loop.yaml", "name: Pip\ndescription: x\ntags: &t [a, *t]\n")
    assert f"{path}:3: tags[1]: an alias refers to itself" in problems_of(path)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "big.yaml", "name: Pip\ndescription: " + "x" * (1 << 20) + "\n")
    assert problems_of(path) == [
        f"{path}: file too large ({path.stat().st_size} bytes; at most 1048576)"
    ]


# Several files ---------------------------------------------------------------------


def test_every_problem_in_every_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: A\n")
    write(tmp_path, "b.yml", "name: B\ndescription: fine\n")
    write(tmp_path, "c.yaml", "name: C\ndescription: x\ngreting: hi\n")
    write(tmp_path, "notes.txt", "not a character")
    assert problems_of(tmp_path) == [
        f"{tmp_path / 'a.yaml'}:1: description: field required",
        f"{tmp_path / 'c.yaml'}:3: greting: unknown field; did you mean 'greeting'?",
    ]


def test_the_same_file_named_twice_is_loaded_once(tmp_path: Path) -> None:
    path = write(tmp_path, "pip.yaml", "name: Pip\ndescription: A sprite.\n")
    assert load_characters(tmp_path, path).ids() == ["pip"]


def test_an_id_may_not_be_another_characters_name(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: Bob\ndescription: x\n")
    write(tmp_path, "b.yaml", "id: bob\nname: Robert\ndescription: y\n")
    assert problems_of(tmp_path) == [
        f"{tmp_path / 'b.yaml'}:1: id: duplicate id 'bob': already used by {tmp_path / 'a.yaml'}"
    ]


def test_missing_paths_and_empty_folders_are_problems(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert problems_of(missing, empty) == [
        f"{missing}: no such file or folder",
        f"{empty}: no character files "
        "(*.yaml, *.yml, *.png, *.apng, *.json, *.charx) in this folder",
    ]


def test_unreadable_files_and_no_paths_are_problems(tmp_path: Path) -> None:
    dangling = tmp_path / "gone.yaml"
    dangling.symlink_to(tmp_path / "deleted.yaml")
    write(tmp_path, "ok.yaml", "name: Ok\ndescription: fine\n")
    assert problems_of(tmp_path) == [f"{dangling}: cannot read: No such file or directory"]
    assert problems_of() == [".: no character files or folders given"]


def test_mapping_keys_must_be_plain_text(tmp_path: Path) -> None:
    path = write(tmp_path, "pip.yaml", "name: Pip\ndescription: x\n? [a, b]\n: c\n")
    assert problems_of(path) == [f"{path}:3: keys must be plain text"]


# The library -------------------------------------------------------------------


@pytest.fixture
def library() -> CharacterLibrary:
    return load_characters(CHARACTERS)


@pytest.mark.parametrize("key", ["aria", "ARIA", " Aria ", "mara quill", "Bram Oakbarrel"])
def test_get_by_id_or_name_ignoring_case(library: CharacterLibrary, key: str) -> None:
    character = library.get(key)
    assert key.strip().casefold() in (character.id, character.name.casefold())
    assert key in library


def test_get_unknown_suggests_the_closest(library: CharacterLibrary) -> None:
    with pytest.raises(UnknownCharacter) as caught:
        library.get("arya")
    message = str(caught.value)
    assert message.startswith("no character 'arya'; did you mean ")
    assert "'aria'" in message
    assert message.endswith("? (known: aria, bram, mara)")
    assert isinstance(caught.value, KeyError)
    assert "nobody" not in library


def test_default_is_the_preferred_else_the_only_else_the_first(library: CharacterLibrary) -> None:
    assert library.default("Mara Quill").id == "mara"
    assert library.default().id == "aria"
    only = CharacterLibrary([Character(name="Zed", description="z")])
    assert only.default().name == "Zed"
    with pytest.raises(UnknownCharacter):
        CharacterLibrary([]).default()
    with pytest.raises(UnknownCharacter):
        library.default("nobody")


# troupe check ----------------------------------------------------------------------


def test_check_passes_on_the_examples() -> None:
    out = io.StringIO()
    assert check_paths([CHARACTERS], out) == 0
    assert out.getvalue() == "ok: 3 characters (aria, bram, mara)\n"


def test_check_prints_every_problem_and_fails(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: A\n")
    write(tmp_path, "b.yaml", "name: [\n")
    out = io.StringIO()
    assert check_paths([tmp_path], out) == 1
    assert out.getvalue().splitlines() == [
        f"{tmp_path / 'a.yaml'}:1: description: field required",
        f"{tmp_path / 'b.yaml'}:2: invalid YAML: did not find expected node content",
        "2 problem(s) in 2 file(s)",
    ]


def test_check_counts_one_character_in_the_singular(tmp_path: Path) -> None:
    path = write(tmp_path, "pip.yaml", "name: Pip\ndescription: A sprite.\n")
    out = io.StringIO()
    assert check_paths([path], out) == 0
    assert out.getvalue() == "ok: 1 character (pip)\n"
