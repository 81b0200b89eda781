"""Grouped ``flask`` commands: tenants, integrations, demo, outbox, worker. Each parses its arguments and calls a service."""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path
from typing import get_args

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from app.connectors import services as connector_services
from app.connectors.models import Integration
from app.connectors.schemas import MAIL_KINDS, HelpdeskKind, IntegrationCreate, MailKind, SecretRotation
from app.demo import load
from app.errors import AppError
from app.extensions import db, utcnow
from app.jobs import run_worker
from app.outbound.dispatcher import drain
from app.outbound.outbox import discard, get_message, list_messages, replay
from app.tenants import services as tenant_services
from app.tenants.models import ApiToken, Tenant
from app.validation import parse_mapping
from integrations import get_adapter
from integrations.mail import get_mail_adapter

class CommandGroup(AppGroup):
    """Commands whose ``AppError`` is shown as a one-line message, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AppError as exc:
            fields = exc.details.get("fields")
            raise click.ClickException(exc.message + (f" {fields}" if fields else "")) from None


tenants = CommandGroup("tenants", help="Create tenants and manage their API tokens.")
integrations = CommandGroup("integrations", help="Connect helpdesks: webhook URLs, secrets, test deliveries.")
demo = CommandGroup("demo", help="Demo data for a first look.")
outbox = CommandGroup("outbox", help="The outbox of helpdesk updates: deliver now, inspect and replay dead letters.")


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
    issued = tenant_services.create_tenant(name, slug=slug, currency=currency, locale=locale)
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
    tenant_services.revoke_token(_tenant(slug).id, token_id)
    click.echo(f"Token {token_id} revoked.")


@demo.command("load")
@click.option("--force", is_flag=True, help="Load even if the demo tenant exists (adds more cases).")
def load_demo(force: bool) -> None:
    """Create the demo tenant with orders and cases in several states; prints its API token."""
    result = load(force=force)
    click.echo(result)


@click.command("worker")
@with_appcontext
@click.option("--once", is_flag=True, help="Run every job once and exit (for cron or tests).")
def worker(once: bool) -> None:
    """Run the background jobs (the only process that starts the scheduler)."""
    run_worker(once=once)


@outbox.command("drain")
@click.option("--limit", default=50, show_default=True, help="Messages claimed per round.")
def outbox_drain(limit: int) -> None:
    """Deliver due messages until nothing is due (later retries stay queued)."""
    click.echo(f"{drain(limit)} delivery attempt(s).")


@outbox.command("dead")
@click.argument("slug")
def outbox_dead(slug: str) -> None:
    """List tenant SLUG's dead messages."""
    for message in list_messages(_tenant(slug).id, "dead"):
        click.echo(f"{message.id}\t{message.ordering_key}\t{message.action.get('kind')}\t{message.attempts} attempt(s)\t"
                   f"{message.last_status_code or '-'}\t{message.last_error or ''}")


@outbox.command("show")
@click.argument("slug")
@click.argument("message_id", type=int)
def outbox_show(slug: str, message_id: int) -> None:
    """Show message MESSAGE_ID: what it sends and every delivery attempt."""
    message, attempts = get_message(_tenant(slug).id, message_id)
    click.echo(f"Message {message.id} ({message.status}, {message.attempts} attempt(s)), key {message.idempotency_key}")
    click.echo(json.dumps(message.action, indent=2, ensure_ascii=False))
    for attempt in attempts:
        click.echo(f"{attempt.attempted_at:%Y-%m-%d %H:%M:%S}\t{attempt.outcome}\t{attempt.status_code or '-'}\t"
                   f"{attempt.latency_ms:.0f} ms\t{attempt.error or ''}")


@outbox.command("replay")
@click.argument("slug")
@click.argument("message_id", type=int)
def outbox_replay(slug: str, message_id: int) -> None:
    """Queue dead message MESSAGE_ID again."""
    replay(_tenant(slug).id, message_id)
    click.echo(f"Message {message_id} queued again.")


@outbox.command("discard")
@click.argument("slug")
@click.argument("message_id", type=int)
def outbox_discard(slug: str, message_id: int) -> None:
    """Give up on dead message MESSAGE_ID."""
    discard(_tenant(slug).id, message_id)
    click.echo(f"Message {message_id} discarded.")


@integrations.command("create")
@click.argument("slug")
@click.argument("kind", type=click.Choice(list(get_args(HelpdeskKind)) + list(get_args(MailKind))))
@click.argument("name")
@click.option("--secret", help="The signing secret the helpdesk gave you (default: generate one).")
@click.option("--credential", "credential_pairs", multiple=True, metavar="NAME=VALUE",
              help="An API credential for write-back, e.g. api_token=…; repeatable.")
@click.option("--base-url", help="The helpdesk's API base URL, e.g. https://acme.zendesk.com")
@click.option("--settings", "settings_json", metavar="JSON",
              help='More settings as JSON, e.g. \'{"address": "returns@shop.example", "smtp": {"host": "…"}}\'.')
