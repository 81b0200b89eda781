"""What every write-back client shares: running an action's HTTP calls, and shaping bodies.

A client's ``deliver`` builds an ``Exchange`` and hands ``Exchange.run`` a function that makes
the action's calls through ``Exchange.call``. ``call`` returns the answer when it is 2xx; any
other answer or a transport failure ends the action at once with the ``DeliveryResult`` that
``classify`` gives it, so steps after a failed one never run. ``run`` adds up the calls and the
time, and turns the refusals below into permanent results. Nothing here raises to the caller.

Rules every call follows: the passed session, ``timeout=connection.timeout``, no automatic
redirects (a redirect to the same origin is followed with the same method and body, at most
``MAX_REDIRECTS`` times; one to another origin is refused: it would carry our credentials
somewhere we did not choose), and the idempotency key in ``X-Rebound-Idempotency-Key``.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from integrations.base import (
    TRACE_IDEMPOTENCY_HEADER,
    Connection,
    DeliveryResult,
    OutboundAction,
    classify,
    error_excerpt,
)
from integrations.payload import MAX_ID
from integrations.text import clean, html_to_text

MAX_REDIRECTS = 3
USER_AGENT = "Rebound-Writeback/1"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class ActionRefused(Exception):
    """The action cannot be sent as it is (missing text, credentials, a bad id): permanent."""


class _Stopped(Exception):
    """A call failed; ``result`` is the action's outcome (internal to ``Exchange``)."""

    def __init__(self, result: DeliveryResult):
        super().__init__(result.error)
        self.result = result


class Exchange:
    """The HTTP calls of one ``OutboundAction``, counted and timed."""

    def __init__(
        self,
        action: OutboundAction,
        connection: Connection,
        session: requests.Session,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ):
        self.action = action
        self.connection = connection
        self.session = session
        self.auth = auth
        self.requests_made = 0
        self.last_status: int | None = None
        self._started = time.monotonic()
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        key = (action.idempotency_key or "").strip()
        if key and key.isprintable() and key.isascii():
            self._headers[TRACE_IDEMPOTENCY_HEADER] = key[:255]

    # --- running -----------------------------------------------------------------------------

    def run(self, steps: Callable[[], str | None]) -> DeliveryResult:
        """Run ``steps`` (which returns the created object's id, if any) and say how it went."""
        try:
            base_url(self.connection)
            external_id = steps()
        except _Stopped as stop:
            return _with(stop.result, requests_made=self.requests_made, latency_ms=self._elapsed())
        except ActionRefused as refused:
            return DeliveryResult("permanent", self.last_status, self._elapsed(),
                                  error=error_excerpt(str(refused)), requests_made=self.requests_made)
        except Exception as exc:  # noqa: BLE001 - deliver must never raise; a bug reads as permanent
            return DeliveryResult("permanent", self.last_status, self._elapsed(),
                                  error=error_excerpt(f"internal error: {type(exc).__name__}: {exc}"),
                                  requests_made=self.requests_made)
        return DeliveryResult("delivered", self.last_status, self._elapsed(),
                              external_id=external_id, requests_made=self.requests_made)

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One HTTP call to ``base_url + path`` (or to ``path`` itself when it is an absolute URL
        of the same origin, such as a pagination link); the answer when 2xx, else the action stops.

        :raise ActionRefused: an absolute ``path`` on another origin.
        """
        root = base_url(self.connection)
        if path.startswith(("http://", "https://")):
            if not same_origin(root, path):
                raise ActionRefused(f"Refusing to follow a link to another host ({_origin(path)}).")
            url = path
        else:
            url = root + path
        send_headers = {**self._headers, **(headers or {})}
        for _hop in range(MAX_REDIRECTS + 1):
            self.requests_made += 1
            try:
                response = self.session.request(
                    method, url, json=json, params=params, headers=send_headers, auth=self.auth,
                    timeout=self.connection.timeout, allow_redirects=False,
                )
            except requests.RequestException as exc:
                self.last_status = None
                raise _Stopped(classify(exc)) from None
            self.last_status = response.status_code
            if response.status_code not in _REDIRECTS or not response.headers.get("Location"):
                break
            target = urljoin(url, response.headers["Location"])
            if not same_origin(url, target):
                raise _Stopped(_with(classify(response), error=error_excerpt(
                    f"HTTP {response.status_code}: redirect to another host refused ({_origin(target)})")))
            url, params = target, None  # the Location carries its own query
            if response.status_code == 303:
                method, json = "GET", None
        if not 200 <= response.status_code < 300:
            raise _Stopped(classify(response))
        return response

    def json(self, response: requests.Response) -> Any:
        """The answer's JSON body; a 2xx answer that is not JSON stops the action (permanent)."""
        try:
            return response.json()
        except ValueError:
            raise _Stopped(DeliveryResult(
                "permanent", response.status_code, 0.0,
                error=error_excerpt(f"HTTP {response.status_code}: answer is not JSON: {response.text}"),
            )) from None

    def _elapsed(self) -> float:
        return (time.monotonic() - self._started) * 1000.0


