"""Unit tests for canned responses (app.outbound.canned). No app, no DB."""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.errors import NotFound, ValidationFailed
from app.outbound import canned
from app.outbound.canned import (
    LINE_FIELDS,
    LOCALES,
    TEMPLATE_KEYS,
    VARIABLES,
    CannedTemplateError,
    TemplateSource,
    build_context,
    context_from_case,
    format_date,
    format_money,
    render,
    resolve_template,
    sample_context,
    shipped_template,
    validate_source,
)

NBSP, NNBSP = "\u00a0", "\u202f"

# How each shipped language greets Ana Silva and signs off.
GREETING = {"en": "Hi Ana,", "de": "Guten Tag Ana Silva,", "fr": "Bonjour Ana Silva,", "es": "Hola, Ana Silva:"}
GREETING_NO_NAME = {"en": "Hi there,", "de": "Guten Tag,", "fr": "Bonjour,", "es": "Hola:"}
SIGN_OFF = {"en": "Best regards,", "de": "Freundliche Grüße", "fr": "Cordialement,", "es": "Un cordial saludo,"}
SIGNATURE = {"en": "The Northwind Outdoor team", "de": "Ihr Team von Northwind Outdoor",
             "fr": "L'équipe Northwind Outdoor", "es": "El equipo de Northwind Outdoor"}
ENGLISH_PHRASES = ("reply to this email", "Best regards", "your return", "We've", "Thank you")


def with_template(body: str, subject: str = "[{{ case_number }}] Test", *, key: str = "approved",
                  locale: str = "en", context: dict[str, Any] | None = None) -> canned.Rendered:
    """Render a tenant override of ``key`` for ``locale``."""
    return render(key, locale, context if context is not None else sample_context(key),
                  overrides={(key, locale): TemplateSource(subject, body)})


def template_error(body: str, subject: str = "s", **kwargs: Any) -> CannedTemplateError:
    with pytest.raises(CannedTemplateError) as info:
        with_template(body, subject, **kwargs)
    return info.value


# --- the shipped defaults ----------------------------------------------------------------------


def test_every_key_and_locale_is_shipped_and_nothing_else() -> None:
    root = canned.TEMPLATES_DIR
    found = {(path.parent.name, path.stem) for path in root.glob("*/*.txt")}
    assert found == {(locale, key) for locale in LOCALES for key in TEMPLATE_KEYS}
    assert sorted(p.name for p in root.iterdir()) == sorted(LOCALES)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("key", TEMPLATE_KEYS)
def test_shipped_template_renders_with_the_sample(key: str, locale: str) -> None:
    result = render(key, locale, sample_context(key, locale=locale))

    assert (result.key, result.locale_used, result.origin) == (key, locale, "shipped")
    assert result.subject.startswith("[RMA-10042] ")
    assert "\n" not in result.subject and len(result.subject) < 100
    assert "RMA-10042" in result.text
    assert result.text.startswith(GREETING[locale] + "\n\n")
    assert SIGN_OFF[locale] in result.text
    assert result.text.rstrip().endswith("Sam\n" + SIGNATURE[locale])
    # Nothing left unrendered, no Python values leaking into a customer's mail, tidy spacing.
    for leftover in ("{{", "}}", "{%", "%}", "None", "Decimal(", "[]", "{'"):
        assert leftover not in result.text, leftover
    assert "\n\n\n" not in result.text and not re.search(r"[ \t]\n", result.text)
    assert result.html.startswith("<p>") and "RMA-10042" in result.html
    if locale != "en":
        for phrase in ENGLISH_PHRASES:
            assert phrase not in result.text, f"English {phrase!r} in the {locale} {key} template"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("key", TEMPLATE_KEYS)
def test_shipped_template_renders_without_the_optional_parts(key: str, locale: str) -> None:
    result = render(key, locale, sample_context(key, locale=locale, sparse=True))

    assert result.text.startswith(GREETING_NO_NAME[locale] + "\n\n")
    assert result.text.rstrip().endswith(SIGN_OFF[locale] + "\n" + SIGNATURE[locale])
    assert "None" not in result.text and "\n\n\n" not in result.text
    assert "https://" not in result.text  # no label link, nothing made up


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("key", TEMPLATE_KEYS)
def test_shipped_template_passes_the_tenant_checks(key: str, locale: str) -> None:
    source = shipped_template(key, locale)
    assert source is not None and "{{ case_number }}" in source.subject
    validate_source(source.subject, source.body, key=key, locale=locale)


