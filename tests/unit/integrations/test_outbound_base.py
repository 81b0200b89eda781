"""The write-back interface shared by every helpdesk: ``classify``, Retry-After parsing, the client
registry, and the helpers in ``integrations.outbound`` (URLs, bodies, tag merging). No network
except loopback."""

from __future__ import annotations

import ast
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

import integrations
from integrations.base import (
    Connection,
    DeliveryResult,
    OutboundAction,
    RateLimit,
    classify,
    get_client,
    parse_retry_after,
    registered_client_kinds,
)
from integrations.outbound import (
    ActionRefused,
    base_url,
    merge_tags,
    same_origin,
    segment,
    tag_changes,
    text_to_html,
)

NOW = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)
KINDS = ["chatwoot", "freshdesk", "front", "gorgias", "helpscout", "intercom", "zammad", "zendesk"]


def response(status: int, body: str = "", headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = body.encode()
    answer.headers.update(headers or {})
    return answer


# --- classify ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered(status: int) -> None:
    result = classify(response(status, "{}"), latency_ms=12.5, requests_made=3, external_id="n1")
    assert result == DeliveryResult("delivered", status, 12.5, external_id="n1", requests_made=3)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_429_and_5xx_are_retried(status: int) -> None:
    result = classify(response(status, "busy", {"Retry-After": "2"}))
    assert (result.outcome, result.status_code, result.retry_after, result.error) == ("retry", status, 2.0, f"HTTP {status}: busy")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 422])
def test_other_4xx_are_permanent(status: int) -> None:
    result = classify(response(status, '{"error":"bad"}', {"Retry-After": "2"}))
    assert (result.outcome, result.retry_after) == ("permanent", None)
    assert result.error == f'HTTP {status}: {{"error":"bad"}}'


def test_unfollowed_redirect_is_permanent_and_says_where() -> None:
    result = classify(response(302, "", {"Location": "https://login.example/"}))
    assert result.outcome == "permanent" and "https://login.example/" in (result.error or "")


def test_error_is_an_excerpt() -> None:
    result = classify(response(400, "é" * 2000))
    assert result.error is not None and len(result.error) == 500


@pytest.mark.parametrize("exc", [
    requests.ConnectTimeout("connect timed out"), requests.ReadTimeout("read timed out"),
    requests.ConnectionError("refused"), requests.exceptions.ChunkedEncodingError("cut"),
    requests.exceptions.SSLError("handshake"),
])
def test_transport_failures_are_retried(exc: Exception) -> None:
    result = classify(exc, requests_made=2)
    assert (result.outcome, result.status_code, result.requests_made) == ("retry", None, 2)
    assert result.error and type(exc).__name__ in result.error


@pytest.mark.parametrize("exc", [requests.exceptions.InvalidURL("x"), requests.exceptions.MissingSchema("y"),
                                 ValueError("z")])
