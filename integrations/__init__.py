"""Provider adapters, one module per helpdesk or mail provider, behind one interface.

This package imports nothing from ``app/``: it receives configuration values as arguments.
``get_adapter(kind)`` finds an adapter by name; each module registers itself on import.
"""

from __future__ import annotations

from integrations.base import (
    Handshake,
    InboundRequest,
    PayloadError,
    SignatureError,
    TicketEvent,
    WebhookAdapter,
    get_adapter,
    register,
    registered_kinds,
)

__all__ = [
    "Handshake",
    "InboundRequest",
    "PayloadError",
    "SignatureError",
    "TicketEvent",
    "WebhookAdapter",
    "get_adapter",
    "register",
    "registered_kinds",
]