@pytest.mark.parametrize(("locale", "refund", "line"), [
    ("en", "€205.80", "This is the value of the returned items, €219.80, less a restocking fee of €14.00."),
    ("de", f"205,80{NBSP}€", f"Das ist der Warenwert von 219,80{NBSP}€ abzüglich einer Wiedereinlagerungsgebühr "
                             f"von 14,00{NBSP}€."),
    ("fr", f"205,80{NBSP}€", f"Il s'agit de la valeur des articles retournés, 219,80{NBSP}€, moins des frais de "
                             f"remise en stock de 14,00{NBSP}€."),
    ("es", f"205,80{NBSP}€", f"Corresponde al valor de los artículos devueltos, 219,80{NBSP}€, menos una tarifa de "
                             f"reposición de 14,00{NBSP}€."),
])
def test_refund_amounts_are_formatted_for_the_language(locale: str, refund: str, line: str) -> None:
    result = render("refund_issued", locale, sample_context("refund_issued", locale=locale))
    assert refund in result.subject
    assert line in result.text


def test_fees_and_bonus_only_appear_when_there_are_some() -> None:
    context = sample_context("refund_issued")
    context.update(fees=Decimal("0.00"), gross=Decimal("205.80"))
    assert "restocking" not in render("refund_issued", "en", context).text
    context = sample_context("store_credit_issued")
    assert "bonus of €21.98" in render("store_credit_issued", "en", context).text
    context.update(bonus=Decimal("0"))
    assert "bonus" not in render("store_credit_issued", "en", context).text


@pytest.mark.parametrize(("locale", "written"), [
    ("en", "Friday, March 20, 2026"), ("de", "Freitag, 20. März 2026"),
    ("fr", "vendredi 20 mars 2026"), ("es", "viernes, 20 de marzo de 2026"),
])
def test_deadlines_are_written_out_in_the_language(locale: str, written: str) -> None:
    assert written in render("label_issued", locale, sample_context("label_issued")).text


def test_approval_lists_declined_lines_separately() -> None:
    context = sample_context("approved")
    context["lines"][1]["qty_authorized"] = 0
    text = render("approved", "en", context).text
    sent_back, declined = text.split("can't accept these")
    assert "Ridge hiking boots" in sent_back and "Merino" not in sent_back
    assert "2 × Merino trail socks" in declined.split("How to send")[0]


def test_label_steps_use_tenant_instructions_and_address() -> None:
    context = sample_context("approved", sparse=True)
    context.update(return_instructions="Drop it at our shop in Leipzig.",
                   return_address="Northwind Returns\nLagerstraße 12\n04109 Leipzig")
    text = render("approved", "en", context).text
    assert "2. Drop it at our shop in Leipzig." in text
    assert "Pack the items" not in text
    assert "Return address:\nNorthwind Returns\nLagerstraße 12\n04109 Leipzig" in text


@pytest.mark.parametrize(("reason", "phrase"), [
    ("no_reply", "We hadn't heard back from you"),
    ("not_shipped", "wasn't sent by March 20, 2026"),
    (None, "the next step wasn't completed in time"),
])
def test_expiry_says_why(reason: str | None, phrase: str) -> None:
    context = sample_context("expired")
    context["expiry_reason"] = reason
    assert phrase in render("expired", "en", context).text


# --- lookup and fallback -------------------------------------------------------------------------


def override(subject: str) -> TemplateSource:
    return TemplateSource(f"[{{{{ case_number }}}}] {subject}", "Body of {{ case_number }}")


def test_tenant_override_for_the_locale_comes_first() -> None:
    result = render("approved", "de", sample_context(), overrides={("approved", "de"): override("tenant de")})
    assert (result.origin, result.locale_used, result.subject) == ("tenant", "de", "[RMA-10042] tenant de")


def test_shipped_locale_beats_a_tenant_override_in_another_language() -> None:
    result = render("approved", "de", sample_context(), default_locale="en",
                    overrides={("approved", "en"): override("tenant en")})
    assert (result.origin, result.locale_used) == ("shipped", "de")


def test_unknown_locale_falls_back_to_the_tenant_default_then_english() -> None:
    context = sample_context()
    assert render("approved", "pt", context, default_locale="fr").locale_used == "fr"
    tenant_de = render("approved", "pt", context, default_locale="de",
                       overrides={("approved", "de"): override("tenant de")})
    assert (tenant_de.origin, tenant_de.locale_used) == ("tenant", "de")
    assert render("approved", "pt", context, default_locale="it").locale_used == "en"
    assert render("approved", "pt", context).locale_used == "en"


