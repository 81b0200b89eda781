"""Fixtures for every tier: ``app`` (one per session, on SQLite or PostgreSQL), ``client``,
``runner``, a clean database per test, a ``tenant`` with its token and an ``api`` helper.

``REBOUND_TEST_DB`` chooses the database: ``sqlite`` (default) or ``postgresql``. PostgreSQL
must be reachable when asked for: the suite stops with an error instead of skipping.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extensions import db
from config import TestingConfig

PG_BASE_URL = os.environ.get("REBOUND_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")


def database_kind() -> str:
    kind = os.environ.get("REBOUND_TEST_DB", "sqlite").lower()
    if kind not in {"sqlite", "postgresql"}:
        raise pytest.UsageError(f"REBOUND_TEST_DB must be sqlite or postgresql, not {kind!r}")
    return kind


def postgres_database(name: str) -> str:
    """Create (if needed) a PostgreSQL database for this test process and return its URL."""
    admin = sa.create_engine(f"{PG_BASE_URL}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        raise pytest.UsageError(
            f"PostgreSQL is not reachable at {PG_BASE_URL} ({exc.orig}). Start it "
            "(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
            "or run with REBOUND_TEST_DB=sqlite."
        ) from None
    finally:
        admin.dispose()
    return f"{PG_BASE_URL}/{name}"


def database_url_for(tmp_dir: Path, suffix: str = "") -> str:
    """A database of this test process's own, so parallel and concurrent runs never share one."""
    name = f"rebound_test_{os.getpid()}{suffix}"
    if database_kind() == "postgresql":
        return postgres_database(name)
    return f"sqlite:///{tmp_dir / f'{name}.db'}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(f"{PG_BASE_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def tmp_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rebound-tests-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def database_url(tmp_dir: Path) -> str:
    return database_url_for(tmp_dir)


@pytest.fixture(scope="session")
def app(database_url: str, tmp_dir: Path) -> Iterator[Flask]:
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=database_url,
                     REBOUND_ATTACHMENT_DIR=str(tmp_dir / "attachments"))
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()
    if database_kind() == "postgresql":
        drop_postgres_database(database_url)


def _clean(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(sa.text(f'DELETE FROM "{table}"'))


@pytest.fixture()
def clean_db(app: Flask) -> Iterator[None]:
    _clean(app)
    yield
    _clean(app)


@pytest.fixture()
def app_ctx(app: Flask, clean_db: None) -> Iterator[Flask]:
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture()
def client(app: Flask, clean_db: None) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def runner(app: Flask, clean_db: None):
    return app.test_cli_runner()


class Api:
    """Authorized JSON requests for one tenant: ``api.post("/cases", json=...)``."""

    def __init__(self, client: FlaskClient, token: str):
        self.client, self.token = client, token

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, path: str, **kwargs: Any):
        return self.client.get("/api/v1" + path, headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path: str, **kwargs: Any):
        return self.client.post("/api/v1" + path, headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def put(self, path: str, **kwargs: Any):
        return self.client.put("/api/v1" + path, headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def patch(self, path: str, **kwargs: Any):
        return self.client.patch("/api/v1" + path, headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def action(self, number: str, action: str, payload: dict[str, Any] | None = None, **kwargs: Any):
        return self.post(f"/cases/{number}/actions/{action}", json=payload or {}, **kwargs)


@pytest.fixture()
def tenant_token(app: Flask, clean_db: None) -> str:
    from app.tenants.services import create_tenant

    with app.app_context():
        return create_tenant("Acme Outdoor", slug="acme").plain


@pytest.fixture()
def api(client: FlaskClient, tenant_token: str) -> Api:
    return Api(client, tenant_token)