def test_malformed_requests_are_permanent(exc: Exception) -> None:
    assert classify(exc).outcome == "permanent"


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [
    ("2", 2.0), (" 120 ", 120.0), ("1.5", 1.5), ("0", 0.0), ("999999999", 86_400.0),
    (None, None), ("", None), ("soon", None), ("-3", None), ("nan", None), ("inf", None), ("1e3", None),
    ("\u0661\u0662", None),  # Arabic-Indic digits: float() would read them, the header grammar does not
])
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_http_date() -> None:
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=90), usegmt=True), NOW) == 90.0
    assert parse_retry_after("Mon, 02 Mar 2026 09:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("Mon, 02 Mar 2026 08:00:00 GMT", NOW) == 0.0  # already past


def test_x_ratelimit_retry_after_is_read_when_retry_after_is_absent() -> None:
    result = classify(response(429, "", {"X-RateLimit-Retry-After": "7"}))
    assert result.retry_after == 7.0
    both = classify(response(429, "", {"Retry-After": "3", "X-RateLimit-Retry-After": "7"}))
    assert both.retry_after == 3.0


@given(st.text(max_size=60))
def test_retry_after_never_raises(value: str) -> None:
    seconds = parse_retry_after(value, NOW)
    assert seconds is None or 0.0 <= seconds <= 86_400.0


# --- registry ---------------------------------------------------------------------------------


def test_every_helpdesk_has_a_client() -> None:
    assert registered_client_kinds() == KINDS
    for kind in KINDS:
        client = get_client(kind)
        assert client.kind == kind
        assert isinstance(client.rate_limit, RateLimit) and client.rate_limit.requests > 0
        assert client.rate_limit.per_seconds > 0


def test_generic_has_no_client() -> None:
    with pytest.raises(KeyError):
        get_client("generic")


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_kind_of_action_is_permanent_not_an_exception(kind: str) -> None:
    action = OutboundAction(kind="archive", ticket_id="42", idempotency_key="k")  # type: ignore[arg-type]
    creds = {"api_email": "a@b.c", "api_token": "t", "api_key": "k", "access_token": "t", "api_token_": "t",
             "admin_id": "1", "api_access_token": "t", "account_id": "1"}
    result = get_client(kind).deliver(action, Connection("http://127.0.0.1:9", creds), requests.Session())
    assert (result.outcome, result.requests_made) == ("permanent", 0)
    assert "internal error" in (result.error or "")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("url", ["ftp://acme.example", "https://user:pw@acme.example", "https://acme.example/?x=1",
                                 "acme.zendesk.com", "", "https://acme.example:99999"])
def test_bad_base_urls_are_refused_without_a_call(kind: str, url: str) -> None:
    action = OutboundAction(kind="note", ticket_id="42", idempotency_key="k", body_text="x")
    result = get_client(kind).deliver(action, Connection(url, {}), requests.Session())
    assert (result.outcome, result.requests_made, result.status_code) == ("permanent", 0, None)


# --- helpers ----------------------------------------------------------------------------------


def test_base_url_keeps_a_path_prefix() -> None:
    assert base_url(Connection("https://desk.example/zammad/", {})) == "https://desk.example/zammad"


@pytest.mark.parametrize(("a", "b", "same"), [
    ("https://a.example/x", "https://a.example:443/y", True),
    ("https://a.example/x", "http://a.example/x", False),
    ("https://a.example/x", "https://b.example/x", False),
    ("http://127.0.0.1:8000/x", "http://127.0.0.1:8001/x", False),
    ("https://A.example/x", "https://a.EXAMPLE/y", True),
])
def test_same_origin(a: str, b: str, same: bool) -> None:
    assert same_origin(a, b) is same


def test_segment_encodes_and_refuses() -> None:
    assert segment("cnv_1", "id") == "cnv_1"
    assert segment("a/b?c", "id") == "a%2Fb%3Fc"
    for bad in ("", "  ", "x" * 101, "a\nb"):
        with pytest.raises(ActionRefused):
            segment(bad, "id")


def test_tag_changes_and_merge() -> None:
    action = OutboundAction(kind="tags", ticket_id="1", idempotency_key="k",
                            add_tags=("rma", "RMA", " ", "both"), remove_tags=("Both", "old", "old"))
    assert tag_changes(action) == (["rma"], ["Both", "old"])
    assert merge_tags(["vip", "old", "rma"], ["rma", "new"], ["OLD"]) == ["vip", "rma", "new"]
    with pytest.raises(ActionRefused):
        tag_changes(OutboundAction(kind="tags", ticket_id="1", idempotency_key="k", add_tags=(" ",)))


def test_text_to_html() -> None:
    assert text_to_html("Hi <Maria>,\n\nLabel & slip\nattached.\n") == \
        "<p>Hi &lt;Maria&gt;,</p><p>Label &amp; slip<br>attached.</p>"


def test_outbound_modules_import_nothing_from_app() -> None:
    for path in Path(integrations.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        assert not [name for name in imported if name and (name == "app" or name.startswith("app."))], path.name
