"""``integrations.generic.send_event``: a signed Standard Webhooks POST to a merchant's endpoint,
and how each answer is classified."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import requests
from outbound_kit import httpserver, outbound_server  # noqa: F401  (fixtures)
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from werkzeug import Request, Response

from integrations.generic import EVENT_USER_AGENT, send_event, sign_event

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY = json.dumps({"type": "case.approved", "timestamp": "2026-11-25T10:00:00Z",
                   "data": {"number": "RMA-10001", "customer": {"name": "María López"}}}).encode()
MSG_ID = "msg_0123456789abcdef0123456789abcdef"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def _capture(server: HTTPServer, status: int = 200, headers: dict[str, str] | None = None,
             body: str = "") -> list[Request]:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(body, status=status, headers=headers or {})

    server.expect_request("/hooks").respond_with_handler(handler)
    return seen


def test_the_request_is_signed_the_standard_webhooks_way(httpserver: HTTPServer, session) -> None:
    """The receiver's own Standard Webhooks library accepts the body and headers as sent."""
    seen = _capture(httpserver, 204)
    result = send_event(httpserver.url_for("/hooks"), BODY, [SECRET], MSG_ID, session)
    assert result.outcome == "delivered" and result.status_code == 204 and result.latency_ms >= 0
    (request,) = seen
    assert request.method == "POST" and request.get_data() == BODY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == EVENT_USER_AGENT
    assert request.headers["webhook-id"] == MSG_ID
    assert Webhook(SECRET).verify(request.get_data(), dict(request.headers)) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD_SECRET).verify(request.get_data(), dict(request.headers))


def test_during_a_rotation_both_secrets_sign() -> None:
    """Two secrets give two space-separated v1 signatures; a receiver with either one accepts."""
    now = datetime.now(timezone.utc)
    headers = sign_event(BODY, [SECRET, OLD_SECRET], MSG_ID, now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, OLD_SECRET):
        Webhook(secret).verify(BODY, headers)


def test_a_tampered_body_or_a_stale_timestamp_fails_verification() -> None:
    headers = sign_event(BODY, [SECRET], MSG_ID, datetime.now(timezone.utc))
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY.replace(b"10001", b"10002"), headers)
    stale = sign_event(BODY, [SECRET], MSG_ID, datetime.now(timezone.utc) - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY, stale)


def test_a_naive_now_is_taken_as_utc() -> None:
    """Whatever the server's zone, the timestamp is Unix seconds of the UTC moment."""
    moment = datetime(2026, 11, 25, 10, 0, 0)
    headers = sign_event(BODY, [SECRET], MSG_ID, moment)
    assert headers["webhook-timestamp"] == str(int(moment.replace(tzinfo=timezone.utc).timestamp()))


@pytest.mark.parametrize(("status", "outcome"), [
    (200, "delivered"), (202, "delivered"),
    (408, "retry"), (429, "retry"), (500, "retry"), (502, "retry"), (503, "retry"),
    (400, "permanent"), (401, "permanent"), (404, "permanent"), (410, "permanent"), (422, "permanent"),
])
def test_answers_are_classified(httpserver: HTTPServer, session, status: int, outcome: str) -> None:
    _capture(httpserver, status, body="nope" if status >= 300 else "")
    result = send_event(httpserver.url_for("/hooks"), BODY, [SECRET], MSG_ID, session)
    assert (result.outcome, result.status_code) == (outcome, status)
    if outcome != "delivered":
        assert result.error and result.error.startswith(f"HTTP {status}")


@pytest.mark.parametrize("status", [408, 429, 503])
def test_retry_after_is_read(httpserver: HTTPServer, session, status: int) -> None:
    _capture(httpserver, status, {"Retry-After": "7"})
    result = send_event(httpserver.url_for("/hooks"), BODY, [SECRET], MSG_ID, session)
    assert result.outcome == "retry" and result.retry_after == 7.0


def test_a_redirect_is_not_followed(httpserver: HTTPServer, session) -> None:
    """The URL was checked against private ranges; where it redirects to was not."""
    _capture(httpserver, 302, {"Location": "http://169.254.169.254/latest/meta-data"})
    result = send_event(httpserver.url_for("/hooks"), BODY, [SECRET], MSG_ID, session)
    assert result.outcome == "permanent" and result.status_code == 302
    assert "not followed" in (result.error or "")


def test_a_timeout_is_retried(httpserver: HTTPServer, session) -> None:
    import time

    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return Response("", status=200)

    httpserver.expect_request("/hooks").respond_with_handler(slow)
    result = send_event(httpserver.url_for("/hooks"), BODY, [SECRET], MSG_ID, session, timeout=0.1)
    assert result.outcome == "retry" and result.status_code is None
    assert "Timeout" in (result.error or "")


def test_a_refused_connection_is_retried(session) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = send_event(f"http://127.0.0.1:{port}/hooks", BODY, [SECRET], MSG_ID, session, timeout=2)
    assert result.outcome == "retry" and result.status_code is None


@pytest.mark.parametrize("secrets", [[], ["not base64 at all!"], ["whsec_"], [""]])
def test_a_bad_secret_is_permanent_and_sends_nothing(httpserver: HTTPServer, session, secrets) -> None:
    seen = _capture(httpserver)
    result = send_event(httpserver.url_for("/hooks"), BODY, secrets, MSG_ID, session)
    assert result.outcome == "permanent" and result.requests_made == 0 and seen == []


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/x", "http://[::1/x"])
def test_a_malformed_url_is_permanent_not_raised(session, url: str) -> None:
    result = send_event(url, BODY, [SECRET], MSG_ID, session)
    assert result.outcome == "permanent"
