"""Every table comes from a migration: ``flask db upgrade`` on an empty database gives the models' schema."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app import create_app
from app.extensions import db
from config import TestingConfig
from tests.conftest import database_kind, database_url_for, drop_postgres_database


def _fresh_app(tmp_dir: Path):
    url = database_url_for(tmp_dir, suffix="_migrations")
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        # Start from an empty database, whatever an earlier run left behind.
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    return app


def test_upgrade_on_an_empty_database_matches_the_models(tmp_dir: Path) -> None:
    """After upgrade, autogenerate finds no difference between the database and the models."""
    app = _fresh_app(tmp_dir)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
            tables = set(sa.inspect(conn).get_table_names())
        assert diff == [], f"migrations and models differ: {diff}"
        assert {t.name for t in db.metadata.sorted_tables} | {"alembic_version"} == tables
        db.engine.dispose()
    _drop(app)


def test_downgrade_removes_every_table(tmp_dir: Path) -> None:
    """The migrations can be rolled back to an empty database."""
    app = _fresh_app(tmp_dir)
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
    _drop(app)


def _drop(app) -> None:
    if database_kind() == "postgresql":
        drop_postgres_database(app.config["SQLALCHEMY_DATABASE_URI"])


def test_0007_carries_refused_call_counts_over_and_back(tmp_dir: Path) -> None:
    """The count of refused calls moves off the integration's row (0007) and back (downgrade)."""
    app = _fresh_app(tmp_dir)
    with app.app_context():
        upgrade(revision="0006")
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO tenants (id, name, slug, default_locale, default_currency, case_counter, "
                                 "settings, created_at) VALUES (1, 'T', 't', 'en', 'USD', 0, '{}', CURRENT_TIMESTAMP)"))
            for ident, count in ((1, 7), (2, 0)):
                conn.execute(sa.text(
                    "INSERT INTO integrations (id, tenant_id, kind, name, public_key, enabled, secrets_encrypted, "
                    "settings, rejected_count, created_at, updated_at) VALUES (:id, 1, 'zendesk', 'Z', :key, true, "
                    "'x', '{}', :count, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"id": ident, "key": f"k{ident}",
                                                                                  "count": count})
        upgrade(revision="0007")
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT integration_id, count FROM rejection_counts")).all() == [(1, 7)]
        downgrade(revision="0006")
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id, rejected_count FROM integrations ORDER BY id")).all() == [(1, 7),
                                                                                                          (2, 0)]
        db.engine.dispose()
    _drop(app)
