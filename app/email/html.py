"""HTML email bodies: sanitized for display with nh3, converted to text for intake.

Everything a sender writes in HTML is hostile: scripts, event handlers, ``javascript:`` links,
``<style>`` and inline CSS, frames, forms, SVG. ``sanitize_html`` keeps only nh3's allow-list of
formatting tags and attributes, drops every ``style``, and turns ``cid:`` image references into a
placeholder naming the stored attachment by its sha256, which ``resolve_inline_images`` later maps
to a URL the page can load. Text conversion reuses ``integrations.text.html_to_text`` (linear time on
any markup), so intake sees the same text whatever channel a message came through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from html import escape
from urllib.parse import unquote

import nh3

from integrations.text import html_to_text

__all__ = ["INLINE_IMAGE_SCHEME", "html_to_text", "resolve_inline_images", "sanitize_html",
           "too_deep"]

#: ``<img src>`` of an inline image after sanitizing: this scheme plus the attachment's sha256.
INLINE_IMAGE_SCHEME = "rebound-attachment:"

_MAX_DEPTH = 2000
_START_OR_END = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)")
# Void elements, and elements a parser closes when the next one of their kind starts: neither
# makes the tree deeper, however many there are.
_FLAT = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "param", "source", "track", "wbr", "p", "li", "td", "tr", "th", "option"})
_PLACEHOLDER = re.compile(re.escape(INLINE_IMAGE_SCHEME) + r"([0-9a-f]{64})")
# "cid" must pass nh3's scheme check to reach the attribute filter, which rewrites or drops it.
_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel", "cid"})


def sanitize_html(html: str, inline_images: Mapping[str, str] | None = None, *,
                  remote_images: bool = False) -> str:
    """``html`` with only safe markup left, ready to embed in a page.

    ``inline_images`` maps a Content-ID (without angle brackets, any case) to the sha256 of the
    stored attachment; ``<img src="cid:…">`` becomes ``src="rebound-attachment:<sha256>"`` when
    the part is known and loses its ``src`` otherwise. Remote images (``http(s)://``) are dropped
    unless ``remote_images`` is set: they are how senders track who opened a mail. Markup nested
    absurdly deep (see ``too_deep``) comes back as its escaped text in a ``<pre>``.
    """
    if too_deep(html):  # unreadable as HTML anyway: show its text, escaped
        return "<pre>" + escape(html_to_text(html) or "", quote=False) + "</pre>"
    known = {key.lower(): value for key, value in (inline_images or {}).items()}

    def attribute(tag: str, name: str, value: str) -> str | None:
        lowered = value.strip().lower()
        if lowered.startswith("cid:"):
            if tag != "img" or name != "src":
                return None
            sha256 = known.get(unquote(value.strip()[4:]).strip("<> ").lower())
            return INLINE_IMAGE_SCHEME + sha256 if sha256 else None
        if tag == "img" and name == "src" and not remote_images:
            return None
        return value

    return nh3.clean(html, url_schemes=set(_URL_SCHEMES), attribute_filter=attribute,
                     link_rel="noopener noreferrer nofollow")


def resolve_inline_images(sanitized: str, url_for: Callable[[str], str | None]) -> str:
    """``sanitized`` (output of ``sanitize_html``) with each inline-image placeholder replaced by
    ``url_for(sha256)``; a placeholder whose URL is ``None`` becomes an empty ``src``.

    The URL is HTML-escaped, so a caller cannot break out of the attribute by accident.
    """
    return _PLACEHOLDER.sub(lambda match: escape(url_for(match.group(1)) or "", quote=True),
                            sanitized)


def too_deep(html: str, limit: int = _MAX_DEPTH) -> bool:
    """Whether ``html`` nests elements more than ``limit`` deep (an estimate that errs high).

    html5ever, under nh3, checks the open-element stack on every block start tag, so 100,000
    nested ``<div>`` take it most of a minute; no real mail nests a fraction of that.
    """
    if html.count("<") - html.count("</") <= limit:  # not enough start tags to get that deep
        return False
    depth = 0
    for match in _START_OR_END.finditer(html):
        if match.group(1):
            depth = max(depth - 1, 0)
        elif match.group(2).lower() not in _FLAT:
            depth += 1
            if depth > limit:
                return True
    return False
