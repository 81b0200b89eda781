"""Imports every module that attaches routes to the sidebar blueprints (see ``blueprints.py``)."""

from app.sidebar import demo, helpdesk_auth, links, views  # noqa: F401
