"""WSGI entry point for gunicorn: ``gunicorn wsgi:app``. Starts no scheduler (see ``flask worker``)."""

from app import create_app

app = create_app()
