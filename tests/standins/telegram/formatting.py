"""Telegram's text formatting: parse modes, entity checks and UTF-16 arithmetic.

The Bot API measures entity offsets and lengths in UTF-16 code units and rejects markup it
cannot parse with ``400 Bad Request: can't parse entities: ...``. This module reproduces that
strictly enough that a reply which would fail on Telegram fails here too:

* :func:`parse_html` accepts exactly Telegram's HTML subset;
* :func:`parse_markdown_v2` enforces the escaping rules of MarkdownV2;
* :func:`parse_markdown` implements the legacy ``Markdown`` mode;
* :func:`check_entities` validates an explicit ``entities`` array against its text.

Every parser returns ``(plain_text, entities)`` with entities as Bot API dictionaries, or
raises :class:`ParseError` whose message is the part after "can't parse entities: ".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Entity = dict[str, Any]

ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
        "date_time",
    }
)


class ParseError(ValueError):
    """Markup that Telegram refuses; ``str(err)`` is the reason Telegram gives."""


def utf16_len(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(source: str, index: int) -> int:
    # Telegram reports positions in the markup as UTF-8 byte offsets.
    return len(source[:index].encode("utf-8"))


@dataclass
class _Open:
    """An entity whose start marker has been read but whose end has not."""

    kind: str
    start: int  # UTF-16 offset in the output text
    marker: int  # index of its start marker in the source
    extra: dict[str, Any] = field(default_factory=dict)


class _Output:
    """Plain text being built, tracking its UTF-16 length and the finished entities."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.entities: list[Entity] = []

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def close(self, entity_type: str, start: int, *, end: int | None = None, **extra: Any) -> None:
        """Add an entity from ``start`` to ``end`` (default: the current end of the text)."""
        stop = self.length if end is None else end
        if stop > start:  # Telegram drops empty entities silently.
            self.entities.append(
                {"type": entity_type, "offset": start, "length": stop - start, **extra}
            )

    def close_pre(self, start: int, language: str | None) -> None:
        """Add a ``pre`` block, with its language when one was given."""
        if language:
            self.close("pre", start, language=language)
        else:
            self.close("pre", start)

    def result(self) -> tuple[str, list[Entity]]:
        ordered = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), ordered


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
}
_KNOWN_TAGS = {*_SIMPLE_TAGS, "span", "a", "code", "pre", "blockquote", "tg-emoji"}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")
_TAG_NAME_RE = re.compile(r"[^\s/>]*")  # as Telegram reads it: up to space, / or >
_ATTR_RE = re.compile(r"""\s*([a-zA-Z_-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


def _decode_entity(source: str, index: int) -> tuple[str, int]:
    """Decode the HTML entity at ``source[index] == '&'``; return (character, next index)."""
    match = _ENTITY_RE.match(source, index)
    if match is not None:
        decimal, hexadecimal, name = match.groups()
        if name is None:
            code = int(decimal) if decimal is not None else int(hexadecimal, 16)
            if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code), match.end()
        elif name in _NAMED_ENTITIES:
            return _NAMED_ENTITIES[name], match.end()
    # Telegram itself keeps such an ampersand literally; its documentation requires escaping,
    # and the stand-in enforces that so unescaped text is caught before it reaches Telegram.
    raise ParseError(
        f"Character '&' at byte offset {_byte_offset(source, index)} is not part of a supported "
        "HTML entity and must be escaped as &amp;"
    )


def _decode_text(source: str, start: int, end: int) -> str:
    """Decode the entities in ``source[start:end]``, which contains no tags."""
    out: list[str] = []
    index = start
    while index < end:
        amp = source.find("&", index, end)
        if amp < 0:
            out.append(source[index:end])
            break
        out.append(source[index:amp])
        char, index = _decode_entity(source, amp)
        out.append(char)
    return "".join(out)


def _parse_attributes(source: str, start: int, end: int, tag: int) -> dict[str, str]:
    attributes: dict[str, str] = {}
    index = start
    while index < end:
        if source[index].isspace() or source[index] == "/":
            index += 1
            continue
        match = _ATTR_RE.match(source, index, end)
        if match is None or match.end() == index:
            offset = _byte_offset(source, tag)
            raise ParseError(f"Empty attribute name in the tag at byte offset {offset}")
        name = match.group(1).lower()
        raw = next((g for g in match.groups()[1:] if g is not None), "")
        attributes[name] = _decode_text(raw, 0, len(raw)) if "&" in raw else raw
        index = match.end()
    return attributes


def _open_html_tag(name: str, attributes: dict[str, str], opened: _Open) -> None:
    """Validate a start tag and store what its entity needs in ``opened.extra``."""
    if name == "span" and attributes.get("class") != "tg-spoiler":
        raise ParseError('Tag "span" must have class "tg-spoiler"')
    if name == "a":
        opened.extra["href"] = attributes.get("href", "")
    elif name == "code":
        language = attributes.get("class", "")
        if language.startswith("language-"):
            opened.extra["language"] = language.removeprefix("language-")
    elif name == "blockquote":
        opened.extra["expandable"] = "expandable" in attributes
    elif name == "tg-emoji":
        emoji_id = attributes.get("emoji-id", "")
        if not emoji_id.isdigit():
            raise ParseError('Tag "tg-emoji" must have attribute "emoji-id" with a custom emoji')
        opened.extra["custom_emoji_id"] = emoji_id


def _close_html_tag(out: _Output, opened: _Open, parent: _Open | None) -> None:
    name = opened.kind
    if name in _SIMPLE_TAGS:
        out.close(_SIMPLE_TAGS[name], opened.start)
    elif name == "span":
        out.close("spoiler", opened.start)
    elif name == "a":
        href = str(opened.extra["href"])
        user_id = re.fullmatch(r"tg://user\?id=(\d+)", href)
        if user_id is not None:
            out.close("text_mention", opened.start, user={"id": int(user_id.group(1))})
        elif href:
            out.close("text_link", opened.start, url=href)
    elif name == "code":
        # <pre><code class="language-x"> is a pre block with a language, not inline code.
        if parent is not None and parent.kind == "pre" and parent.start == opened.start:
            if "language" in opened.extra:
                parent.extra["language"] = opened.extra["language"]
            return
        out.close("code", opened.start)
    elif name == "pre":
        language = opened.extra.get("language")
        out.close_pre(opened.start, language)
    elif name == "blockquote":
        kind = "expandable_blockquote" if opened.extra["expandable"] else "blockquote"
        out.close(kind, opened.start)
    elif name == "tg-emoji":
        out.close("custom_emoji", opened.start, custom_emoji_id=opened.extra["custom_emoji_id"])


def _tag_end(source: str, start: int) -> int:
    """Index of the ``>`` closing the tag at ``start``, skipping quoted attribute values."""
    quote = ""
    for index in range(start + 1, len(source)):
        char = source[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == ">":
            return index
    return -1


def parse_html(source: str) -> tuple[str, list[Entity]]:
    """Parse Telegram's HTML subset into plain text and entities.

    Supported: ``b strong i em u ins s strike del tg-spoiler``, ``span class="tg-spoiler"``,
    ``a href``, ``code``, ``pre`` (with ``<code class="language-x">`` inside), ``blockquote``
    (``expandable``) and ``tg-emoji emoji-id``; the entities ``&lt; &gt; &amp; &quot;`` and
    numeric ones. Any other tag, an unbalanced tag or an unescaped ``<``, ``>`` or ``&`` is a
    :class:`ParseError`.
    """
    out = _Output()
    stack: list[_Open] = []
    index = 0
    length = len(source)
    while index < length:
        lt = source.find("<", index)
        gt = source.find(">", index, lt if lt >= 0 else length)
        if gt >= 0:
            raise ParseError(
                f"Character '>' at byte offset {_byte_offset(source, gt)} must be escaped as &gt;"
            )
        if lt < 0:
            out.write(_decode_text(source, index, length))
            break
        out.write(_decode_text(source, index, lt))
        # Byte offsets are O(n) to compute, so only error paths compute them.
        end = _tag_end(source, lt)
        if end < 0:
            raise ParseError(f"Unclosed start tag at byte offset {_byte_offset(source, lt)}")
        if source.startswith("</", lt):
            name = source[lt + 2 : end].strip().lower()
            if not stack:
                raise ParseError(f"Unexpected end tag at byte offset {_byte_offset(source, lt)}")
            if name != stack[-1].kind:
                expected = stack[-1].kind
                raise ParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(source, lt)}, "
                    f'expected "</{expected}>", found "</{name}>"'
                )
            opened = stack.pop()
            _close_html_tag(out, opened, stack[-1] if stack else None)
        else:
            name_match = _TAG_NAME_RE.match(source, lt + 1)
            assert name_match is not None  # the pattern also matches the empty string
            name = name_match.group().lower()
            if name not in _KNOWN_TAGS:
                offset = _byte_offset(source, lt)
                raise ParseError(f'Unsupported start tag "{name}" at byte offset {offset}')
            attributes = _parse_attributes(source, name_match.end(), end, lt)
            opened = _Open(name, out.length, lt)
            _open_html_tag(name, attributes, opened)
            stack.append(opened)
        index = end + 1
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].kind}"')
    return out.result()


# --------------------------------------------------------------------------------------------
# MarkdownV2
# --------------------------------------------------------------------------------------------

_V2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_V2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}
_V2_TOGGLES = {"*": "bold", "~": "strikethrough", "||": "spoiler", "__": "underline", "_": "italic"}


def _v2_unclosed(source: str, opened: _Open) -> ParseError:
    name = _V2_NAMES[opened.kind]
    offset = _byte_offset(source, opened.marker)
    return ParseError(f"Can't find end of {name} entity at byte offset {offset}")


def _v2_reserved(char: str) -> ParseError:
    return ParseError(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")


def _v2_link_target(source: str, index: int, opened: _Open) -> tuple[str, int]:
    """Read ``(url)`` after a link's closing bracket; return (url, index after it)."""
    if not source.startswith("(", index):
        raise _v2_unclosed(source, opened)
    chars: list[str] = []
    index += 1
    while index < len(source) and source[index] != ")":
        if source[index] == "\\" and index + 1 < len(source):
            index += 1
        chars.append(source[index])
        index += 1
    if index >= len(source):
        raise _v2_unclosed(source, opened)
    return "".join(chars), index + 1


class _MarkdownV2:
    """One pass over MarkdownV2 source; see :func:`parse_markdown_v2`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.out = _Output()
        self.stack: list[_Open] = []
        self.quote: _Open | None = None
        self.line_end = 0  # where the text of the last finished line ended
        self.index = 0

    def run(self) -> tuple[str, list[Entity]]:
        source = self.source
        while self.index < len(source):
            in_code = bool(self.stack) and self.stack[-1].kind in ("code", "pre")
            if not in_code and (self.index == 0 or source[self.index - 1] == "\n"):
                self._line_start()
                if self.index >= len(source):
                    break
            char = source[self.index]
            if char == "\\" and 0 < ord(source[self.index + 1 : self.index + 2] or "\x80") <= 126:
                # Any ASCII character may be escaped; a lone backslash is plain text.
                self.out.write(source[self.index + 1])
                self.index += 2
            elif in_code:
                self._in_code(char)
            elif char == "\n":
                self._newline()
            elif char in _V2_RESERVED:
                self._markup(char)
            else:
                self.out.write(char)
                self.index += 1
        if self.stack:
            raise _v2_unclosed(self.source, self.stack[-1])
        self._end_quote(self.line_end if source.endswith("\n") else self.out.length)
        return self.out.result()

    def _line_start(self) -> None:
        source = self.source
        if source.startswith("**>", self.index) and self.quote is None:
            self.quote = _Open("expandable_blockquote", self.out.length, 0)
            self.index += 3
        elif source.startswith(">", self.index):
            if self.quote is None:
                self.quote = _Open("blockquote", self.out.length, 0)
            self.index += 1
        elif self.quote is not None and not self.stack:
            self._end_quote(self.line_end)  # before the newline that ended the last line

    def _end_quote(self, end: int) -> None:
        if self.quote is not None:
            self.out.close(self.quote.kind, self.quote.start, end=end)
            self.quote = None

    def _newline(self) -> None:
        self.line_end = self.out.length
        self.out.write("\n")
        self.index += 1

    def _in_code(self, char: str) -> None:
        top = self.stack[-1]
        if char != "`":
            self.out.write(char)
            self.index += 1
            return
        if top.kind == "pre":
            if not self.source.startswith("```", self.index):
                raise _v2_reserved("`")
            self.index += 3
            language = top.extra.get("language")
            self.out.close_pre(top.start, language)
        else:
            self.index += 1
            self.out.close("code", top.start)
        self.stack.pop()

    def _markup(self, char: str) -> None:
        source = self.source
        marker = self.index
        if char == "`":
            if source.startswith("```", self.index):
                self.index += 3
                newline = source.find("\n", self.index)
                language = ""
                if newline >= 0 and re.fullmatch(r"[\w+#.-]*", source[self.index : newline]):
                    language = source[self.index : newline]
                    self.index = newline + 1
                self.stack.append(_Open("pre", self.out.length, marker, {"language": language}))
            else:
                self.index += 1
                self.stack.append(_Open("code", self.out.length, marker))
            return
        if char == "[" or (char == "!" and source.startswith("![", self.index)):
            kind = "text_link" if char == "[" else "custom_emoji"
            self.index += 1 if char == "[" else 2
            self.stack.append(_Open(kind, self.out.length, marker))
            return
        if char == "]" and self.stack and self.stack[-1].kind in ("text_link", "custom_emoji"):
            self._close_link()
            return
        if (
            char == "|"
            and source.startswith("||", self.index)
            and self.quote is not None
            and self.quote.kind == "expandable_blockquote"
            and not self.stack
            and source[self.index + 2 : self.index + 3] in ("", "\n")
        ):
            self.index += 2  # "||" at the end of an expandable quote's last line
            self._end_quote(self.out.length)
            return
        token = next((t for t in ("||", "__") if source.startswith(t, self.index)), char)
        if token == "__" and self.stack and self.stack[-1].kind == "italic":
            token = "_"  # "___" closes italic before underline, as Telegram reads it
        toggled = _V2_TOGGLES.get(token)
        if toggled is None:
            raise _v2_reserved(char)
        self.index += len(token)
        if self.stack and self.stack[-1].kind == toggled:
            opened = self.stack.pop()
            self.out.close(toggled, opened.start)
        elif any(o.kind == toggled for o in self.stack):
            raise _v2_unclosed(self.source, self.stack[-1])
        else:
            self.stack.append(_Open(toggled, self.out.length, marker))

    def _close_link(self) -> None:
        opened = self.stack.pop()
        target, self.index = _v2_link_target(self.source, self.index + 1, opened)
        if opened.kind == "custom_emoji":
            emoji = re.fullmatch(r"tg://emoji\?id=(\d+)", target)
            if emoji is None:
                raise ParseError("Custom emoji URL must have an emoji identifier")
            self.out.close("custom_emoji", opened.start, custom_emoji_id=emoji.group(1))
            return
        user_id = re.fullmatch(r"tg://user\?id=(\d+)", target)
        if user_id is not None:
            self.out.close("text_mention", opened.start, user={"id": int(user_id.group(1))})
        elif target:
            self.out.close("text_link", opened.start, url=target)


def parse_markdown_v2(source: str) -> tuple[str, list[Entity]]:
    """Parse MarkdownV2 into plain text and entities.

    Outside markup, each of ``_*[]()~`>#+-=|{}.!`` must be escaped with ``\\``; inside
    ``code``/``pre`` only `````` ` `````` and ``\\`` need escaping. Supports bold, italic,
    underline, strikethrough, spoiler, code, pre with language, links, user mentions, custom
    emoji, and (expandable) block quotes.
    """
    return _MarkdownV2(source).run()


# --------------------------------------------------------------------------------------------
# Legacy Markdown
# --------------------------------------------------------------------------------------------

_LEGACY = {"*": "bold", "_": "italic", "`": "code"}


def _legacy_unclosed(source: str, index: int) -> ParseError:
    offset = _byte_offset(source, index)
    return ParseError(f"Can't find end of the entity starting at byte offset {offset}")


def parse_markdown(source: str) -> tuple[str, list[Entity]]:
    """Parse legacy ``Markdown``: ``*bold*``, ``_italic_``, ```code```, ```` ```pre``` ```` and
    ``[text](url)``; an unterminated marker is an error, as on Telegram."""
    out = _Output()
    index = 0
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source) and source[index + 1] in "*_`[":
            out.write(source[index + 1])
            index += 2
        elif source.startswith("```", index):
            end = source.find("```", index + 3)
            if end < 0:
                raise _legacy_unclosed(source, index)
            body = source[index + 3 : end]
            language, _, rest = body.partition("\n")
            if not rest or not re.fullmatch(r"[\w+#.-]+", language):
                language, rest = "", body
            start = out.length
            out.write(rest)
            out.close_pre(start, language)
            index = end + 3
        elif char in _LEGACY:
            end = source.find(char, index + 1)
            if end < 0:
                raise _legacy_unclosed(source, index)
            start = out.length
            out.write(source[index + 1 : end])
            out.close(_LEGACY[char], start)
            index = end + 1
        elif char == "[":
            link = re.compile(r"\[([^\]]*)\]\(([^)]*)\)").match(source, index)
            if link is None:
                raise _legacy_unclosed(source, index)
            start = out.length
            out.write(link.group(1))
            out.close("text_link", start, url=link.group(2))
            index = link.end()
        else:
            out.write(char)
            index += 1
    return out.result()


# --------------------------------------------------------------------------------------------
# Explicit entities
# --------------------------------------------------------------------------------------------

_REQUIRED_FIELDS = {"text_link": "url", "text_mention": "user", "custom_emoji": "custom_emoji_id"}


def check_entities(text: str, entities: Any) -> list[Entity]:
    """Validate an explicit ``entities`` array for ``text``; return it sorted.

    Each entity needs a known ``type``, integer ``offset`` >= 0 and ``length`` >= 1 lying
    inside the text measured in UTF-16 code units, plus the field its type requires.
    """
    if not isinstance(entities, list):
        raise ParseError("entities must be an array of MessageEntity")
    total = utf16_len(text)
    checked: list[Entity] = []
    for number, entity in enumerate(entities):
        if not isinstance(entity, dict) or entity.get("type") not in ENTITY_TYPES:
            raise ParseError(f"entity {number} has an unsupported type")
        offset, length = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(length, int):
            raise ParseError(f"entity {number} needs integer offset and length")
        if offset < 0 or length < 1 or offset + length > total:
            raise ParseError(
                f"entity {number} ({entity['type']}, offset {offset}, length {length}) lies "
                f"outside the text, which is {total} UTF-16 code units long"
            )
        required = _REQUIRED_FIELDS.get(entity["type"])
        if required is not None and not entity.get(required):
            raise ParseError(f"entity {number} ({entity['type']}) needs the field {required!r}")
        checked.append(dict(entity))
    return sorted(checked, key=lambda e: (e["offset"], -e["length"]))


def strip_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Trim leading and trailing whitespace as Telegram does, moving entities with the text."""
    stripped = text.strip()
    if not stripped:
        return "", []
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    end = lead + utf16_len(stripped)
    moved: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"], lead)
        stop = min(entity["offset"] + entity["length"], end)
        if stop > start:
            moved.append({**entity, "offset": start - lead, "length": stop - start})
    return stripped, moved


def format_text(
    text: str, parse_mode: str | None, entities: Any | None
) -> tuple[str, list[Entity]]:
    """Turn request text into what Telegram stores: explicit entities win over parse_mode.

    Raises :class:`ParseError` for bad markup or entities and :class:`ValueError` with
    "unsupported parse_mode" for an unknown mode.
    """
    if entities is not None:
        return strip_text(text, check_entities(text, entities))
    if not parse_mode:
        return strip_text(text, [])
    mode = parse_mode.lower()
    if mode == "html":
        return strip_text(*parse_html(text))
    if mode == "markdownv2":
        return strip_text(*parse_markdown_v2(text))
    if mode == "markdown":
        return strip_text(*parse_markdown(text))
    raise ValueError("unsupported parse_mode")
