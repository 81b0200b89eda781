"""The agent's panel in the helpdesk's ticket sidebar: helpdesk-specific entry points (auth.py),
the panel's own short-lived token (context.py), the server-rendered panel and its actions
(views.py, templates/sidebar/), and the demo helpdesk served at ``/`` (demo.py)."""
