"""Grouped ``flask`` commands: tenants, demo, worker. Each parses its arguments and calls a service."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app.errors import AppError
from app.extensions import db
from app.tenants import services as tenant_services
from app.tenants.models import ApiToken, Tenant

tenants = AppGroup("tenants", help="Create tenants and manage their API tokens.")
demo = AppGroup("demo", help="Demo data for a first look.")


def _tenant(slug: str) -> Tenant:
    tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise click.ClickException(f"No tenant with slug {slug!r}.")
    return tenant


@tenants.command("create")
@click.argument("name")
@click.option("--slug", help="URL-safe identifier (default: from the name).")
@click.option("--currency", default="USD", show_default=True)
@click.option("--locale", default="en", show_default=True)
def create_tenant(name: str, slug: str | None, currency: str, locale: str) -> None:
    """Create tenant NAME and print its first API token (shown once)."""
    try:
        issued = tenant_services.create_tenant(name, slug=slug, currency=currency, locale=locale)
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Tenant {issued.token.tenant.name!r} created (slug {issued.token.tenant.slug}).")
    click.echo("API token (shown once, store it now):")
    click.echo(issued.plain)


@tenants.command("list")
def list_tenants() -> None:
    """List tenants with their active token count."""
    for tenant in db.session.scalars(sa.select(Tenant).order_by(Tenant.id)):
        active = sum(1 for t in tenant.tokens if t.revoked_at is None)
        click.echo(f"{tenant.slug}\t{tenant.name}\t{active} active token(s)")


@tenants.command("token")
@click.argument("slug")
@click.option("--name", default="cli", show_default=True)
def new_token(slug: str, name: str) -> None:
    """Issue another API token for tenant SLUG (shown once)."""
    issued = tenant_services.issue_token(_tenant(slug).id, name)
    click.echo(issued.plain)


@tenants.command("tokens")
@click.argument("slug")
def list_tokens(slug: str) -> None:
    """List tenant SLUG's tokens (id, prefix, name, state); never the token itself."""
    tenant = _tenant(slug)
    for token in db.session.scalars(sa.select(ApiToken).where(ApiToken.tenant_id == tenant.id).order_by(ApiToken.id)):
        state = "revoked" if token.revoked_at else "active"
        click.echo(f"{token.id}\t{token.prefix}…\t{token.name}\t{state}")


@tenants.command("revoke")
@click.argument("slug")
@click.argument("token_id", type=int)
def revoke(slug: str, token_id: int) -> None:
    """Revoke token TOKEN_ID of tenant SLUG; it stops working at once."""
    try:
        tenant_services.revoke_token(_tenant(slug).id, token_id)
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Token {token_id} revoked.")


@demo.command("load")
@click.option("--force", is_flag=True, help="Load even if the demo tenant exists (adds more cases).")
def load_demo(force: bool) -> None:
    """Create the demo tenant with orders and cases in several states; prints its API token."""
    from app.demo import load

    result = load(force=force)
    click.echo(result)


@click.command("worker")
@with_appcontext
@click.option("--once", is_flag=True, help="Run every job once and exit (for cron or tests).")
def worker(once: bool) -> None:
    """Run the background jobs (the only process that starts the scheduler)."""
    from app.jobs import run_worker

    run_worker(once=once)


def register_cli(app: Flask) -> None:
    app.cli.add_command(tenants)
    app.cli.add_command(demo)
    app.cli.add_command(worker)
