"""Shared pieces of the inbound webhook tests: ``test_adapter_contract.py`` and the
``test_<kind>.py`` files import them (pytest puts this folder on ``sys.path``, as for
``outbound_kit``). Nothing here knows a helpdesk: vendor facts live in the contract's table and
in each vendor's file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from integrations.base import InboundRequest, PayloadError, TicketEvent, WebhookAdapter

DATA = Path(__file__).resolve().parents[2] / "data" / "webhooks"


def loader(kind: str) -> Callable[[str], bytes]:
    """``load(name)``: the bytes of ``tests/data/webhooks/<kind>/<name>``."""
    return lambda name: (DATA / kind / name).read_bytes()


def inbound(body: bytes, headers: Mapping[str, str] | None = None, *,
            received_at: datetime | None = None) -> InboundRequest:
    """A POST with ``body`` and ``headers`` (keys lower-cased, as the app hands them over)."""
    return InboundRequest(method="POST", path="/webhooks/k", body=body, received_at=received_at,
                          headers={k.lower(): v for k, v in (headers or {}).items()})


def basic(username: str, password: str) -> dict[str, str]:
    """An HTTP Basic ``Authorization`` header, built with base64 directly (not by an adapter)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def edited(body: bytes, change: Callable[[Any], object]) -> bytes:
    """``body`` read as JSON, changed in place by ``change``, written back."""
    document = json.loads(body)
    change(document)
    return json.dumps(document).encode()


def body_hash(body: bytes) -> str:
    """The fallback delivery key of a body, computed here rather than by ``body_hash_key``."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def payload_error_field(adapter: WebhookAdapter, request: InboundRequest) -> str | None:
    """The field the PayloadError of ``adapter.parse(request)`` names; fails if it parses."""
    try:
        event = adapter.parse(request)
    except PayloadError as error:
        return error.field
    raise AssertionError(f"parsed into {event!r}, expected a PayloadError")


def well_formed_or_none(adapter: WebhookAdapter, request: InboundRequest) -> TicketEvent | None:
    """``adapter.parse(request)``: None for a PayloadError, else the event after the checks any
    event must pass (tags are text, times are aware). Any other exception propagates."""
    try:
        event = adapter.parse(request)
    except PayloadError:
        return None
    assert all(isinstance(tag, str) for tag in event.tags)
    assert event.occurred_at is None or event.occurred_at.tzinfo is not None
    return event


def json_values(keys: st.SearchStrategy[str] | None = None, *words: str) -> st.SearchStrategy[Any]:
    """Arbitrary JSON (NaN and infinities included, as ``json.dumps`` writes them), objects keyed
    by ``keys`` (any short text by default), scalars mixed with ``words``."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    if words:
        scalars |= st.sampled_from(words)
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4)
        | st.dictionaries(keys if keys is not None else st.text(max_size=12), children, max_size=6),
        max_leaves=30,
    )
