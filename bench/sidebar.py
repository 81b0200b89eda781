"""Sidebar benchmark: first render of the agent panel for a ticket with a case, a million cases loaded.

The requirement it measures: with 1,000,000 cases in PostgreSQL, ``GET /sidebar/panel?t=<token>``
for a ticket that has a case, p95 ≤ 50 ms, printed beside ``GET /healthz`` measured in the same run
under the same server.

Run it from the repository root (PostgreSQL must be reachable)::

    .venv/bin/python bench/sidebar.py                  # 1,000,000 cases, 2,000 requests per figure
    .venv/bin/python bench/sidebar.py --cases 20000    # a quick run (on its own database: see --database-url)

What it does, in order:

1. Prepares the data exactly as ``bench/api.py`` does (same database ``rebound_bench``, same
   loader; a rerun finds the cases loaded and skips loading).
2. Links ``--tickets`` of the loaded cases (a random sample, every status) to tickets of a
   helpdesk integration of the bench tenant (``Bench helpdesk``, kind zammad): ``ticket_id``
   ``BENCH-<case id>`` and the integration's id, as intake would have stored them. Done once;
   a rerun reuses them.
3. Mints one panel token per request beforehand (``app.sidebar.context.issue_panel_token`` with
   the server's ``SECRET_KEY``), each for a different ticket, so every request is a first render:
   no token is reused, the panel finds the case by its ticket and renders it whole.
4. Starts ``gunicorn wsgi:app -w 4 --threads 1`` with the production configuration on a free
   local port, warms it up, then measures ``GET /healthz`` and ``GET /sidebar/panel?t=…`` from
   ``--threads`` client threads (a new TCP connection per request).
5. Prints the table (figure, n, errors, p50/p95/p99, OK/MISSED against p95 ≤ 50 ms, healthz p95 of
   the same run) and writes ``bench/results/sidebar.json``.

Targets are printed, never asserted: the exit status is 0 unless a request failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder would come first on sys.path, and bench/email.py would hide
# the standard library's email package: the repository root goes first instead, bench/ not at all.
sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import os
import random
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent

from bench.api import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    Client,
    Figure,
    Latency,
    Sample,
    loader_summary,
    prepare_data,
    fmt_ms,
    run_tasks,
    simple,
)
from bench.common import RESULTS_DIR, Server, database_name, git_commit, libpq_url, production_env  # noqa: E402

PANEL_TARGET_MS = 50.0
HELPDESK_NAME = "Bench helpdesk"
TICKET_PREFIX = "BENCH-"


def _bench_app(database_url: str, secret_key: str):  # -> Flask
    from app import create_app
    from config import DevelopmentConfig

    # The development encryption key is also given to the production server (``production_env``),
    # so both read the integration's secrets alike.
    return create_app(DevelopmentConfig, SQLALCHEMY_DATABASE_URI=database_url, SECRET_KEY=secret_key)


def link_tickets(database_url: str, tenant_id: int, tickets: int, secret_key: str, rng: random.Random) -> tuple[int, list[tuple[str, str | None]]]:
    """The bench helpdesk's integration id and ``tickets`` (ticket id, requester email) pairs of
    loaded cases linked to it; links more cases when fewer are linked."""
    import sqlalchemy as sa

    from app.cases.models import ReturnCase
    from app.connectors.models import Integration
    from app.connectors.schemas import IntegrationCreate
    from app.connectors.services import connect
    from app.extensions import db
    from app.tenants.models import Tenant

    app = _bench_app(database_url, secret_key)
    with app.app_context():
        integration = db.session.scalar(sa.select(Integration).where(
            Integration.tenant_id == tenant_id, Integration.name == HELPDESK_NAME))
        if integration is None:
            tenant = db.session.get(Tenant, tenant_id)
            integration = connect(tenant, IntegrationCreate(kind="zammad", name=HELPDESK_NAME)).integration
        integration_id = integration.id
        linked = db.session.scalar(sa.select(sa.func.count()).select_from(ReturnCase).where(
            ReturnCase.tenant_id == tenant_id, ReturnCase.integration_id == integration_id)) or 0
        db.session.rollback()
        db.engine.dispose()
    if linked < tickets:
        print(f"Linking {tickets - linked:,} loaded cases to tickets of {HELPDESK_NAME!r}", flush=True)
        with psycopg.connect(libpq_url(database_url)) as conn:
            # A sample spread over the whole id range (every age, so every status), by TABLESAMPLE-free
            # random ids: cheap on a million rows, and the same ticket never gets two cases.
            conn.execute(
                "UPDATE cases SET ticket_provider = 'zammad', ticket_id = %(prefix)s || id, integration_id = %(iid)s "
                "WHERE id IN (SELECT id FROM cases WHERE tenant_id = %(tenant)s AND integration_id IS NULL "
                "ORDER BY random() LIMIT %(n)s)",
                {"prefix": TICKET_PREFIX, "iid": integration_id, "tenant": tenant_id, "n": tickets - linked})
            conn.execute("ANALYZE cases")
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(
            "SELECT ca.ticket_id, cu.email FROM cases ca LEFT JOIN customers cu ON cu.id = ca.customer_id "
            "WHERE ca.tenant_id = %s AND ca.integration_id = %s", (tenant_id, integration_id)).fetchall()
    pairs = [(ticket, email) for ticket, email in rows]
    rng.shuffle(pairs)
    return integration_id, pairs


def mint_tokens(database_url: str, secret_key: str, tenant_id: int, integration_id: int,
                tickets: Sequence[tuple[str, str | None]], count: int) -> list[str]:
    """``count`` panel tokens, each for a ticket (cycling through them), as an entry point issues them."""
    from app.sidebar.context import PanelContext, issue_panel_token

    app = _bench_app(database_url, secret_key)
    with app.app_context():
        return [issue_panel_token(PanelContext(
            tenant_id=tenant_id, integration_id=integration_id, ticket_id=ticket, agent_id=f"agent-{n % 7}",
            agent_name="Bench Agent", requester_email=email, subject="Return request",
            helpdesk_origin="https://helpdesk.bench.example"))
            for n, (ticket, email) in zip(range(count), _cycle(tickets, count))]


def _cycle(items: Sequence[Any], count: int) -> list[Any]:
    return [items[n % len(items)] for n in range(count)]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000, help="cases to load (default: 1,000,000)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help=f"default: {DEFAULT_DATABASE_URL}")
    parser.add_argument("--requests", type=int, default=2000, help="requests per figure (default: 2000)")
    parser.add_argument("--tickets", type=int, default=5000, help="loaded cases to link to tickets (default: 5000)")
    parser.add_argument("--reload", action="store_true", help="drop and recreate the bench database, then load")
    parser.add_argument("--threads", type=int, default=2, help="client threads (default: 2)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default: 4)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the ticket sample (default: 11)")
    args = parser.parse_args(argv)
    if args.cases < 100 or args.requests < 10 or args.tickets < 1:
        parser.error("--cases must be at least 100, --requests at least 10, --tickets at least 1")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)
    rng = random.Random(args.seed)

    from config import DevelopmentConfig

    env = production_env(args.database_url, encryption_key=DevelopmentConfig.REBOUND_ENCRYPTION_KEY)
    tenant_id, _token, _config, loader = prepare_data(args)
    integration_id, tickets = link_tickets(args.database_url, tenant_id, args.tickets, env["SECRET_KEY"], rng)
    # Every request gets its own token (a first render); warm-up tokens are separate ones.
    tokens = mint_tokens(args.database_url, env["SECRET_KEY"], tenant_id, integration_id, tickets, args.requests + 200)
    warm_tokens, tokens = tokens[:200], tokens[200:]

    server = Server("wsgi:app", ["-w", str(args.workers), "--threads", "1"], env, RESULTS_DIR / "gunicorn-sidebar.log")
    print(f"Starting {server.display} (production config)", flush=True)
    load_before = os.getloadavg()

    def client() -> Client:
        return Client(server.port, "")

    try:
        server.start()
        warm = [simple("warm", "GET", "/healthz") for _ in range(100)]
        warm += [simple("warm", "GET", f"/sidebar/panel?t={t}") for t in warm_tokens]
        print(f"  warm-up: {len(warm)} requests", flush=True)
        run_tasks(warm, args.threads, client)
        print(f"  GET /healthz: {args.requests:,} requests", flush=True)
        healthz = run_tasks([simple("healthz", "GET", "/healthz") for _ in range(args.requests)], args.threads, client)
        print(f"  GET /sidebar/panel: {args.requests:,} first renders", flush=True)
        panel = run_tasks([panel_task(t) for t in tokens], args.threads, client)
    finally:
        server.stop()
    load_after = os.getloadavg()

    figures = [Figure("GET /healthz", Latency.of(healthz.samples), "baseline"),
               Figure.p95("GET /sidebar/panel?t=<fresh token> (ticket with a case)", Latency.of(panel.samples),
                          PANEL_TARGET_MS)]
    header = [
        f"Rebound sidebar benchmark, {args.cases:,} cases ({len(tickets):,} linked to tickets): gunicorn wsgi:app "
        f"-w {args.workers} --threads 1 (production config); {args.threads} client threads; {os.cpu_count()} CPUs "
        f"shared by server, database and client; load average (1 min) {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after",
        loader_summary(loader),
    ]
    print_figures(figures, header)
    rendered = [s for s in panel.samples if s.kind.startswith("panel:")]
    without_case = sum(1 for s in rendered if s.kind == "panel:no-case" and 200 <= s.status < 300)
    if without_case:
        print(f"Note: {without_case} panel page(s) showed no case number: check that the panel finds cases by ticket.")
    results = {
        "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "database": database_name(args.database_url),
        "cases": args.cases,
        "tickets_linked": len(tickets),
        "loader": loader,
        "server": {"command": f"gunicorn wsgi:app -w {args.workers} --threads 1", "config": "production"},
        "client": {"threads": args.threads, "requests": args.requests},
        "targets_ms": {"panel_first_render_p95": PANEL_TARGET_MS},
        "figures": [asdict(f) for f in figures],
        "panel_pages_without_case_number": without_case,
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_after},
    }
    out = RESULTS_DIR / "sidebar.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nResults written to {out.relative_to(ROOT)}")
    errors = sum(f.latency.errors for f in figures)
    if errors:
        print(f"{errors} request(s) failed; see {server.log_path.relative_to(ROOT)}")
        return 1
    return 0


def panel_task(token: str):  # -> Task
    """One first render; the sample's kind says whether the page showed a case number (a sanity
    check that the bench measures a ticket *with* a case, not an empty "create case" form)."""

    def task(client: Client) -> list[Sample]:
        status, body, seconds = client.call("GET", f"/sidebar/panel?t={token}")
        return [Sample("panel:case" if b"RMA-" in body else "panel:no-case", status, seconds)]

    return task


def print_figures(figures: list[Figure], header: list[str]) -> None:
    base = fmt_ms(figures[0].latency.p95_ms)
    rows = [("figure", "n", "err", "p50", "p95", "p99", "measured vs target", "healthz p95")]
    for f in figures:
        lat = f.latency
        if f.meets is not None:
            verdict = f"p95 {fmt_ms(lat.p95_ms)} ({f.target}) {'OK' if f.meets else 'MISSED'}"
        elif f.target.startswith("p95"):
            verdict = "no successful request"
        else:
            verdict = f.target
        rows.append((f.name, f"{lat.requests:,}", str(lat.errors), fmt_ms(lat.p50_ms),
                     fmt_ms(lat.p95_ms), fmt_ms(lat.p99_ms), verdict, base))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    print()
    for line in header:
        print(line)
    print()
    for n, row in enumerate(rows):
        print("  ".join([row[0].ljust(widths[0]), *(row[c].rjust(widths[c]) for c in range(1, 6)),
                         row[6].ljust(widths[6]), row[7].rjust(widths[7])]))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    panel = figures[1]
    print()
    print(f"Panel first render p95 {fmt_ms(panel.latency.p95_ms)} (target ≤ {PANEL_TARGET_MS:.0f} ms) "
          f"| healthz p95 {base}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        sys.exit(130)