def test_tenant_templates_exist_for_languages_rebound_does_not_ship() -> None:
    result = render("approved", "pt-BR", sample_context(),
                    overrides={("approved", "pt"): TemplateSource("Devolução aprovada", "Valor: {{ amount|money }}")})
    assert (result.origin, result.locale_used) == ("tenant", "pt")
    assert result.text == f"Valor: 205,80{NBSP}€\n"


@pytest.mark.parametrize(("asked", "used"), [
    ("de-AT", "de"), ("de_CH", "de"), ("FR", "fr"), ("es-419", "es"), ("", "en"), (None, "en"),
    ("../../etc/passwd", "en"), ("de\n", "de"), ("x" * 200, "en"),
])
def test_locales_are_normalised_and_garbage_falls_back(asked: str | None, used: str) -> None:
    assert render("closed", asked, sample_context("closed")).locale_used == used


def test_override_keys_are_normalised_too() -> None:
    result = render("closed", "de-de", sample_context(), overrides={("closed", "DE_de"): override("regional")})
    assert result.origin == "tenant"
    assert render("closed", "de", sample_context(), overrides={("closed", "de-DE"): override("x")}).origin == "shipped"


def test_unknown_key_is_not_found() -> None:
    with pytest.raises(NotFound):
        render("nonexistent", "en", sample_context())
    with pytest.raises(NotFound):
        resolve_template("../en/approved", "en")
    assert shipped_template("approved", "../en") is None


def test_resolve_template_reports_what_render_would_use() -> None:
    source, locale, origin = resolve_template("rejected", "fr-CA", default_locale="de")
    assert (locale, origin) == ("fr", "shipped")
    assert source == shipped_template("rejected", "fr")


# --- money and dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "currency", "locale", "expected"), [
    (Decimal("49.9"), "EUR", "en", "€49.90"),
    (Decimal("49.9"), "EUR", "de", f"49,90{NBSP}€"),
    (Decimal("49.9"), "EUR", "fr", f"49,90{NBSP}€"),
    (Decimal("49.9"), "EUR", "es", f"49,90{NBSP}€"),
    (Decimal("1234.5"), "EUR", "de", f"1.234,50{NBSP}€"),
    (Decimal("1234.5"), "EUR", "fr", f"1{NNBSP}234,50{NBSP}€"),
    (Decimal("1234.5"), "EUR", "es", f"1234,50{NBSP}€"),  # Spanish groups from five digits
    (Decimal("12345"), "EUR", "es", f"12.345,00{NBSP}€"),
    (Decimal("1234567.891"), "USD", "en", "$1,234,567.89"),
    (Decimal("1234567.891"), "usd", "en-GB", "$1,234,567.89"),
    (Decimal("0.005"), "EUR", "en", "€0.01"),  # half up
    (Decimal("1500"), "JPY", "en", "¥1,500"),
    (Decimal("1500.5"), "JPY", "de", f"1.501{NBSP}¥"),
    (Decimal("49.9"), "CHF", "en", f"CHF{NBSP}49.90"),
    (Decimal("49.9"), "CHF", "de", f"49,90{NBSP}CHF"),
    (Decimal("2.5"), "KWD", "en", f"KWD{NBSP}2.500"),
    (Decimal("-3"), "GBP", "en", "-£3.00"),
    (Decimal("-0.001"), "GBP", "en", "£0.00"),
    ("12.50", "EUR", "nl", f"€{NBSP}12,50"),
    (7, "EUR", "xx", "€7.00"),
])
def test_format_money(amount: Any, currency: str, locale: str, expected: str) -> None:
    assert format_money(amount, currency, locale) == expected


