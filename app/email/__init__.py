"""Inbound and outbound email: parsing raw MIME (``parse``), HTML made safe to show and turned into
text (``html``), auto-reply / bounce / list detection (``classify``), the content-addressed
attachment store (``store``), reply extraction, threading and outbound mail building.

``parse``, ``html``, ``classify`` and ``store`` are pure (no Flask app, no database); the services
call them and own the transactions.
"""
