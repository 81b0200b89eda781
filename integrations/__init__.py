"""Provider adapters, one module per helpdesk or mail provider, behind one interface.

This package imports nothing from ``app/``: it receives configuration values as arguments.
``get_adapter(kind)`` finds an adapter by name; each module registers itself on import.
Write-back goes the other way: ``get_client(kind).deliver(OutboundAction, Connection, session)``
answers a ``DeliveryResult`` (see ``integrations.base``).
"""

from __future__ import annotations

from integrations.base import (
    Connection,
    DeliveryResult,
    Handshake,
    HelpdeskClient,
    InboundRequest,
    OutboundAction,
    OutboundKind,
    PayloadError,
    RateLimit,
    SignatureError,
    TicketEvent,
    WebhookAdapter,
    classify,
    get_adapter,
    get_client,
    register,
    register_client,
    registered_client_kinds,
    registered_kinds,
)

__all__ = [
    "Connection",
    "DeliveryResult",
    "Handshake",
    "HelpdeskClient",
    "InboundRequest",
    "OutboundAction",
    "OutboundKind",
    "PayloadError",
    "RateLimit",
    "SignatureError",
    "TicketEvent",
    "WebhookAdapter",
    "classify",
    "get_adapter",
    "get_client",
    "register",
    "register_client",
    "registered_client_kinds",
    "registered_kinds",
]