@pytest.mark.parametrize("bad", [None, "abc", "NaN", "Infinity", True])
def test_format_money_refuses_non_amounts(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        format_money(bad, "EUR")


@pytest.mark.parametrize(("value", "locale", "weekday", "expected"), [
    (date(2026, 3, 1), "en", False, "March 1, 2026"),
    (date(2026, 3, 1), "de", False, "1. März 2026"),
    (date(2026, 3, 1), "fr", False, "1er mars 2026"),
    (date(2026, 3, 1), "es", False, "1 de marzo de 2026"),
    (date(2026, 3, 2), "fr", True, "lundi 2 mars 2026"),
    (datetime(2026, 12, 24, 23, 0, tzinfo=timezone.utc), "de", True, "Donnerstag, 24. Dezember 2026"),
    ("2026-08-15", "es", True, "sábado, 15 de agosto de 2026"),
    ("2026-08-15T10:00:00Z", "xx", False, "August 15, 2026"),
])
def test_format_date(value: Any, locale: str, weekday: bool, expected: str) -> None:
    assert format_date(value, locale, weekday=weekday) == expected


def test_money_filter_takes_the_case_currency_or_an_explicit_one() -> None:
    context = sample_context("refund_issued")
    assert with_template("{{ amount|money }} {{ 5|money('USD') }} [{{ none|money }}]", context=context,
                         locale="de").text == f"205,80{NBSP}€ 5,00{NBSP}$ []\n"
    context["currency"] = None
    error = template_error("{{ amount|money }}", context=context)
    assert "money needs a currency" in error.message


def test_filters_format_for_the_template_language_not_the_customers() -> None:
    # A Portuguese customer gets the German default template: German formats throughout.
    result = render("refund_issued", "pt", sample_context("refund_issued"), default_locale="de")
    assert f"205,80{NBSP}€" in result.text


# --- the sandbox -------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__()[59].__init__.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lines.__class__.__mro__ }}",
    "{{ lines[0].get.__self__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ config.items() }}",
    "{{ config.__class__.__init__.__globals__['os'] }}",
    "{{ request.application.__globals__.__builtins__.__import__('os') }}",
    "{{ url_for.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ ''|attr('__class__') }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ '%s'.format_map }}",
    "{{ '%999999999d' % 1 }}",
    "{{ lines.append(1) }}",
    "{{ lines[0].update(sku='x') }}",
    "{{ (1).to_bytes(8, 'big') }}",
    "{{ self }}",
    "{{ range }}",
    "{{ cycler }}",
    "{{ 'x' ~ joiner }}",
    "{{ [namespace]|join }}",
    "{{ lines|map(attribute='sku') }}",
    "{% include 'approved.txt' %}",
    "{% import 'x' as y %}",
    "{% from 'x' import y %}",
    "{% extends 'base.html' %}",
]


@pytest.mark.parametrize("payload", ESCAPES)
def test_sandbox_escapes_fail_with_a_clear_error_and_leak_nothing(payload: str) -> None:
    error = template_error("Hello\n" + payload)
    assert error.status == 422 and error.code == "template_error"
    assert error.details["part"] == "body" and error.details["line"] == 2
    assert error.message.startswith("Error in the body on line 2: ")
    for leak in ("0x", "<class", "<function", "<built-in", "<module", "Traceback", ".py", "/work", "uid=", "jinja2."):
        assert leak not in error.message, leak


@pytest.mark.parametrize("payload", ["{{ ''.__class__ }}", "{{ cycler.__init__.__globals__ }}"])
def test_sandbox_errors_say_what_was_refused(payload: str) -> None:
    error = template_error(payload)
    assert error.details["kind"] == "security"
    assert re.search(r"not allowed: access to attribute '__\w+__' of '\w+' object is unsafe", error.message)


