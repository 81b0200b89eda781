"""Plain text from what helpdesks send: strings made safe to store, and HTML bodies as text.

Pure string functions, shared by every adapter: nothing here knows a payload's shape (that is
``integrations.payload``) or a request. Both functions take any input a sender can craft and
never raise on it.
"""

from __future__ import annotations

import re
from html import unescape


def clean(value: str) -> str:
    """``value`` without NUL characters, and with lone surrogates replaced by "?".

    NUL and lone surrogates would break the database and UTF-8 encoding downstream.
    """
    value = value.replace("\x00", "")
    if value.isascii():  # most of what helpdesks send: no surrogate to replace, no round trip
        return value
    return value.encode("utf-8", "replace").decode("utf-8")


def html_to_text(html: str | None) -> str | None:
    """Plain text from an HTML message body: blocks and ``<br>`` become line breaks.

    Text without tags is returned as it is (trimmed), so plain bodies keep their line breaks.
    Runs in linear time and never raises, whatever the markup: ``html.parser`` was dropped
    because inputs such as ``"<a " * 10_000`` make it take minutes. The result is ``clean``.
    """
    if html is None:
        return None
    html = clean(html)
    if not _MARKUP.search(html):
        return unescape(html).strip() or None
    parts: list[str] = []
    pos, size, pre = 0, len(html), 0  # pre: how many <pre> elements we are inside
    while pos < size:
        start = html.find("<", pos)
        if start < 0:
            parts.append(_inline(html[pos:], pre > 0))
            break
        parts.append(_inline(html[pos:start], pre > 0))
        if html.startswith("<!--", start):
            end = html.find("-->", start + 4)
            pos = size if end < 0 else end + 3
            continue
        tag = _TAG.match(html, start)
        if tag is None:  # a lone "<" is text
            parts.append("<")
            pos = start + 1
            continue
        pos = tag.end()
        name, closing = (tag.group("name") or "").lower(), bool(tag.group("close"))
        if name in _HIDDEN and not closing:
            close = re.compile(rf"</{name}\b[^<>]*+>", re.IGNORECASE).search(html, pos)
            pos = size if close is None else close.end()
            continue
        if name == "pre":
            pre = max(pre - 1, 0) if closing else pre + 1
        # Browsers read a stray "</br>" as "<br>"; ignoring it would glue two lines' words.
        if name in _BLOCKS or name == "br" or (name in _BREAKS and not closing):
            parts.append("\n")
    lines = (line.strip() for line in "".join(parts).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() or None


def _inline(text: str, preformatted: bool) -> str:
    # In HTML a line break in the source is just a space; only tags make new lines, except
    # inside <pre>, whose line breaks are kept.
    if not text:
        return ""
    return re.sub(r"[^\S\n]+" if preformatted else r"\s+", " ", unescape(text))


_MARKUP = re.compile(r"<[A-Za-z/!?]")
# Possessive quantifiers (Python 3.11+) keep a tag that never closes from being re-scanned.
# A quoted attribute value may hold ">" but not "<", so no match attempt runs past the next
# "<", which keeps the whole scan linear; a lone quote (``<font face=Arial'>``) is just a character.
_TAG = re.compile(r"""<(?:(?P<close>/?)(?P<name>[A-Za-z][A-Za-z0-9:-]*+)|[!?])"""
                  r"""(?:[^<>"']++|"[^"<]*+"|'[^'<]*+'|["'])*+>""")
_BLOCKS = frozenset({
    "address", "article", "blockquote", "dd", "div", "dl", "dt", "footer", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "li", "ol", "p", "pre", "section", "table", "tr", "ul",
})
_BREAKS = frozenset({"br", "hr"})  # void elements: one line break each; of their end tags only "</br>"
_HIDDEN = frozenset({"head", "script", "style", "template", "title"})
