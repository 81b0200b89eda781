"""Shared pieces of the write-back tests: a fake helpdesk on loopback (pytest-httpserver), the
requests it received, and the error contract every client must keep.

Imported by the ``test_<kind>_outbound.py`` files (pytest puts this folder on ``sys.path``).
They import the ``httpserver`` and ``outbound_server`` fixtures from here: a fake on 127.0.0.1
of their own, so a slow answer another module's test left behind on pytest-httpserver's shared
server cannot land in their request logs.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from integrations.base import (
    IDEMPOTENCY_HEADER,
    TRACE_IDEMPOTENCY_HEADER,
    Connection,
    DeliveryResult,
    OutboundAction,
)

KEY = "rebound:case-7:note-3"


@pytest.fixture(scope="module")
def outbound_server() -> Iterator[HTTPServer]:
    """A fake helpdesk of our own on 127.0.0.1 for one test module (not pytest-httpserver's
    session-wide one, which other modules' slow handlers can write late entries into)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


@pytest.fixture
def httpserver(outbound_server: HTTPServer) -> Iterator[HTTPServer]:
    """The module's fake, with no handler and an empty log for each test."""
    outbound_server.clear()
    yield outbound_server
    outbound_server.clear()


@dataclass(frozen=True)
class Sent:
    """One request the fake helpdesk received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # keys lower-cased
    body: Any  # parsed JSON, or None for an empty body
    raw: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def sent(httpserver: HTTPServer) -> list[Sent]:
    """Every request the fake received, in order."""
    out = []
    for request, _response in httpserver.log:
        raw = request.get_data()
        out.append(Sent(
            method=request.method,
            path=request.path,
            query=dict(request.args),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=json.loads(raw) if raw.strip() else None,
            raw=raw,
        ))
    return out


def connection(httpserver: HTTPServer, timeout: float = 2.0, **credentials: str) -> Connection:
    return Connection(base_url=httpserver.url_for("/").rstrip("/"), credentials=credentials, timeout=timeout)


def action(kind: str, ticket_id: str = "42", **values: Any) -> OutboundAction:
    return OutboundAction(kind=kind, ticket_id=ticket_id, idempotency_key=values.pop("idempotency_key", KEY), **values)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_idempotency(requests_sent: list[Sent], key: str = KEY) -> None:
    """None of the eight helpdesks documents ``Idempotency-Key`` for the endpoints we call, so
    every request carries our trace header and none the standard one."""
    assert requests_sent, "no request was sent"
    for request in requests_sent:
        assert request.header(TRACE_IDEMPOTENCY_HEADER) == key
        assert request.header(IDEMPOTENCY_HEADER) is None


# --- the error contract ----------------------------------------------------------------------

ERROR_CASES = [
    "429-retry-after-seconds", "429-x-ratelimit-retry-after", "429-http-date", "429-no-header",
    "500", "502", "503", "400", "401", "403", "404", "422", "long-error-body",
    "timeout", "connection-refused", "redirect-other-host", "redirect-same-host",
]

Deliver = Callable[[Connection], DeliveryResult]


def check_error_case(
    httpserver: HTTPServer, case: str, deliver: Deliver, method: str, path: str,
    conn_kwargs: dict[str, str], ok: Callable[[HTTPServer], None] | None = None,
) -> None:
    """Make the first call of an action (``method`` ``path``) fail as ``case`` says and check the
    outcome. ``ok`` registers the happy answers of the action's other calls (same-host redirect)."""
    conn = connection(httpserver, **conn_kwargs)
    expect = httpserver.expect_request(path, method=method)
    if case == "429-retry-after-seconds":
        expect.respond_with_data("slow down", status=429, headers={"Retry-After": "2"})
        result = deliver(conn)
        assert (result.outcome, result.status_code, result.retry_after) == ("retry", 429, 2.0)
    elif case == "429-x-ratelimit-retry-after":  # Help Scout's header
        expect.respond_with_data("slow down", status=429, headers={"X-RateLimit-Retry-After": "7"})
        result = deliver(conn)
        assert (result.outcome, result.retry_after) == ("retry", 7.0)
    elif case == "429-http-date":
        when = datetime.now(timezone.utc) + timedelta(seconds=30)
        expect.respond_with_data("slow down", status=429, headers={"Retry-After": format_datetime(when, usegmt=True)})
        result = deliver(conn)
        assert result.outcome == "retry"
        assert result.retry_after is not None and 25.0 <= result.retry_after <= 31.0
    elif case == "429-no-header":
        expect.respond_with_data("slow down", status=429)
        result = deliver(conn)
        assert (result.outcome, result.retry_after) == ("retry", None)
    elif case in ("500", "502", "503"):
        expect.respond_with_data("upstream trouble", status=int(case))
        result = deliver(conn)
        assert (result.outcome, result.status_code) == ("retry", int(case))
        assert "upstream trouble" in (result.error or "")
    elif case in ("400", "401", "403", "404", "422"):
        expect.respond_with_json({"error": f"refused with {case}", "details": "field x is invalid"}, status=int(case))
        result = deliver(conn)
        assert (result.outcome, result.status_code, result.retry_after) == ("permanent", int(case), None)
        assert f"refused with {case}" in (result.error or "")
    elif case == "long-error-body":
        expect.respond_with_data("x" * 5000, status=400)
        result = deliver(conn)
        assert result.outcome == "permanent"
        assert result.error is not None and len(result.error) <= 500
    elif case == "timeout":
        conn = connection(httpserver, timeout=0.3, **conn_kwargs)

        def slow(_request: Request) -> Response:
            time.sleep(1.0)
            return Response("{}", status=200, content_type="application/json")

        expect.respond_with_handler(slow)
        result = deliver(conn)
        assert (result.outcome, result.status_code) == ("retry", None)
        assert result.error and "Timeout" in result.error
        assert result.requests_made == 1
        # The fake logs the request only once its slow answer is written: wait for it, so the
        # late entry does not land in the next test's log.
        deadline = time.monotonic() + 5.0
        while not httpserver.log and time.monotonic() < deadline:
            time.sleep(0.05)
        return
    elif case == "connection-refused":
        conn = Connection(base_url=f"http://127.0.0.1:{closed_port()}", credentials=conn_kwargs, timeout=2.0)
        result = deliver(conn)
        assert (result.outcome, result.status_code) == ("retry", None)
        assert result.error and "ConnectionError" in result.error
        assert result.requests_made == 1
        return
    elif case == "redirect-other-host":
        expect.respond_with_data("", status=307, headers={"Location": "https://elsewhere.example/steal"})
        result = deliver(conn)
        assert (result.outcome, result.status_code) == ("permanent", 307)
        assert "elsewhere.example" in (result.error or "")
        assert len(sent(httpserver)) == 1  # not followed
        return
    elif case == "redirect-same-host":
        moved = "/moved" + path
        expect.respond_with_data("", status=307, headers={"Location": httpserver.url_for(moved)})
        httpserver.expect_request(moved, method=method).respond_with_data(
            "upstream trouble", status=503)
        result = deliver(conn)
        assert (result.outcome, result.status_code) == ("retry", 503)
        assert [(r.method, r.path) for r in sent(httpserver)[:2]] == [(method, path), (method, moved)]
        assert sent(httpserver)[1].raw == sent(httpserver)[0].raw  # same body re-sent
        return
    else:  # pragma: no cover - a typo in ERROR_CASES
        pytest.fail(f"unknown case {case}")
    assert result.requests_made == 1, "the action must stop at the failed call"
    assert len(sent(httpserver)) == 1
    assert result.latency_ms >= 0


def session() -> requests.Session:
    return requests.Session()


class RecordingSession(requests.Session):
    """A session that keeps every request it sends, as sent: headers the fake server cannot see
    (werkzeug, like nginx by default, drops names with underscores such as Chatwoot's
    ``api_access_token``) are checked on these."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.prepared.append(request)
        return super().send(request, **kwargs)

    def sent(self) -> list[Sent]:
        out = []
        for request in self.prepared:
            raw = request.body or b""
            raw = raw.encode() if isinstance(raw, str) else raw
            parts = urlsplit(request.url or "")
            out.append(Sent(
                method=request.method or "", path=parts.path, query=dict(parse_qsl(parts.query)),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=json.loads(raw) if raw.strip() else None, raw=raw,
            ))
        return out


# --- official OpenAPI documents (Intercom, Chatwoot) -----------------------------------------

#: ``shared/specs`` lies beside the repository (never copied into it); REBOUND_SPECS_DIR overrides.
SPECS_DIR = Path(os.environ.get("REBOUND_SPECS_DIR") or Path(__file__).resolve().parents[4] / "shared" / "specs")


class SpecCheck:
    """Validates requests against an official OpenAPI document read from ``shared/specs``."""

    def __init__(self, relative: str, server: str):
        path = SPECS_DIR / relative
        if not path.is_file():
            pytest.skip(f"official spec {path} is absent: request validation against it cannot run")
        from openapi_core import Config, OpenAPI

        # Intercom's 2.16 document fails openapi-spec-validator on an unrelated path
        # (/export/reporting_data/{job_identifier}); requests are still validated in full.
        self.openapi = OpenAPI.from_file_path(str(path), config=Config(spec_validator_cls=None))
        self.server = server

    def errors(self, request: Sent) -> list[str]:
        """Why ``request`` breaks the document (empty when it conforms)."""
        from openapi_core.testing import MockRequest

        mock = MockRequest(
            self.server, request.method.lower(), request.path, args=request.query, headers=request.headers,
            data=request.raw or None, content_type=request.header("content-type") or "application/json",
        )
        problems: list[str] = []
        for error in self.openapi.iter_request_errors(mock):
            detail = "; ".join(str(e.message) for e in getattr(error, "schema_errors", ()) or ())
            cause = error.__cause__
            if not detail and cause is not None:
                detail = "; ".join(str(e.message) for e in getattr(cause, "schema_errors", ()) or ()) or str(cause)
            problems.append(f"{request.method} {request.path}: {type(error).__name__}: {error} {detail}".strip())
        return problems

    def assert_valid(self, requests_sent: list[Sent]) -> None:
        assert requests_sent, "no request was sent"
        problems = [problem for request in requests_sent for problem in self.errors(request)]
        assert not problems, "\n".join(problems)
