"""YAML parsing that remembers where every value came from.

PyYAML's ``safe_load`` forgets line numbers and silently keeps the last of two equal
keys. Here the document is composed into nodes first, then turned into plain Python
data while recording the line of every mapping key and sequence item, so a validation
error at ``examples[2].ai`` can point at the line the writer has to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: A path into the data: mapping keys and sequence indexes, e.g. ``("examples", 2, "ai")``.
Loc = tuple[str | int, ...]

# Aliases can expand a small file into a huge tree ("billion laughs"); stop early.
_MAX_NODES = 100_000
_PLAIN_COLLECTIONS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlSyntaxError(ValueError):
    """The text is not valid YAML (or not one document). ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class YamlIssue:
    """A problem that YAML itself tolerates but a character file must not have."""

    loc: Loc
    line: int
    message: str


@dataclass(slots=True)
class YamlDocument:
    """Parsed data plus the line of every key and item in it."""

    data: Any
    issues: list[YamlIssue] = field(default_factory=list)
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int:
        """The line of ``loc``, or of its closest existing parent (e.g. for a missing key)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return 1


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document, keeping line numbers. Raises :class:`YamlSyntaxError`."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        document = YamlDocument(data=None)
        if root is not None:
            document.lines[()] = root.start_mark.line + 1
            document.data = _Builder(loader, document).build(root, ())
        return document
    except yaml.MarkedYAMLError as error:
        raise YamlSyntaxError(*_describe(error, text)) from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(1, f"invalid YAML: {error}") from None
    finally:
        loader.dispose()


def _describe(error: yaml.MarkedYAMLError, text: str) -> tuple[int, str]:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or "syntax error"
    context = error.context or ""
    if context and not context.startswith("while"):
        problem = f"{context}, {problem}"  # e.g. "expected a single document …, but found …"
    if mark is not None and text[mark.index : mark.index + 1] == "\t":
        problem += " (YAML cannot be indented with tabs)"
    return (mark.line + 1 if mark else 1), f"invalid YAML: {problem}"


class _Builder:
    """Turns composed nodes into plain data (string keys), recording positions."""

    def __init__(self, loader: yaml.SafeLoader, document: YamlDocument) -> None:
        self._loader = loader
        self._document = document
        self._active: set[int] = set()
        self._visited = 0

    def build(self, node: Node, loc: Loc) -> Any:
        self._visited += 1
        if self._visited > _MAX_NODES:
            raise YamlSyntaxError(node.start_mark.line + 1, "document too large or too nested")
        if id(node) in self._active:
            self._issue(loc, node, "an alias refers to itself")
            return None
        if isinstance(node, ScalarNode):
            return self._loader.construct_object(node)
        if node.tag not in _PLAIN_COLLECTIONS:
            # safe_load would refuse e.g. `!!python/object/apply`; so do we.
            message = f"invalid YAML: could not determine a constructor for the tag {node.tag!r}"
            raise YamlSyntaxError(node.start_mark.line + 1, message)
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, loc)
            if isinstance(node, SequenceNode):
                return self._sequence(node, loc)
            raise YamlSyntaxError(node.start_mark.line + 1, f"unsupported node {node.tag}")
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        self._loader.flatten_mapping(node)  # resolve `<<:` merge keys like safe_load does
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self._issue(loc, key_node, "keys must be plain text")
                continue
            # Keys stay text as written (`yes:` is the key "yes", not True).
            key = str(key_node.value)
            here = (*loc, key)
            if key in result:
                first = self._document.lines[here]
                self._issue(here, key_node, f"duplicate key (first defined on line {first})")
                continue
            self._document.lines[here] = key_line
            result[key] = self.build(value_node, here)
        return result

    def _sequence(self, node: SequenceNode, loc: Loc) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            here = (*loc, index)
            self._document.lines[here] = item.start_mark.line + 1
            items.append(self.build(item, here))
        return items

    def _issue(self, loc: Loc, node: Node, message: str) -> None:
        self._document.issues.append(YamlIssue(loc, node.start_mark.line + 1, message))
