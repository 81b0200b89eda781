"""The session interface: Flask's signed-cookie session, opened only for requests that send a cookie.

Only the demo pages keep anything in the session (their flash messages). Helpdesks, mail
providers, API clients and the sidebar send no cookie and authenticate every request on its
own, yet Flask's stock interface builds its signing serializer and parses the Cookie header for
each of them. A request without a Cookie header has no session to read, so it starts with an
empty one at once; everything else, saving included, is Flask's own behaviour.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class CookieSessionInterface(SecureCookieSessionInterface):
    """``SecureCookieSessionInterface`` without the work of reading a cookie nobody sent."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)
