"""Unit tests for app.email.html: sanitizing mail HTML for display and mapping inline images.
No app, no DB."""

from __future__ import annotations

import time

from app.email.html import INLINE_IMAGE_SCHEME, resolve_inline_images, sanitize_html, too_deep

SHA = "ab" * 32


def test_cid_images_become_placeholders_and_unknown_ones_lose_their_src() -> None:
    html = ('<img src="cid:Logo@X" alt="logo"><img src="cid:%3Cphoto%40x%3E">'
            '<img src="cid:unknown@x"><a href="cid:logo@x">link</a>')
    cleaned = sanitize_html(html, {"logo@x": SHA, "photo@x": "cd" * 32})
    assert f'<img src="{INLINE_IMAGE_SCHEME}{SHA}" alt="logo">' in cleaned
    assert f'<img src="{INLINE_IMAGE_SCHEME}{"cd" * 32}">' in cleaned
    assert cleaned.count("<img") == 3 and "unknown" not in cleaned
    assert "<a rel=" in cleaned and "cid:" not in cleaned


def test_remote_images_are_dropped_unless_allowed() -> None:
    html = '<img src="https://tracker.example/p.gif">'
    assert "tracker" not in sanitize_html(html)
    assert 'src="https://tracker.example/p.gif"' in sanitize_html(html, remote_images=True)


def test_resolve_inline_images_escapes_the_url() -> None:
    cleaned = sanitize_html('<img src="cid:a@x">', {"a@x": SHA})
    resolved = resolve_inline_images(cleaned, lambda sha: f'/files/{sha}?a=1&b="x"')
    assert resolved == f'<img src="/files/{SHA}?a=1&amp;b=&quot;x&quot;">'
    assert resolve_inline_images(cleaned, lambda sha: None) == '<img src="">'


def test_placeholder_text_outside_attributes_cannot_inject() -> None:
    # a sender writing the placeholder as text gets it escaped-as-text, never an attribute break
    cleaned = sanitize_html(f"<p>{INLINE_IMAGE_SCHEME}{SHA}</p>")
    resolved = resolve_inline_images(cleaned, lambda sha: '"><script>x</script>')
    assert "<script>" not in resolved


def test_deeply_nested_markup_is_shown_as_escaped_text_quickly() -> None:
    html = "<div>" * 100_000 + "<script>alert(1)</script><b>Broken zip</b> & more"
    started = time.perf_counter()
    cleaned = sanitize_html(html)
    assert time.perf_counter() - started < 2.0  # nh3 alone takes most of a minute
    assert cleaned == "<pre>Broken zip &amp; more</pre>"


def test_many_flat_or_balanced_tags_are_not_too_deep() -> None:
    assert not too_deep("<p>x" * 50_000)
    assert not too_deep(("<div>" * 300 + "</div>" * 300) * 50)
    assert not too_deep("<br><img src=x>" * 5_000)
    assert too_deep("<div><span>" * 1_001)
    assert not too_deep("<div>" * 3_000, limit=5_000)
