"""The cookie session opens only for requests that send a cookie; with one, it is Flask's own.

A bare Flask app with ``register_session``: no database, no Rebound configuration.
"""

from __future__ import annotations

import pytest
from flask import Flask, session

from app import register_session
from app.sessions import CookieSessionInterface


@pytest.fixture()
def app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "test-secret-key-of-some-length-0123456789"
    register_session(app)

    @app.post("/remember/<word>")
    def remember(word: str) -> str:
        session["word"] = word
        return "ok"

    @app.get("/recall")
    def recall() -> str:
        return session.get("word", "-")

    @app.get("/kind")
    def kind() -> str:
        return type(session._get_current_object()).__name__  # type: ignore[attr-defined]

    return app


def test_a_request_without_a_cookie_reads_no_cookie(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_serializer(*_: object) -> None:
        raise AssertionError("a request without a cookie built the cookie's serializer")

    client = app.test_client()
    monkeypatch.setattr(CookieSessionInterface, "get_signing_serializer", no_serializer)
    response = client.get("/recall")
    assert response.status_code == 200 and response.text == "-"
    assert "Set-Cookie" not in response.headers  # an untouched empty session sets nothing


def test_a_session_set_in_one_request_is_read_in_the_next(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/remember/parcel").status_code == 200  # no cookie yet: the fast path, then saved
    assert client.get("/recall").text == "parcel"


def test_a_forged_session_cookie_is_ignored(app: Flask) -> None:
    client = app.test_client()
    client.set_cookie("session", "eyJ3b3JkIjoiZm9yZ2VkIn0.forged.signature")
    assert client.get("/recall").text == "-"


def test_without_a_secret_key_the_session_is_flasks_null_session(app: Flask) -> None:
    app.secret_key = None
    assert app.test_client().get("/kind").text == "NullSession"  # which refuses to be written, as in Flask
