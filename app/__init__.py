"""Rebound: the application factory.

``create_app`` reads like a table of contents; each step is a small ``register_*`` function.
Nothing here touches the database, starts a scheduler or opens a connection at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from config import Config, config_from_env

ROOT = Path(__file__).resolve().parent.parent


def create_app(config_class: type[Config] | None = None, **overrides: object) -> Flask:
    """Build the Flask app for ``config_class`` (default: from ``REBOUND_CONFIG``).

    ``overrides`` are applied last; tests use them to point at their own database.

    :raise RuntimeError: the configuration is missing a required secret.
    """
    config_class = config_class or config_from_env()
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
    )
    app.config.from_object(config_class)
    app.config.update(config_class.runtime_overrides())
    app.config.update(overrides)
    app.json.sort_keys = False  # keep fields in schema order: code, message, details

    configure_logging(app)
    register_extensions(app)
    register_session(app)
    register_models()
    register_error_handlers(app)
    register_blueprints(app)
    register_commands(app)
    return app


def configure_logging(app: Flask) -> None:
    """Log to stderr at INFO (DEBUG in development), in one readable line per record."""
    level = logging.DEBUG if app.debug else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # One line per job run is noise; failures are still logged by the job runner.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def register_extensions(app: Flask) -> None:
    """Bind the extension singletons to this app."""
    from app.extensions import db, migrate

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), compare_type=True, render_as_batch=True)


def register_session(app: Flask) -> None:
    """Flask's cookie session, read only from requests that send a cookie (see ``app.sessions``)."""
    from app.sessions import CookieSessionInterface

    app.session_interface = CookieSessionInterface()


def register_models() -> None:
    """Import every model module so the metadata (and Alembic) sees every table."""
    import app.cases.models  # noqa: F401
    import app.connectors.models  # noqa: F401
    import app.email.models  # noqa: F401
    import app.inbound.models  # noqa: F401
    import app.intake.models  # noqa: F401
    import app.orders.models  # noqa: F401
    import app.sidebar.models  # noqa: F401
    import app.outbound.models  # noqa: F401
    import app.tenants.models  # noqa: F401


def register_error_handlers(app: Flask) -> None:
    """One JSON error shape for every failure."""
    from app.errors import register_error_handlers as register

    register(app)


def register_blueprints(app: Flask) -> None:
    """Mount the web-facing packages."""
    from app.api import bp as api_bp
    from app.health import bp as health_bp
    from app.inbound.webhooks import bp as webhooks_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(webhooks_bp)
    from app.sidebar import routes  # noqa: F401  (routes attach to the blueprints on import)
    from app.sidebar.blueprints import bp as sidebar_bp, demo_bp

    app.register_blueprint(sidebar_bp)
    app.register_blueprint(demo_bp)


def register_commands(app: Flask) -> None:
    """Add the grouped ``flask`` CLI commands."""
    from app.cli import register_cli

    register_cli(app)