LIMITS = [
    ("{{ range(10**6)|list|length }}", "range() is limited to 1000 items"),
    ("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "loop iterations"),
    ("{% for a in 'x' * 9999 %}{% for b in 'x' * 9999 %}{% endfor %}{% endfor %}", "loop iterations"),
    ("{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}", "nests too deeply"),
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}", "calls"),
    ("{% for x in lines recursive %}{{ loop(lines) }}{% endfor %}", "nests too deeply"),
    ("{{ 'x' * 10**7 }}", "'*' would produce"),
    ("{{ [1] * 10**7 }}", "'*' would produce"),
    ("{{ 9 ** (9 ** 9) }}", "'**' would produce a number that is too large"),
    ("{{ (2 ** 9000) * (2 ** 9000) }}", "too large"),
    ("{% set ns = namespace(s='x' * 1000) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     "'~' would produce"),
    ("{% set ns = namespace(s='x' * 1000) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
     "larger than the limit"),
    ("{% macro d(a, n) %}{% if n %}{{ d([a, a], n - 1) }}{% endif %}{% endmacro %}{{ d(1, 60) }}",
     "larger than the limit"),
    ("{{ 'ab'|replace('', 'x' * 150000) }}", "replace() would produce"),
    ("{{ 'bbbbbbbbbb'.replace('b', 'x' * 50000) }}", "replace() would produce"),
    ("{{ 'a'|indent(10 ** 8) }}", "indent() is limited"),
    ("{{ lines|batch(10 ** 8, 'x')|list }}", "batch() is limited"),
    ("{{ ('\\n' * 99999)|indent(100) }}", "indent() would produce"),
    ("{{ (('x' * 99999)|batch(1)|sum(start=[]))|length }}", "sum() adds numbers only"),
    ("{% for i in range(1000) %}{{ 'y' * 200 }}{% endfor %}", "the rendered body is longer than 100000"),
    ("{% macro m() %}{% for i in range(1000) %}" + "y" * 2000 + "{% endfor %}{% endmacro %}{{ m()|length }}",
     "writes more than 1000000 characters"),
]


@pytest.mark.parametrize(("payload", "says"), LIMITS)
def test_resource_abuse_is_stopped_quickly(payload: str, says: str) -> None:
    started = time.perf_counter()
    error = template_error(payload)
    assert time.perf_counter() - started < canned.TIME_LIMIT_SECONDS + 1
    assert error.details["kind"] == "limit", error.message
    assert says in error.message


def test_limits_leave_room_for_big_but_bounded_values() -> None:
    assert with_template("{{ 'ab'.replace('b', 'x' * 150000)|length }} {{ ('y' * 199999)|length }}").text == \
        "150001 199999\n"


def test_a_render_that_runs_too_long_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(canned, "TIME_LIMIT_SECONDS", 0.0)
    error = template_error("{% for i in range(500) %}{{ i }}{% endfor %}")
    assert "took longer than" in error.message and error.details["kind"] == "limit"


def test_harmless_jinja_still_works() -> None:
    body = """{% set ns = namespace(total=0) %}
{% for line in lines if line.qty_accepted %}
{% set ns.total = ns.total + line.qty_accepted %}
{{ loop.index }}. {{ line.title|upper|truncate(12) }} {{ loop.cycle('odd', 'even') }}
{% endfor %}
{{ ns.total }} {{ lines|map(attribute='sku')|join(', ') }} {{ lines|sum(attribute='qty_requested') }}
{{ (lines|selectattr('qty_accepted', 'lt', 2)|list)|length }} {{ 'a,b'.split(',')|last }} {{ {'x': 1}.get('x') }}
{% macro badge(text) %}[{{ text }}{{ caller() if caller is defined else '' }}]{% endmacro %}
{{ badge('A') }}{% call badge('B') %}!{% endcall %} {{ range(3)|join('') }} {{ ship_by.year }} {{ -amount }}
{% filter title %}{{ customer_name|lower }}{% endfilter %} {{ 7 // 2 }} {{ 2 ** 10 }} {{ 'ab' * 2 }} {{ 'x' ~ 1 }}"""
    assert with_template(body).text == (
        "1. RIDGE... odd\n2. MERINO... even\n"
        "2 BOOT-42, SOCK-3P 3\n"
        "2 b 1\n"
        "[A][B!] 012 2026 -205.80\n"
        "Ana Silva 3 1024 abab x1\n"
    )


def test_none_prints_as_nothing() -> None:
    context = sample_context(sparse=True)
    assert with_template("[{{ label_url }}][{{ none }}][{{ 'a' ~ none ~ 'b' }}]", context=context).text == "[][][ab]\n"


# --- errors that name the problem --------------------------------------------------------------


def test_undefined_variable_names_it_and_its_line() -> None:
    error = template_error("Hello {{ customer_name }},\n\nYour order {{ custmer_name }} is …")
    assert error.details == {"part": "body", "line": 3, "kind": "undefined", "key": "approved", "locale": "en",
                             "fields": {"body": [error.message]}}
    assert error.message == "Error in the body on line 3: 'custmer_name' is undefined."


def test_undefined_in_the_subject_and_in_a_line_item() -> None:
    error = template_error("fine", subject="[{{ case_number }}] {{ merchant }}")
    assert (error.details["part"], error.details["line"]) == ("subject", 1)
    assert "'merchant' is undefined" in error.message
    error = template_error("Items:\n{% for line in lines %}\n- {{ line.titel }}\n{% endfor %}")
    assert error.details["line"] == 3 and "titel" in error.message


def test_syntax_error_names_its_line() -> None:
    error = template_error("one\ntwo\n{% if label_url %}\nthree")
    assert (error.details["kind"], error.details["line"]) == ("syntax", 4)
    assert "endif" in error.message
    error = template_error("{{ amount|moneyy }}")
    assert "No filter named 'moneyy'" in error.message


def test_the_error_is_a_422_in_the_api_error_shape() -> None:
    error = template_error("{{ nope }}")
    assert isinstance(error, ValidationFailed)
    body = error.to_dict()["error"]
    assert body["code"] == "template_error" and body["details"]["fields"] == {"body": [error.message]}


def test_context_must_be_plain_data() -> None:
    class Row:  # stands in for an ORM object
        title = "secret"

    with pytest.raises(TypeError, match="'lines' holds a Row object"):
        render("approved", "en", {**sample_context(), "lines": [Row()]})


# --- HTML and subject --------------------------------------------------------------------------

HOSTILE = '<script>alert(1)</script>'


def test_html_escapes_what_customers_typed_and_text_keeps_it() -> None:
    context = sample_context("rejected")
    context.update(customer_first_name=HOSTILE, customer_name=HOSTILE)
    context["lines"][0]["title"] = '<img src=x onerror="alert(1)"> & more'
    result = render("rejected", "en", context)

    assert f"Hi {HOSTILE}," in result.text and '<img src=x onerror="alert(1)"> & more' in result.text
    assert "<script" not in result.html and "<img" not in result.html and "onerror=\"" not in result.html
    assert "Hi &lt;script&gt;alert(1)&lt;/script&gt;," in result.html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; more" in result.html


def test_html_escapes_markup_in_the_template_itself() -> None:
    result = with_template("<b>Bold</b> claim\n\n- one\n- two\n  continued\n\nSee https://example.com/a?b=1&c=2.")
    assert result.html == (
        "<p>&lt;b&gt;Bold&lt;/b&gt; claim</p>\n"
        "<ul>\n<li>one</li>\n<li>two<br>\ncontinued</li>\n</ul>\n"
        '<p>See <a href="https://example.com/a?b=1&amp;c=2">https://example.com/a?b=1&amp;c=2</a>.</p>'
    )


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<script>x</script>",
                                 'https://x.example/"onmouseover="alert(1)'])
