"""The factory, configuration, health check, CLI and worker jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask

from app import create_app
from app.cases.models import CaseEvent, ReturnCase
from app.extensions import db, utcnow
from app.jobs import expire_stale_cases
from app.tenants.models import ApiToken, Tenant
from config import ProductionConfig, TestingConfig

PRODUCTION_ENV = {
    "SECRET_KEY": "x" * 40,
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/unused",
    "REBOUND_ENCRYPTION_KEY": Fernet.generate_key().decode(),
}


@pytest.mark.parametrize("missing", sorted(PRODUCTION_ENV))
def test_production_refuses_to_start_without_a_secret(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    """Each required production secret, when missing, stops start-up with its name in the message."""
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(missing)
    with pytest.raises(RuntimeError, match=missing):
        create_app(ProductionConfig)


def test_production_takes_its_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every secret set, production starts and uses them (postgres:// becomes psycopg 3)."""
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    app = create_app(ProductionConfig)
    assert app.config["SECRET_KEY"] == "x" * 40
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")


def test_production_refuses_a_short_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SECRET_KEY shorter than 32 characters is refused."""
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(RuntimeError, match="32 characters"):
        create_app(ProductionConfig)


def test_healthz_reports_an_unreachable_database() -> None:
    """/healthz answers 503 when the database cannot be reached."""
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "unreachable"


def test_healthz_ok(client) -> None:
    """/healthz answers 200 when the database answers."""
    assert client.get("/healthz").json == {"status": "ok", "database": "ok"}


def test_cli_creates_a_tenant_whose_token_works_until_revoked(app: Flask, runner, client) -> None:
    """`flask tenants create NAME` prints a token that authenticates; `revoke` stops it."""
    result = runner.invoke(args=["tenants", "create", "Globex Gear", "--currency", "EUR"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("rbd_")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/reason-codes", headers=headers).status_code == 200
    with app.app_context():
        stored = db.session.scalar(sa.select(ApiToken))
        assert stored.token_hash != token and token not in stored.token_hash  # only the hash is kept
        token_id = stored.id
    listed = runner.invoke(args=["tenants", "tokens", "globex-gear"])
    assert token not in listed.output and "active" in listed.output
    assert runner.invoke(args=["tenants", "revoke", "globex-gear", str(token_id)]).exit_code == 0
    assert client.get("/api/v1/reason-codes", headers=headers).status_code == 401


def test_cli_refuses_a_duplicate_tenant(runner) -> None:
    """Creating a tenant whose slug exists fails with a message, not a traceback."""
    assert runner.invoke(args=["tenants", "create", "Globex"]).exit_code == 0
    result = runner.invoke(args=["tenants", "create", "Globex"])
    assert result.exit_code != 0 and "already exists" in result.output


def test_demo_load_creates_cases_in_several_states(app: Flask, runner, client) -> None:
    """`flask demo load` makes a tenant with cases in at least five statuses, reachable with its token."""
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1].split()[-1]
    page = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).json
    assert len({item["status"] for item in page["items"]}) >= 5
    again = runner.invoke(args=["demo", "load"])
    assert "already loaded" in again.output


def test_worker_expires_cases_left_waiting(app: Flask, runner, client) -> None:
    """A case awaiting the customer past the silence limit is expired by the worker job, with an event."""
    runner.invoke(args=["demo", "load"])
    with app.app_context():
        case = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.status == "awaiting_customer"))
        fresh = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.status == "in_transit"))
        db.session.execute(sa.update(ReturnCase).where(ReturnCase.id == case.id)
                           .values(status_changed_at=utcnow() - timedelta(days=30)))
        db.session.commit()
        assert expire_stale_cases() == 1
        db.session.expire_all()
        assert db.session.get(ReturnCase, case.id).status == "expired"
        assert db.session.get(ReturnCase, fresh.id).status == "in_transit"
        last = db.session.scalar(sa.select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id.desc()))
        assert (last.action, last.actor_type) == ("expire", "system")
    assert runner.invoke(args=["worker", "--once"]).exit_code == 0


def test_the_timeline_is_append_only(app_ctx: Flask, runner) -> None:
    """An event cannot be changed or deleted through the ORM."""
    runner.invoke(args=["demo", "load"])
    event = db.session.scalar(sa.select(CaseEvent))
    event.reason = "rewritten"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()


def test_every_query_is_scoped_by_tenant(app: Flask, runner, client) -> None:
    """Two tenants with the same case numbers see only their own cases."""
    runner.invoke(args=["demo", "load"])
    other = runner.invoke(args=["tenants", "create", "Other"]).output.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {other}"}
    assert client.get("/api/v1/cases", headers=headers).json["items"] == []
    assert client.get("/api/v1/cases/RMA-10001", headers=headers).status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Tenant.id))) == 2
