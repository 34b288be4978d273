"""Property: for any card, import → export → import gives the same character."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.characters.cards.examples import format_examples
from tests.characters.cards.helpers import exported, fields, imported

_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
_KEY = st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
_NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Cn", "Co", "Zl", "Zp")),
    min_size=1,
    max_size=30,
).filter(lambda name: name.strip() != "")
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEY, inner, max_size=3),
    max_leaves=8,
)
_EXAMPLES = st.lists(st.tuples(_TEXT, _TEXT), max_size=3).map(format_examples)
_BOOK = st.fixed_dictionaries(
    {"extensions": st.dictionaries(_KEY, _JSON, max_size=2)},
    optional={
        "name": _TEXT,
        "scan_depth": st.integers(0, 100),
        "entries": st.lists(
            st.fixed_dictionaries(
                {
                    "keys": st.lists(_TEXT, max_size=3),
                    "content": _TEXT,
                    "enabled": st.booleans(),
                    "insertion_order": st.integers(0, 1000),
                    "extensions": st.dictionaries(_KEY, _JSON, max_size=2),
                }
            ),
            max_size=3,
        ),
    },
)
_DATA = st.fixed_dictionaries(
    {"name": _NAME, "description": _TEXT},
    optional={
        "personality": _TEXT,
        "scenario": _TEXT,
        "first_mes": _TEXT,
        "mes_example": _EXAMPLES | _TEXT,
        "creator_notes": _TEXT,
        "system_prompt": _TEXT,
        "post_history_instructions": _TEXT,
        "alternate_greetings": st.lists(_TEXT, max_size=3),
        "tags": st.lists(_TEXT, max_size=3),
        "creator": _TEXT,
        "character_version": _TEXT,
        "extensions": st.dictionaries(_KEY.filter(lambda k: k != "troupe"), _JSON, max_size=3),
        "character_book": _BOOK,
        "nickname": _TEXT,
        "group_only_greetings": st.lists(_TEXT, max_size=2),
        "creation_date": st.integers(0, 2**31),
        "x_unknown": _JSON,
    },
)


@st.composite
def cards(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(_DATA)
    shape = draw(st.sampled_from(["v1", "v2", "v3"]))
    if shape == "v1":
        return data
    spec = "chara_card_v2" if shape == "v2" else "chara_card_v3"
    root = draw(st.dictionaries(_KEY.map(lambda k: f"root_{k}"), _JSON, max_size=2))
    return {"spec": spec, "spec_version": shape[1] + ".0", "data": data, **root}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(card=cards(), fmt=st.sampled_from(["json", "png"]), spec=st.sampled_from(["v2", "v3"]))
def test_import_export_import_keeps_everything(card: dict[str, Any], fmt: str, spec: str) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        source = folder / "source.json"
        source.write_text(json.dumps(card), encoding="utf-8")
        first = imported(source, folder / "first")
        again = imported(exported(first, folder / "out", fmt=fmt, spec=spec), folder / "again")  # type: ignore[arg-type]
        assert {**fields(again), "avatar": None} == fields(first)