def test_only_http_links_are_made_and_quotes_cannot_break_out(url: str) -> None:
    context = sample_context("label_issued")
    context["label_url"] = url
    html = render("label_issued", "en", context).html
    assert "javascript:" not in html.split("href=")[-1] if "href=" in html else True
    assert 'href="javascript' not in html and 'href="data' not in html
    assert '"onmouseover' not in html and "<script" not in html


def test_subject_is_one_line_tagged_and_bounded() -> None:
    context = sample_context()
    context["customer_name"] = "Ana\r\nBcc: victim@example.com\x00\u2028"
    result = with_template("x", subject="Hello {{ customer_name }}", context=context)
    assert result.subject == "[RMA-10042] Hello Ana Bcc: victim@example.com"
    context["customer_name"] = "A" * 1000
    long = with_template("x", subject="[{{ case_number }}] {{ customer_name }}", context=context).subject
    assert len(long) == canned.MAX_SUBJECT_CHARS and long.endswith("…") and long.startswith("[RMA-10042] AAA")


def test_signature_is_the_tenants_or_a_localized_default() -> None:
    context = sample_context()
    assert with_template("{{ signature }}", locale="fr", context=context).text == "L'équipe Northwind Outdoor\n"
    context["merchant_name"] = ""
    assert with_template("{{ signature }}", locale="de", context=context).text == "Ihr Kundenservice\n"
    tenant = build_context(case_number="RMA-1", merchant_name="Shop", settings={"signature": "Ana & the Shop crew"})
    assert with_template("{{ signature }}", context=tenant).text == "Ana & the Shop crew\n"


# --- validate_source ---------------------------------------------------------------------------

GOOD_BODY = """Hi {{ customer_first_name or "there" }},

{% for line in lines %}
- {{ line.qty_requested }} × {{ line.title }}
{% endfor %}
{% if label_url %}
Label: {{ label_url }}
{% endif %}
Refund: {{ amount|money }} by {{ ship_by|date if ship_by else "soon" }}
"""


