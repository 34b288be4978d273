"""The model's Markdown as Telegram HTML that always parses.

M2-her writes role-play Markdown: ``*actions*``, ``**bold**``, ``code``, fenced blocks, links
and ``>`` quotes. :func:`to_html` turns it into the HTML subset Telegram accepts. Every piece of
text goes through :func:`html.escape` and tags are only ever written in matched pairs, so the
result can never fail with "can't parse entities"; what is not well-formed Markdown (an
unclosed ``**``) stays as the literal characters. The visible text is never longer than the
Markdown it came from, so a part that fits the length limit as Markdown fits as HTML.
"""

from __future__ import annotations

import html
import re

__all__ = ["escape_markdown", "to_html"]

# Inline markup, tried leftmost first; at one position the first alternative wins, so `**`
# is bold before `*` is italic. Each span stays on one line and has no space inside its ends.
_INLINE = re.compile(
    r"(?P<escape>\\(?P<escaped>[\\`*_~|\[\]()>#+\-.!]))"
    r"|(?P<code>(?<!`)(?P<ticks>`+)(?!`)(?P<code_text>.+?)(?<!`)(?P=ticks)(?!`))"
    r"|(?P<link>\[(?P<label>[^\]\n]+)\]\((?P<url>(?:https?|tg)://[^\s()]+)\))"
    r"|\*\*(?P<bold>(?=\S).+?(?<=\S))\*\*"
    r"|(?<!\w)__(?P<strong>(?=\S).+?(?<=\S))__(?!\w)"
    r"|~~(?P<strike>(?=\S).+?(?<=\S))~~"
    r"|\|\|(?P<spoiler>(?=\S).+?(?<=\S))\|\|"
    r"|\*(?P<italic>(?=[^\s*])[^*\n]*?(?<=[^\s*\\]))\*"
    r"|(?<!\w)_(?P<underscore>(?=[^\s_])[^_\n]*?(?<=[^\s_]))_(?!\w)"
)
_TAGS = {
    "bold": "b",
    "strong": "b",
    "strike": "s",
    "spoiler": "tg-spoiler",
    "italic": "i",
    "underscore": "i",
}
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*$", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$")
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+(?=\S)")
_QUOTE = re.compile(r"^[ \t]*>[ \t]?")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_~|\[\]])")


def to_html(markdown: str) -> str:
    """Telegram HTML showing ``markdown`` formatted; safe whatever the input."""
    out: list[str] = []
    position = 0
    for start, end, language, body in _fenced_blocks(markdown):
        out.append(_blocks(markdown[position:start]))
        if body.strip():
            out.append(_pre(body, language))
        else:
            # Telegram drops an empty entity; keep the fence visible rather than vanish.
            out.append(html.escape(markdown[start:end], quote=False))
        position = end
    out.append(_blocks(markdown[position:]))
    return "".join(out)


def escape_markdown(text: str) -> str:
    """``text`` with the characters :func:`to_html` reads as markup escaped by a backslash."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _fenced_blocks(text: str) -> list[tuple[int, int, str, str]]:
    """``(start, end, language, body)`` of each closed fenced code block.

    An opening fence with no closing one is left to the inline rules (it is half-streamed).
    """
    blocks = []
    fences = list(_FENCE.finditer(text))
    index = 0
    while index + 1 < len(fences):
        opening, closing = fences[index], fences[index + 1]
        body = text[opening.end() + 1 : closing.start()]
        blocks.append((opening.start(), closing.end(), opening.group(1), body.rstrip("\n")))
        index += 2
    return blocks


def _pre(body: str, language: str) -> str:
    code = html.escape(body, quote=False)
    if language:
        return f'<pre><code class="language-{html.escape(language)}">{code}</code></pre>'
    return f"<pre>{code}</pre>"


def _blocks(text: str) -> str:
    """Line-level Markdown (quotes, headings, bullets) outside code blocks."""
    out: list[str] = []
    quoted: list[str] = []
    for line in text.split("\n"):
        if _QUOTE.match(line):
            quoted.append(_inline(_QUOTE.sub("", line, count=1)))
            continue
        if quoted:
            out.append(_blockquote(quoted))
            quoted = []
        out.append(_line(line))
    if quoted:
        out.append(_blockquote(quoted))
    return "\n".join(out)


def _blockquote(lines: list[str]) -> str:
    inner = "\n".join(lines)
    return f"<blockquote>{inner}</blockquote>" if inner.strip() else inner


def _line(line: str) -> str:
    heading = _HEADING.match(line)
    if heading:
        return _wrap("b", _inline(heading.group(1)))
    bullet = _BULLET.match(line)
    if bullet:
        return bullet.group(1) + "• " + _inline(line[bullet.end() :])
    return _inline(line)


def _inline(text: str) -> str:
    out: list[str] = []
    position = 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[position : match.start()], quote=False))
        out.append(_span(match))
        position = match.end()
    out.append(html.escape(text[position:], quote=False))
    return "".join(out)


def _span(match: re.Match[str]) -> str:
    if match.group("escape"):
        return html.escape(match.group("escaped"), quote=False)
    if match.group("code"):
        code = match.group("code_text")
        # `` `a` `` style: one space pads a code span that starts or ends with a backtick.
        if code.startswith(" ") and code.endswith(" ") and code.strip():
            code = code[1:-1]
        if not code.strip():
            return html.escape(match[0], quote=False)
        return f"<code>{html.escape(code, quote=False)}</code>"
    if match.group("link"):
        url = html.escape(match.group("url"), quote=True)
        return f'<a href="{url}">{_inline(match.group("label"))}</a>'
    for group, tag in _TAGS.items():
        inner = match.group(group)
        if inner is not None:
            return _wrap(tag, _inline(inner))
    raise AssertionError(f"unhandled markup {match[0]!r}")


def _wrap(tag: str, inner: str) -> str:
    # An entity with no visible text is dropped by Telegram: don't produce one.
    if not html.unescape(re.sub(r"<[^>]*>", "", inner)).strip():
        return inner
    return f"<{tag}>{inner}</{tag}>"