def _with(result: DeliveryResult, **changes: Any) -> DeliveryResult:
    values = {name: getattr(result, name) for name in result.__dataclass_fields__}
    values.update(changes)
    return DeliveryResult(**values)


# --- URLs ------------------------------------------------------------------------------------


def base_url(connection: Connection) -> str:
    """``connection.base_url`` without a trailing slash, once checked.

    :raise ActionRefused: not an http(s) URL with a host, or it has credentials, a query or a
        fragment (they would leak or be silently dropped).
    """
    raw = (connection.base_url or "").strip()
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ActionRefused(f"The helpdesk base URL is not a URL: {raw[:80]!r}.") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ActionRefused(f"The helpdesk base URL must be http(s)://host: {raw[:80]!r}.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ActionRefused("The helpdesk base URL must not carry credentials, a query or a fragment.")
    return raw.rstrip("/")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def same_origin(a: str, b: str) -> bool:
    """Same scheme, host and port (a redirect to http from https is another origin)."""
    return _origin(a) == _origin(b)


def segment(value: str, what: str, pattern: re.Pattern[str] | None = None) -> str:
    """``value`` fit to be one URL path segment (percent-encoded, so ``/`` or ``..`` cannot
    reach another endpoint).

    :raise ActionRefused: blank, longer than ``MAX_ID``, unprintable, or not matching ``pattern``.
    """
    value = (value or "").strip()
    if not value or len(value) > MAX_ID or not value.isprintable():
        raise ActionRefused(f"Not a usable {what}: {value[:40]!r}.")
    if pattern is not None and not pattern.fullmatch(value):
        raise ActionRefused(f"Not a {what}: {value[:40]!r}.")
    return quote(value, safe="")


def credential(connection: Connection, *names: str) -> str:
    """The first non-blank credential among ``names``.

    :raise ActionRefused: none is set.
    """
    for name in names:
        value = (connection.credentials.get(name) or "").strip()
        if value:
            return value
    raise ActionRefused(f"Missing credential {' or '.join(names)} for this helpdesk.")


# --- bodies and tags -------------------------------------------------------------------------


def require_body(action: OutboundAction) -> None:
    """:raise ActionRefused: a note or reply with neither text nor HTML."""
    if not ((action.body_text or "").strip() or (action.body_html or "").strip()):
        raise ActionRefused(f"A {action.kind} needs body_text or body_html.")


def plain_body(action: OutboundAction) -> str:
    """The body as plain text: ``body_text``, else the HTML's text."""
    if (action.body_text or "").strip():
        return clean(action.body_text or "")
    return html_to_text(action.body_html) or ""


def html_body(action: OutboundAction) -> str:
    """The body as HTML: ``body_html``, else the text escaped with paragraphs and line breaks."""
    if (action.body_html or "").strip():
        return clean(action.body_html or "")
    return text_to_html(action.body_text or "")


def text_to_html(text: str) -> str:
    """Plain text as HTML: escaped, blank lines → paragraphs, line breaks → ``<br>``."""
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", clean(text).replace("\r\n", "\n")) if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def require_status(action: OutboundAction) -> str:
    """:raise ActionRefused: a status action without a status."""
    status = (action.status or "").strip()
    if not status:
        raise ActionRefused("A status action needs a status.")
    return status


def require_fields(action: OutboundAction) -> dict[str, str]:
    """The fields with trimmed, non-blank names.

    :raise ActionRefused: no field to set.
    """
    fields = {str(key).strip(): "" if value is None else str(value) for key, value in action.fields.items()
              if str(key).strip()}
    if not fields:
        raise ActionRefused("A fields action needs at least one field.")
    return fields


def tag_changes(action: OutboundAction) -> tuple[list[str], list[str]]:
    """``(add, remove)``: trimmed, de-duplicated, and a tag in both only removed.

    :raise ActionRefused: nothing to add or remove.
    """
    remove = _unique(action.remove_tags)
    removed = {tag.casefold() for tag in remove}
    add = [tag for tag in _unique(action.add_tags) if tag.casefold() not in removed]
    if not add and not remove:
        raise ActionRefused("A tags action needs add_tags or remove_tags.")
    return add, remove


def merge_tags(current: Iterable[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """``current`` plus ``add`` minus ``remove``, in order, without repeats (compared ignoring
    case, as helpdesks do; the first spelling wins)."""
    removed = {tag.casefold() for tag in remove}
    merged: dict[str, str] = {}
    for tag in [*current, *add]:
        key = tag.casefold()
        if tag and key not in removed and key not in merged:
            merged[key] = tag
    return list(merged.values())


def _unique(tags: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for tag in tags:
        name = clean(str(tag)).strip()
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return list(seen.values())


def text_id(value: Any) -> str | None:
    """An id from a JSON string or integer, as text; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value).strip() or None