def test_validate_source_accepts_a_good_template() -> None:
    validate_source("[{{ case_number }}] Your return", GOOD_BODY, key="refund_issued", locale="de")


@pytest.mark.parametrize(("subject", "body", "part", "line", "says"), [
    ("ok", "one\n{% for x in lines %}\nthree", "body", 3, "endfor"),
    ("ok", "one\ntwo\n{% if label_url %}{{ custmer_name }}{% endif %}", "body", 3, "'custmer_name' is undefined"),
    ("{{ case_numbr }}", "ok", "subject", 1, "'case_numbr' is undefined"),
    ("ok {{", "ok", "subject", 1, "unexpected 'end of template'"),
    ("ok", "a\n{% include 'x' %}", "body", 2, "{% include %} is not available"),
    ("ok", "{{ customer_name.upper() }}", "body", 1, "has no attribute 'upper'"),  # breaks for nameless customers
    ("ok", "{{ ''.__class__ }}", "body", 1, "unsafe"),
    ("ok", "x\n\n{{ amount|mony }}", "body", 3, "No filter named 'mony'"),
])
def test_validate_source_rejects_broken_templates_with_the_line(subject: str, body: str, part: str,
                                                                 line: int, says: str) -> None:
    with pytest.raises(CannedTemplateError) as info:
        validate_source(subject, body)
    assert (info.value.details["part"], info.value.details["line"]) == (part, line), info.value.message
    assert says in info.value.message