def create_integration(slug: str, kind: str, name: str, secret: str | None, credential_pairs: tuple[str, ...],
                       base_url: str | None, settings_json: str | None) -> None:
    """Connect helpdesk or mailbox KIND for tenant SLUG; prints the webhook URL and the secret (once)."""
    pairs = dict(pair.split("=", 1) for pair in credential_pairs if "=" in pair)
    try:
        settings = json.loads(settings_json) if settings_json else {}
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--settings") from None
    if not isinstance(settings, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--settings")
    if base_url:
        settings["base_url"] = base_url
    data = parse_mapping(IntegrationCreate, {"kind": kind, "name": name, "signing_secret": secret,
                                             "credentials": pairs, "settings": settings}, "option")
    connected = connector_services.connect(_tenant(slug), data)
    click.echo(f"Integration {connected.integration.id} ({kind}) created.")
    if kind != "imap":  # a polled mailbox has no webhook
        click.echo(f"Webhook URL: {_webhook_url(connected.integration)}")
        click.echo(f"Signing secret (shown once): {connected.signing_secret}")


@integrations.command("list")
@click.argument("slug")
def list_integrations(slug: str) -> None:
    """List tenant SLUG's integrations with their webhook URLs."""
    for integration in connector_services.list_integrations(_tenant(slug).id):
        state = "enabled" if integration.enabled else "disabled"
        click.echo(f"{integration.id}\t{integration.kind}\t{integration.name}\t{state}\t"
                   f"{integration.rejected_count} rejected\t{_webhook_url(integration)}")


@integrations.command("disable")
@click.argument("slug")
@click.argument("integration_id", type=int)
def disable_integration(slug: str, integration_id: int) -> None:
    """Disable an integration: its webhook URL answers 404."""
    connector_services.set_enabled(_tenant(slug), integration_id, False)
    click.echo(f"Integration {integration_id} disabled.")


@integrations.command("enable")
@click.argument("slug")
@click.argument("integration_id", type=int)
def enable_integration(slug: str, integration_id: int) -> None:
    """Enable an integration again."""
    connector_services.set_enabled(_tenant(slug), integration_id, True)
    click.echo(f"Integration {integration_id} enabled.")


@integrations.command("rotate")
@click.argument("slug")
@click.argument("integration_id", type=int)
@click.option("--secret", help="The new secret (default: generate one).")
@click.option("--grace-hours", default=24, show_default=True, help="How long the old secret still works.")
def rotate(slug: str, integration_id: int, secret: str | None, grace_hours: int) -> None:
    """Rotate the signing secret; the old one is accepted for --grace-hours."""
    rotation = SecretRotation(signing_secret=secret, grace_seconds=grace_hours * 3600)
    connected = connector_services.rotate_secret(_tenant(slug), integration_id, rotation)
    click.echo(f"New signing secret (shown once): {connected.signing_secret}")


@integrations.command("sample")
@click.argument("slug")
@click.argument("integration_id", type=int)
@click.option("--base", default="http://127.0.0.1:5000", show_default=True, help="Where Rebound runs.")
def sample(slug: str, integration_id: int, base: str) -> None:
    """Print a curl command that sends a correctly signed sample event (or mail) to the integration."""
    integration = connector_services.get_integration(_tenant(slug).id, integration_id)
    secret = connector_services.signing_secrets(integration)[0]
    url = f"{base}/webhooks/{integration.public_key}"
    if integration.kind == "imap":
        raise click.ClickException("An IMAP mailbox is polled, not called: send a mail to it instead.")
    if integration.kind in MAIL_KINDS:
        body, headers = get_mail_adapter(integration.kind).signed_sample(secret, utcnow(), secrets.token_hex(8))
        # Mail bodies may be binary forms: curl reads them from a file.
        path = Path(tempfile.gettempdir()) / f"rebound-sample-{integration.public_key[:8]}.bin"
        path.write_bytes(body)
        parts = [f"curl -sS -X POST '{url}'"] + [f"-H '{name}: {value}'" for name, value in headers.items()]
        click.echo(" \\\n  ".join(parts + [f"--data-binary @{path}"]))
        return
    adapter = get_adapter(integration.kind)
    body = adapter.sample()
    # A heredoc always ends in a newline, so sign exactly the bytes curl will send.
    if not body.endswith(b"\n"):
        body += b"\n"
    headers = adapter.sign(body, secret, utcnow(), secrets.token_hex(8))
    parts = [f"curl -sS -X POST '{url}'", "-H 'Content-Type: application/json'"]
    parts += [f"-H '{name}: {value}'" for name, value in headers.items() if name.lower() != "content-type"]
    parts.append("--data-binary @- <<'JSON'")
    click.echo(" \\\n  ".join(parts))
    click.echo(body.decode(), nl=False)
    click.echo("JSON")


def _webhook_url(integration: Integration) -> str:
    base = current_app.config["REBOUND_PUBLIC_URL"].rstrip("/")
    return f"{base}/webhooks/{integration.public_key}"


def register_cli(app: Flask) -> None:
    app.cli.add_command(integrations)
    app.cli.add_command(tenants)
    app.cli.add_command(demo)
    app.cli.add_command(worker)
    app.cli.add_command(outbox)
