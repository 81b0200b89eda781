"""Unit tests for integrations.text: ``clean`` and the one HTML-to-text converter every adapter
uses. Hostile markup must come out in linear time. No app, no DB."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import integrations.text as text_module
from integrations.text import clean, html_to_text

# --- clean ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "cleaned"), [
    ("plain", "plain"),
    ("a\x00b\x00", "ab"),
    ("lone \ud800 surrogate", "lone ? surrogate"),
    ("\x00\udfff\x00", "?"),
    ("  kept  ", "  kept  "),  # trimming is the caller's choice
    ("emoji 🙂 and é", "emoji 🙂 and é"),
])
def test_clean_removes_nul_and_lone_surrogates(value: str, cleaned: str) -> None:
    assert clean(value) == cleaned
    clean(value).encode("utf-8")


@settings(max_examples=300)
@given(st.text(st.characters(categories=("Cc", "Cs", "Ll", "Lo", "So", "Zs")), max_size=40))
def test_clean_is_the_round_trip_through_utf8_whatever_the_text(value: str) -> None:
    # ASCII text skips the round trip; every text must come out as if it had made it.
    assert clean(value) == value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


# --- html_to_text: what the adapters rely on --------------------------------------------------


@pytest.mark.parametrize(("html", "text"), [
    ("<div>Hello,</div><div><br></div><div>Thanks,<br>Maria</div>", "Hello,\n\nThanks,\nMaria"),
    ("<p>line one\nline two</p>", "line one line two"),  # a source line break is a space
    ("<pre>order  #1001\n  size M</pre>after", "order #1001\nsize M\nafter"),  # except inside <pre>
    ("a</br>b", "a\nb"),  # a stray </br> is a line break, as in browsers, not glued words
    ("<a title=\"x > y\" href='/r'>return</a> it", "return it"),  # ">" inside a quoted attribute
    ("<font face=Arial'>x</font>", "x"),  # a lone quote in a tag is just a character
    ("<section>a</section><ul><li>b</li></ul>c", "a\n\nb\n\nc"),  # at most one blank line
    ("<head><title>t</title></head><template>tpl</template><style>p{}</style>body", "body"),
    ("<script>if (a<b) steal()</script>ok", "ok"),
    ("<!-- note -->shown<!-- unclosed", "shown"),
    ("<!DOCTYPE html><?xml version='1.0'?><![if !mso]>x<![endif]>", "x"),
    ("<p>&eacute;t&eacute; &#8211; &#x1F642; &nbsp;&amp;</p>", "été – 🙂 &"),
    ("&#0;&#xD800;&#99999999;", "\ufffd\ufffd\ufffd"),  # never NUL or a lone surrogate
    ("<p>a\x00b\ud800</p>", "ab?"),
    ("plain  text\n  keeps its lines", "plain  text\n  keeps its lines"),
    ("1 < 2 and 3 > 2, <3", "1 < 2 and 3 > 2, <3"),
    ("x <b", "x <b"),
    ("<p>   </p><br>", None),
    ("", None),
    (None, None),
])
def test_html_to_text(html: str | None, text: str | None) -> None:
    assert html_to_text(html) == text


# --- hostile input: linear time, never an exception ---------------------------------------------


HOSTILE = [
    "<a " * 200_000, "<" * 500_000, "<!--" * 200_000, "<script>" * 100_000, "<a" + "b" * 500_000,
    "</" * 200_000, "<![CDATA[" * 100_000, '<a "' * 200_000, "<a b='" * 200_000, "<a '>" * 200_000,
    '<a title="' + "x" * 500_000, ('<a "' + "x" * 10) * 50_000, "<pre>" * 200_000, "</br>" * 200_000,
    "<title>" + "</titl" * 100_000, "<a " + "\"'" * 250_000, "<div>" * 100_000 + "&amp;" * 100_000,
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda value: repr(value[:12]))
def test_hostile_markup_is_converted_quickly(hostile: str) -> None:
    """Inputs that make html.parser (or a backtracking regex) take minutes finish at all: the
    bound is a hang guard, far above the normal tenth of a second, so a busy machine can't trip it."""
    started = time.monotonic()
    html_to_text(hostile)
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("unit", ['<a "', "<a ", "</", "<pre>"])
def test_time_grows_linearly_with_the_input(unit: str) -> None:
    """Four times the input takes about four times as long, not sixteen (quadratic)."""
    def seconds(repeat: int) -> float:
        started = time.perf_counter()
        html_to_text(unit * repeat)
        return time.perf_counter() - started

    seconds(10_000)  # warm the regex cache
    small, large = min(seconds(50_000) for _ in range(3)), min(seconds(200_000) for _ in range(3))
    assert large < small * 8


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("<>/!-ab &;#x\n\"'=\x00") + [
    "<br>", "</br>", "<p>", "</p>", "<pre>", "</pre>", "<script>", "</script>", "<!--", "-->", "&amp;",
    "<a href='x'>", "<a title=\"x>y\">", "\ud800",
]), max_size=80).map("".join))
def test_any_markup_gives_clean_trimmed_text_or_none(html: str) -> None:
    result = html_to_text(html)
    assert result is None or (result == result.strip() and result != "")
    assert result is None or ("\x00" not in result and result.encode("utf-8"))


def test_module_imports_nothing_from_app() -> None:
    tree = ast.parse(Path(text_module.__file__).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and (name == "app" or name.startswith("app."))]