@pytest.mark.parametrize(("subject", "body", "says"), [
    ("", "body", "The subject is empty."),
    ("ok", "   \n", "The body is empty."),
    ("line one\nBcc: x", "body", "The subject must be a single line."),
    ("ok", "x" * (canned.MAX_SOURCE_BYTES + 1), "longer than 20480 bytes"),
    ("ok", "ä" * (canned.MAX_SOURCE_BYTES // 2 + 1), "longer than 20480 bytes"),  # bytes, not characters
    ("x" * 1001, "ok", "longer than 1000 characters"),
    ("ok", "a\x00b", "NUL"),
])
def test_validate_source_refuses_sizes_and_shapes(subject: str, body: str, says: str) -> None:
    with pytest.raises(CannedTemplateError) as info:
        validate_source(subject, body)
    assert says in info.value.message and info.value.details["line"] is None


def test_oversized_stored_templates_are_refused_at_render_too() -> None:
    error = template_error("x" * (canned.MAX_SOURCE_BYTES + 1))
    assert error.details["kind"] == "limit"


# --- the variables -----------------------------------------------------------------------------


def test_variables_are_documented_exactly() -> None:
    context = build_context(case_number="RMA-1")
    assert set(context) == set(VARIABLES)
    assert set(sample_context()["lines"][0]) == set(LINE_FIELDS)
    assert all(description.strip() for description in (*VARIABLES.values(), *LINE_FIELDS.values()))


def test_build_context_turns_plain_values_into_safe_variables() -> None:
    context = build_context(
        case_number="RMA-7", status="resolved", customer_name="  Ana  Maria Silva ", merchant_name="Shop",
        requested_on="2026-03-02T09:30:00+00:00",
        lines=[{"sku": "S1", "title": None, "qty_requested": 2, "extra": "ignored"}],
        settlement={"kind": "refund", "currency": "eur", "gross": "10.00", "fees": "1.5", "bonus": "0",
                    "amount": Decimal("8.50"), "customer_owes": "0.00", "external_ref": "re_1"},
        shipment={"carrier": "DHL", "tracking_number": "T1", "label_url": "https://l.example/1",
                  "label_issued_at": datetime(2026, 3, 5, 12, tzinfo=timezone.utc)},
        policy_decision={"summary": "Needs review.", "what_would_change": ["A photo would help."],
                         "results": [{"rule": "photo", "passed": False, "why": "No photo attached."},
                                     {"rule": "window", "passed": True, "why": "Within 30 days."}]},
        settings={"ship_within_days": 14, "return_address": " Dock 4 ", "unknown": "ignored"},
    )
    assert context["customer_first_name"] == "Ana" and context["customer_name"] == "Ana  Maria Silva"
    assert context["requested_on"] == date(2026, 3, 2) and context["ship_by"] == date(2026, 3, 19)
    assert context["lines"] == [{"sku": "S1", "title": "S1", "order_number": None, "qty_requested": 2,
                                 "qty_authorized": 0, "qty_received": 0, "qty_accepted": 0, "reason_code": None,
                                 "condition_grade": None, "disposition": None, "decision_status": "pending"}]
    assert (context["currency"], context["fees"], context["amount"]) == ("EUR", Decimal("1.5"), Decimal("8.50"))
    assert context["decision_reasons"] == ["No photo attached."]
    assert context["what_would_change"] == ["A photo would help."]
    assert context["return_address"] == "Dock 4" and context["item_count"] == 2
    assert context["signature"] is None and context["locale"] is None  # render fills both in


@pytest.mark.parametrize("bad", [{"lines": [{"sku": "x", "qty_requested": 1.5}]},
                                 {"requested_on": "last tuesday"},
                                 {"settlement": {"amount": "lots"}}])
def test_build_context_refuses_values_of_the_wrong_kind(bad: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        build_context(case_number="RMA-1", **bad)


def test_context_from_case_reads_the_api_case_shape() -> None:
    case = {
        "number": "RMA-10006", "status": "resolved", "customer_email": "ana@example.com", "customer_name": "Ana",
        "currency": "EUR", "locale": "de", "preferred_resolution": "store_credit",
        "created_at": datetime(2026, 3, 1, tzinfo=timezone.utc),
        "shipment": {"carrier": "DHL", "tracking_number": "JD1", "label_url": None, "label_issued_at": None},
        "policy_decision": None,
        "lines": [{"id": 1, "sku": "BOOT-42", "title": "Boots", "order_number": "2001", "unit_price": Decimal("139.90"),
                   "qty_requested": 1, "qty_authorized": 1, "qty_received": 1, "qty_accepted": 1,
                   "reason_code": "too_small", "customer_comment": None, "reception_status": "received",
                   "decision_status": "accepted", "decision_results": [], "fee_percent": Decimal("0"),
                   "condition_grade": "A", "disposition": "restock", "resolution_preference": None,
                   "fault_party": "customer"}],
        "settlements": [
            {"kind": "refund", "currency": "EUR", "amount": Decimal("1.00"), "gross": Decimal("1.00"),
             "fees": Decimal("0"), "bonus": Decimal("0"), "customer_owes": Decimal("0"), "external_ref": None},
            {"kind": "store_credit", "currency": "EUR", "amount": Decimal("146.90"), "gross": Decimal("139.90"),
             "fees": Decimal("0"), "bonus": Decimal("7.00"), "customer_owes": Decimal("0"), "external_ref": "GC-1"},
        ],
    }
    context = context_from_case(case, merchant_name="Northwind", agent_name="Sam")
    assert (context["case_number"], context["settlement_kind"], context["amount"]) == \
        ("RMA-10006", "store_credit", Decimal("146.90"))
    text = render("store_credit_issued", "de", context).text
    assert f"Guthaben: 146,90{NBSP}€" in text and "Bonus von 7,00" in text and "GC-1" in text


# --- file format and speed ---------------------------------------------------------------------


def test_file_format_round_trips() -> None:
    text = "Subject: [{{ case_number }}] Hello\n\nLine one\n\nLine two\n"
    source = TemplateSource.from_text(text)
    assert source == TemplateSource("[{{ case_number }}] Hello", "Line one\n\nLine two")
    assert source.to_text() == text
    assert TemplateSource.from_text(text.replace("\n", "\r\n")) == source


@pytest.mark.parametrize("bad", ["Hello\n\nbody", "Subject: x\nbody right away"])
def test_file_format_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        TemplateSource.from_text(bad)


def test_shipped_files_are_utf8_text_with_a_subject_line() -> None:
    for path in Path(canned.TEMPLATES_DIR).glob("*/*.txt"):
        raw = path.read_bytes()
        assert raw.decode("utf-8").startswith("Subject: [{{ case_number }}] "), path
        assert b"\r" not in raw and b"\t" not in raw and raw.endswith(b"\n"), path


def test_compiled_templates_are_cached_by_source() -> None:
    context = sample_context("approved")
    render("approved", "en", context)
    before = canned._compile.cache_info()
    for _ in range(200):
        render("approved", "en", context)
    after = canned._compile.cache_info()
    assert after.misses == before.misses and after.hits >= before.hits + 400  # subject and body each time
    # An edited template is a new source and compiles once.
    with_template(f"Edited {{{{ case_number }}}} {time.time_ns()}", subject=f"Edited {time.time_ns()}")
    assert canned._compile.cache_info().misses == after.misses + 2
