"""Webhook ingest benchmark: signed Zendesk deliveries under the production server, beside a bare endpoint.

The requirement it measures: gunicorn with the README's production settings on PostgreSQL,
correctly signed Zendesk webhooks at 50 concurrent connections for at least 20 s, beside a bare
Flask endpoint answering 204 under the same server in the same run. Targets: ingest throughput
≥ 50 % of the bare endpoint's; ingest p99 ≤ 50 ms; afterwards the stored inbound events are
exactly the distinct deliveries sent (nothing lost, nothing doubled).

Run it from the repository root (PostgreSQL and ``wrk`` must be there; the bench says how to
install ``wrk`` when it is missing: ``apt-get update && apt-get install -y wrk``)::

    .venv/bin/python bench/ingest.py                       # 50 connections, 20 s per endpoint
    .venv/bin/python bench/ingest.py --duration 30 --profile 2000
    .venv/bin/python bench/ingest.py --gunicorn-options "--workers 2 --worker-class gthread --threads 16 --access-logfile -"   # threads instead of gevent
    .venv/bin/python bench/ingest.py --drain-workers 0        # skip processing the queued events afterwards

What it does, in order:

1. Drops and creates the bench database (``--database-url``, default ``rebound_ingest_bench`` on
   the local server), migrates it (``flask_migrate.upgrade``), creates a tenant
   (``app.tenants.services.create_tenant``) and a Zendesk integration
   (``app.connectors.services.connect``), its secrets encrypted with a Fernet key that the
   server then gets as ``REBOUND_ENCRYPTION_KEY``.
2. Starts ``gunicorn bench.bare_app:app`` with the options of the README's "Running in
   production" command (read from README.md on every run; ``--bind`` becomes a free local port)
   and ``REBOUND_CONFIG=production`` — so ``REBOUND_INBOUND_PROCESSING=worker``: the webhook
   verifies and records, answers ``queued``, and leaves processing to ``flask worker`` (set
   ``REBOUND_INBOUND_PROCESSING=inline`` in the environment to measure processing in the request). ``bench/bare_app.py`` is ``create_app()`` plus one route,
   ``POST /bench/bare``, which reads the body and answers 204: both endpoints are served by the
   same server processes with the same settings.
3. Warms both endpoints up for a few seconds (lazy imports, database connections), with
   deliveries of their own that are left out of the accounting below.
4. Measures the bare endpoint: ``wrk -t2 -c50 -d20s --latency`` with ``bench/wrk/deliveries.lua``
   sending the same kind of requests (Zendesk headers and bodies) to ``/bench/bare``. It is
   measured again after the webhook (step 7), and the webhook is compared with the mean of the
   two runs, so a machine that got busier or quieter during the run shows (a note is printed
   when the two differ by more than 15 %).
5. Sizes the ingest set from the bare rate (the webhook cannot be faster than the bare endpoint:
   1.3 × bare req/s × duration, at least 20,000), loads one order per return request in it, then
   builds the deliveries and signs each with ``integrations.zendesk.ZendeskAdapter.sign`` — the
   headers Zendesk sends — right before the run, because Zendesk's signature timestamp is only
   valid for 5 minutes. Each delivery is distinct: its own invocation id
   (``X-Zendesk-Webhook-Invocation-Id``, the inbox's delivery key) and its own body. The mix:

   ====  ===================================================================  ==================
   20 %  return request naming a loaded order and one of its SKUs (trigger)    opens a case
    5 %  return request naming an order that does not exist (trigger)          suggestion
   20 %  customer question, not a return (trigger)                             ignored
   25 %  agent reply / ticket update by an agent (trigger)                     ignored
   10 %  customer follow-up on the ticket of an earlier return request          note on the case
   20 %  Zendesk event-subscription payload (status/priority/tags changed, or   ignored
         an agent comment), the ``zen:event-type:`` schema
   ====  ===================================================================  ==================

6. Measures the webhook, ``POST /webhooks/<key>``, the same way: each wrk thread reads its own
   file of pre-built requests and sends each at most once (a thread that ran out would start over
   and count every resend as a deliberate duplicate; it should not happen).
7. Waits until the inbox stops changing (requests in flight when wrk stopped are still served),
   measures the bare endpoint again, then counts what was stored: inbound events of the run
   against the distinct deliveries wrk generated (by delivery key, so a lost or an unexpected
   event is named, not only counted), events per status and outcome, cases opened, tickets with
   more than one case, events processed more than once.
   In worker mode the web nodes leave the events ``received``; with ``--drain-workers N``
   (default 2) the bench then runs N ``flask worker`` processes (production config, the server
   stopped) until none is left, and reports how fast they processed them and whether any event
   was processed twice.
8. Prints a table and the verdicts, writes ``bench/results/ingest.json`` (the wrk outputs, the
   gunicorn log and, with ``--profile``, the profile sit beside it) and stops gunicorn.
9. With ``--profile N``: runs N more deliveries in-process through the Flask test client
   (production config, same database), timing each step of the webhook (find the integration in
   the cache, verify, parse, record (handed to the process's group-commit writer: one
   multi-row INSERT and commit per batch), process when inline) and counting SQL
   statements and commits per request, and the Python CPU time against the wall time (the rest
   is waiting on PostgreSQL); then a cProfile of the same path. One request at a time and no
   server running: the cost of one request, not its latency under load.

Figures are client-side (wrk, from sending a request to its last byte), on the same two-core
machine as gunicorn and PostgreSQL: wrk's threads take CPU from the server too. Throughput is
2xx responses per second. Targets are printed, never asserted; the exit status is 1 when a
delivery was lost or doubled, a request failed (non-2xx or a socket error) or the run could not
complete, else 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder would come first on sys.path, and bench/email.py would hide
# the standard library's email package: the repository root goes first instead, bench/ not at all.
sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

import psycopg  # noqa: E402

from bench.common import (  # noqa: E402
    RESULTS_DIR,
    Server,
    database_name,
    ensure_database,
    git_commit,
    libpq_url,
    machine,
    production_env,
    readme_gunicorn_args,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/rebound_ingest_bench"
LUA_SCRIPT = ROOT / "bench" / "wrk" / "deliveries.lua"
RATIO_TARGET = 0.5
P99_TARGET_MS = 50.0
MIN_DELIVERIES = 20_000
WARMUP_SECONDS = 4
WRK_INSTALL = "apt-get update && apt-get install -y wrk"


# ---- the deliveries --------------------------------------------------------------------------

PRODUCTS = (
    ("TENT-2P", "Trailhead 2-person tent", "249.00", "tents"),
    ("BOOT-42", "Ridge hiking boots, 42", "139.90", "footwear"),
    ("JKT-M", "Summit rain jacket, M", "189.00", "apparel"),
    ("LAMP-400", "Aurora headlamp 400 lm", "49.90", "electronics"),
    ("STOVE-1", "Canyon gas stove", "59.00", "cooking"),
    ("PACK-38", "Granite backpack 38 l", "129.00", "backpacks"),
    ("BAG-3S", "Tundra sleeping bag, 3 seasons", "219.00", "sleeping"),
    ("SOCK-3", "Merino hiking socks, 3 pairs", "24.00", "underwear"),
    ("FLC-L", "Meadow fleece, L", "79.00", "apparel"),
    ("GLV-M", "Alpine gloves, M", "39.00", "apparel"),
)
FIRST_NAMES = ("Maria", "Jonas", "Claire", "Sam", "Aiko", "Luca", "Nora", "Omar", "Ines", "Pavel", "Grace", "Tomas")
LAST_NAMES = ("Lopez", "Becker", "Martin", "Okafor", "Tanaka", "Rossi", "Berg", "Haddad", "Silva", "Novak", "Kim")
RETURN_TEXTS = (
    "Hi, I'd like to return the {title} ({sku}) from order #{order}, it is too small. Can I get a refund? {name}",
    "Hello, I want to return {sku} from order #{order}. The {title} is too large for me. Please send a label. {name}",
    "I'd like to send back the {title} ({sku}), order #{order}. It doesn't fit. Refund please. Regards, {name}",
    "Please can I return order #{order}? The {title} ({sku}) arrived and I no longer need it. {name}",
)
UNKNOWN_ORDER_TEXTS = (
    "Hi, I want to return my {title} from order #{order}, it arrived broken. What do I do? {name}",
    "Hello, I would like a refund for order #{order}; the {title} is damaged. {name}",
)
QUESTION_TEXTS = (
    "Hi, when will my order #{order} ship? Thanks, {name}",
    "Do you deliver to Norway? I'd like to order the {title}. {name}",
    "Can I change the delivery address of order #{order}? {name}",
    "Is the {title} waterproof? Thanks! {name}",
    "My discount code does not work at checkout, can you help? {name}",
)
AGENT_TEXTS = (
    "Thanks for reaching out! I've forwarded this to our warehouse team.",
    "Hi {name}, your parcel left our warehouse today; tracking follows by email.",
    "Closing this ticket as solved. Reply any time if you need more help.",
    "Internal: customer called, issue resolved on the phone.",
)
FOLLOW_UP_TEXTS = (
    "I've packed the {title}, where do I send it? {name}",
    "Hi again, any news on my return for order #{order}? {name}",
    "Thanks, I printed the label and will drop the parcel off tomorrow. {name}",
)
EVENT_TYPES = ("ticket.status_changed", "ticket.priority_changed", "ticket.tags_changed", "ticket.comment_added")
EVENT_SUBJECTS = ("Where is my parcel?", "Invoice for my order", "Change of address", "Question about sizes",
                  "Order not received yet", "Newsletter unsubscribe")
MIX = (("return", 20), ("return_unknown_order", 5), ("question", 20), ("agent_update", 25), ("follow_up", 10),
       ("event", 20))
FOLLOW_UP_DISTANCE = 400  # a follow-up refers to a return request sent at least this many deliveries earlier


@dataclass(frozen=True)
class BenchOrder:
    number: str
    email: str
    name: str
    lines: tuple[tuple[str, str], ...]  # (sku, title)


@dataclass
class Delivery:
    invocation_id: str
    kind: str
    ticket_id: str
    body: bytes


def synthetic_orders(count: int, first_number: int, rng: random.Random) -> list[BenchOrder]:
    """``count`` orders of 1-3 products, one customer each (returns of one customer do not pile up)."""
    orders = []
    for k in range(count):
        number = first_number + k
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        email = f"customer{number}@bench.example"
        products = rng.sample(PRODUCTS, rng.choice((1, 1, 2, 3)))
        orders.append(BenchOrder(str(number), email, name, tuple((p[0], p[1]) for p in products)))
    return orders


def build_deliveries(count: int, orders: Sequence[BenchOrder], rng: random.Random, first_ticket: int,
                     tag: str) -> list[Delivery]:
    """``count`` distinct deliveries in the mix above; each return request uses the next order of
    ``orders`` (so ``orders`` needs one order per return request)."""
    kinds, weights = zip(*MIX, strict=True)
    plan = rng.choices(kinds, weights, k=count)
    first = datetime.now(timezone.utc) - timedelta(milliseconds=count)
    returns: list[tuple[int, str, BenchOrder]] = []  # (position, ticket id, order) of the return requests so far
    next_order = 0
    eligible = 0  # returns[:eligible] were sent at least FOLLOW_UP_DISTANCE deliveries ago
    deliveries = []
    for i, kind in enumerate(plan):
        # Every delivery is a different moment (millisecond resolution): no two bodies are equal.
        stamp = (first + timedelta(milliseconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        ticket = str(first_ticket + i)
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        email = f"{name.lower().replace(' ', '.')}.{first_ticket + i}@mail.example"
        product = rng.choice(PRODUCTS)
        while eligible < len(returns) and returns[eligible][0] <= i - FOLLOW_UP_DISTANCE:
            eligible += 1
        if kind == "follow_up" and not eligible:
            kind = "question"
        if kind == "return" and next_order >= len(orders):
            kind = "return_unknown_order"
        if kind == "return":
            order = orders[next_order]
            next_order += 1
            sku, title = rng.choice(order.lines)
            text = rng.choice(RETURN_TEXTS).format(title=title, sku=sku, order=order.number, name=order.name)
            payload = trigger_body(ticket, "created", "End-user", text, "Return request", order.email, order.name,
                                   stamp)
            returns.append((i, ticket, order))
        elif kind == "return_unknown_order":
            text = rng.choice(UNKNOWN_ORDER_TEXTS).format(title=product[1], order=900_000_000 + i, name=name)
            payload = trigger_body(ticket, "created", "End-user", text, "Refund", email, name, stamp)
        elif kind == "question":
            text = rng.choice(QUESTION_TEXTS).format(title=product[1], order=800_000_000 + i, name=name)
            payload = trigger_body(ticket, "created", "End-user", text, "Question", email, name, stamp)
        elif kind == "agent_update":
            text = rng.choice(AGENT_TEXTS).format(name=name.split()[0])
            payload = trigger_body(ticket, "updated", "Agent", text, "Re: your order", email, name, stamp)
        elif kind == "follow_up":
            _, ticket, order = returns[rng.randrange(max(0, eligible - 2000), eligible)]
            sku, title = order.lines[0]
            text = rng.choice(FOLLOW_UP_TEXTS).format(title=title, order=order.number, name=order.name)
            payload = trigger_body(ticket, "updated", "End-user", text, "Re: Return request", order.email, order.name,
                                   stamp)
        else:
            payload = event_body(ticket, rng.choice(EVENT_TYPES), rng.choice(EVENT_SUBJECTS), rng, stamp)
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        deliveries.append(Delivery(f"{tag}-{uuid.UUID(int=rng.getrandbits(128), version=4)}", kind, ticket, body))
    if len({d.invocation_id for d in deliveries}) != count or len({d.body for d in deliveries}) != count:
        raise RuntimeError("the generated deliveries are not all distinct")
    return deliveries


def trigger_body(ticket: str, event: str, role: str, comment: str, subject: str, email: str, name: str,
                 stamp: str) -> dict[str, Any]:
    """Our Zendesk trigger body as Zendesk renders it (the fields ``integrations.zendesk`` reads)."""
    return {
        "ticket_id": ticket, "event": event, "subject": subject, "status": "open",
        "requester_email": email, "requester_name": name, "requester_id": str(360_000_000 + int(ticket)),
        "author_role": role, "latest_comment": comment, "tags": "web_widget",
        "ticket_url": f"https://acme.zendesk.com/agent/tickets/{ticket}", "locale": "en-US",
        "created_at": stamp, "updated_at": stamp,
    }


def event_body(ticket: str, kind: str, subject: str, rng: random.Random, stamp: str) -> dict[str, Any]:
    """A Zendesk event-subscription payload (``zen:event-type:…``) for a ticket change by an agent."""
    requester, agent = str(370_000_000 + int(ticket)), str(380_000_000 + rng.randrange(50))
    payload: dict[str, Any] = {
        "type": f"zen:event-type:{kind}", "account_id": 22129848, "id": str(uuid.UUID(int=rng.getrandbits(128))),
        "time": stamp, "zendesk_event_version": "2022-11-06", "subject": f"zen:ticket:{ticket}",
        "detail": {
            "actor_id": agent, "assignee_id": agent, "brand_id": "360001234567", "created_at": stamp,
            "description": "", "id": ticket, "is_public": True, "priority": "NORMAL", "requester_id": requester,
            "status": rng.choice(("OPEN", "PENDING", "SOLVED")), "subject": subject, "submitter_id": requester,
            "tags": ["web_widget"], "type": "QUESTION", "updated_at": stamp, "via": {"channel": "web_form"},
        },
        "event": {},
    }
    if kind == "ticket.comment_added":
        payload["event"] = {"comment": {"id": str(rng.getrandbits(40)), "body": "We are looking into it.",
                                        "is_public": True, "author": {"id": agent, "is_staff": True, "name": "Agent"}}}
    return payload


def raw_request(path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "User-Agent: Zendesk Webhook", "Accept: */*"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def write_request_files(prefix: Path, requests: Sequence[bytes], threads: int) -> list[list[int]]:
    """Deal ``requests`` round-robin into ``prefix.<thread>.req``; returns each thread's request indexes
    in sending order."""
    shares: list[list[int]] = [list(range(t, len(requests), threads)) for t in range(threads)]
    for t, share in enumerate(shares):
        with open(f"{prefix}.{t}.req", "wb") as out:
            for index in share:
                out.write(b"%d\n" % len(requests[index]))
                out.write(requests[index])
    return shares


def sign_all(deliveries: Sequence[Delivery], path: str, host: str, secret: str) -> tuple[list[bytes], datetime]:
    """Each delivery as a complete HTTP request with the headers Zendesk sends, signed now."""
    from integrations import get_adapter

    adapter = get_adapter("zendesk")
    now = datetime.now(timezone.utc)
    requests = [raw_request(path, host, adapter.sign(d.body, secret, now, d.invocation_id), d.body)
                for d in deliveries]
    return requests, now


# ---- database --------------------------------------------------------------------------------

@dataclass
class Setup:
    tenant_id: int
    integration_id: int
    public_key: str
    signing_secret: str
    encryption_key: str


def setup_app(database_url: str, encryption_key: str):  # noqa: ANN201  (a Flask app)
    from app import create_app
    from config import DevelopmentConfig

    return create_app(DevelopmentConfig, SQLALCHEMY_DATABASE_URI=database_url, REBOUND_ENCRYPTION_KEY=encryption_key)


def prepare_database(database_url: str) -> Setup:
    """A fresh database: migrated, one tenant, one Zendesk integration (through the app's services)."""
    import flask_migrate
    from cryptography.fernet import Fernet

    from app.connectors.schemas import IntegrationCreate
    from app.connectors.services import connect
    from app.extensions import db
    from app.tenants.models import Tenant
    from app.tenants.services import create_tenant

    ensure_database(database_url, recreate=True)
    key = Fernet.generate_key().decode()
    app = setup_app(database_url, key)
    with app.app_context():
        flask_migrate.upgrade()
        issued = create_tenant("Rebound Ingest Bench", slug="ingest-bench", currency="USD")
        tenant = db.session.get(Tenant, issued.token.tenant_id)
        connected = connect(tenant, IntegrationCreate(kind="zendesk", name="Zendesk (bench)"))
        setup = Setup(tenant.id, connected.integration.id, connected.integration.public_key,
                      connected.signing_secret, key)
        db.engine.dispose()
    return setup


def load_orders(database_url: str, setup: Setup, orders: Sequence[BenchOrder]) -> float:
    """Insert ``orders`` (customers, orders, lines) for the bench tenant; returns the seconds it took."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.orders.models import Customer, Order, OrderLine

    started = time.perf_counter()
    if not orders:
        return 0.0
    prices = {p[0]: (Decimal(p[2]), p[3]) for p in PRODUCTS}
    today = date.today()
    app = setup_app(database_url, setup.encryption_key)
    with app.app_context():
        for start in range(0, len(orders), 5000):
            chunk = orders[start:start + 5000]
            customer_ids = db.session.scalars(
                sa.insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                [{"tenant_id": setup.tenant_id, "email": o.email, "name": o.name} for o in chunk]).all()
            order_ids = db.session.scalars(
                sa.insert(Order).returning(Order.id, sort_by_parameter_order=True),
                [{"tenant_id": setup.tenant_id, "number": o.number, "customer_id": cid, "currency": "USD",
                  "ordered_on": today - timedelta(days=12), "delivered_on": today - timedelta(days=8),
                  "total": sum(prices[sku][0] for sku, _ in o.lines)}
                 for o, cid in zip(chunk, customer_ids, strict=True)]).all()
            db.session.execute(sa.insert(OrderLine), [
                {"tenant_id": setup.tenant_id, "order_id": oid, "sku": sku, "title": title, "quantity": 1,
                 "unit_price": prices[sku][0], "category": prices[sku][1], "tags": [], "final_sale": False}
                for o, oid in zip(chunk, order_ids, strict=True) for sku, title in o.lines])
            db.session.commit()
        db.engine.dispose()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        for table in ("customers", "orders", "order_lines"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
    return time.perf_counter() - started


def stored_keys(database_url: str, integration_id: int) -> set[str]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return {row[0] for row in conn.execute(
            "SELECT delivery_key FROM inbound_events WHERE integration_id = %s", (integration_id,))}


def wait_until_settled(database_url: str, integration_id: int, max_seconds: float) -> tuple[float, int]:
    """Wait until the inbox stops growing and no event is being processed; returns (seconds waited, events
    still processing). Events left ``received`` are not waited for: that is where an app that leaves the
    processing to the worker keeps them."""
    started = time.monotonic()
    last, stable_since = -1, time.monotonic()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        while True:
            total, busy = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'processing') "
                "FROM inbound_events WHERE integration_id = %s", (integration_id,)).fetchone()
            now = time.monotonic()
            if total != last:
                last, stable_since = total, now
            if (busy == 0 and now - stable_since >= 1.5) or now - started >= max_seconds:
                return now - started, busy
            time.sleep(0.25)


@dataclass
class Drain:
    workers: int
    waiting_before: int  # events of the bench integration left "received" by the web nodes
    seconds: float
    left: int  # still "received" or "failed" when the drain stopped
    per_s: float
    command: str


def drain_with_workers(database_url: str, setup: Setup, workers: int, max_seconds: float) -> Drain | None:
    """Worker mode leaves new events ``received``: run ``flask worker`` processes (production config)
    until none is left, and time them. None when there was nothing to do (inline mode)."""
    def waiting(conn: psycopg.Connection) -> int:
        return conn.execute("SELECT count(*) FROM inbound_events WHERE integration_id = %s AND status IN "
                            "('received', 'processing', 'failed')", (setup.integration_id,)).fetchone()[0]

    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        before = waiting(conn)
        if before == 0:
            return None
        env = production_env(database_url, setup.encryption_key) | {"REBOUND_INBOUND_PROCESSING": "worker"}
        command = [str(Path(sys.executable).parent / "flask"), "worker"]
        processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                      stderr=open(RESULTS_DIR / f"ingest-worker-{n}.log", "wb"),
                                      start_new_session=True) for n in range(workers)]
        started = time.monotonic()
        try:
            left = before
            while left and time.monotonic() - started < max_seconds:
                time.sleep(0.5)
                left = waiting(conn)
                if any(p.poll() is not None for p in processes):
                    raise RuntimeError("a flask worker exited; see bench/results/ingest-worker-*.log")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)  # the group we started: this worker only
                    process.wait(timeout=5)
        seconds = time.monotonic() - started
    return Drain(workers, before, seconds, left, (before - left) / seconds if seconds else 0.0,
                 f"{workers} x flask worker (REBOUND_CONFIG=production)")


@dataclass
class Inbox:
    events: int
    distinct_keys: int
    by_status: dict[str, int]
    by_outcome: dict[str, int]
    processed_more_than_once: int
    cases: int
    cases_from_run: int
    tickets_with_several_cases: int
    suggestions: int
    case_statuses: dict[str, int]


def inbox_summary(database_url: str, setup: Setup, keys: set[str]) -> Inbox:
    """What the database holds for the deliveries with ``keys`` (and the tenant's cases)."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute("CREATE TEMP TABLE run_keys (k text PRIMARY KEY)")
        with conn.cursor().copy("COPY run_keys (k) FROM STDIN") as copy:
            for key in keys:
                copy.write_row((key,))
        events, distinct, twice = conn.execute(
            "SELECT count(*), count(DISTINCT e.delivery_key), count(*) FILTER (WHERE e.attempts > 1) "
            "FROM inbound_events e JOIN run_keys r ON r.k = e.delivery_key WHERE e.integration_id = %s",
            (setup.integration_id,)).fetchone()
        by_status = dict(conn.execute(
            "SELECT e.status, count(*) FROM inbound_events e JOIN run_keys r ON r.k = e.delivery_key "
            "WHERE e.integration_id = %s GROUP BY 1 ORDER BY 2 DESC", (setup.integration_id,)).fetchall())
        by_outcome = dict(conn.execute(
            "SELECT coalesce(e.outcome->>'outcome', e.status), count(*) FROM inbound_events e "
            "JOIN run_keys r ON r.k = e.delivery_key WHERE e.integration_id = %s GROUP BY 1 ORDER BY 2 DESC",
            (setup.integration_id,)).fetchall())
        cases = conn.execute("SELECT count(*) FROM cases WHERE tenant_id = %s", (setup.tenant_id,)).fetchone()[0]
        from_run = conn.execute(
            "SELECT count(DISTINCT e.case_id) FROM inbound_events e JOIN run_keys r ON r.k = e.delivery_key "
            "WHERE e.integration_id = %s AND e.outcome->>'outcome' = 'case_created'",
            (setup.integration_id,)).fetchone()[0]
        several = conn.execute(
            "SELECT count(*) FROM (SELECT ticket_id FROM cases WHERE tenant_id = %s AND ticket_id IS NOT NULL "
            "GROUP BY ticket_id HAVING count(*) > 1) t", (setup.tenant_id,)).fetchone()[0]
        suggestions = conn.execute("SELECT count(*) FROM suggestions WHERE tenant_id = %s",
                                   (setup.tenant_id,)).fetchone()[0]
        case_statuses = dict(conn.execute(
            "SELECT status, count(*) FROM cases WHERE tenant_id = %s GROUP BY 1 ORDER BY 2 DESC",
            (setup.tenant_id,)).fetchall())
    return Inbox(events, distinct, by_status, by_outcome, twice, cases, from_run, several, suggestions, case_statuses)


# ---- wrk -------------------------------------------------------------------------------------

@dataclass
class WrkRun:
    name: str
    command: str
    duration_s: float
    requests: int  # completed responses (wrk's count)
    ok: int  # 2xx responses
    non2xx: int
    socket_errors: dict[str, int]
    generated: int  # requests the script handed to wrk (sent, or in flight when wrk stopped)
    replayed: int
    loaded: int
    per_thread_generated: dict[int, int]
    statuses: dict[str, int]
    outcomes: dict[str, int]
    latency_ms: dict[str, float]
    output: str = field(repr=False, default="")

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + sum(self.socket_errors.values())


def find_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "bench/ingest.py needs wrk, the HTTP load generator (Debian's package 'wrk'), and it is not "
            f"installed.\nInstall it with:\n\n    {WRK_INSTALL}\n\n(as root, or with sudo) and run the bench again.")
    return wrk


def _pairs(text: str) -> dict[str, int]:
    result: dict[str, int] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.rpartition(":")
        result[key] = result.get(key, 0) + int(float(value))
    return result


def run_wrk(wrk: str, name: str, port: int, prefix: Path, threads: int, connections: int, seconds: int,
            output_path: Path | None) -> WrkRun:
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
               "-s", str(LUA_SCRIPT), f"http://127.0.0.1:{port}", "--", str(prefix)]
    shown = " ".join(["wrk", *command[1:-3], "<url>"])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
    if output_path is not None:
        output_path.write_text(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}")
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    values = dict(item.split("=", 1) for item in line.split()[1:])
    num = {k: float(v) for k, v in values.items() if re.fullmatch(r"-?[0-9.e+]+", v)}
    duration = num["duration_us"] / 1e6
    return WrkRun(
        name=name, command=shown, duration_s=duration, requests=int(num["requests"]), ok=int(num["ok"]),
        non2xx=int(num["non2xx"]),
        socket_errors={k: int(num[f"err_{k}"]) for k in ("connect", "read", "write", "timeout")},
        generated=int(num["generated"]), replayed=int(num["replayed"]), loaded=int(num["loaded"]),
        per_thread_generated={int(k): v for k, v in _pairs(values.get("per_thread", "")).items()},
        statuses=_pairs(values.get("statuses", "")), outcomes=_pairs(values.get("outcomes", "")),
        latency_ms={k: num[k] / 1000 for k in ("p50", "p75", "p90", "p99", "p999")}
        | {"mean": num["lat_mean"] / 1000, "max": num["lat_max"] / 1000},
        output=done.stdout + done.stderr,
    )


# ---- the in-process profile ------------------------------------------------------------------

@dataclass
class Profile:
    requests: int
    mean_ms: float
    cpu_ms: float  # CPU time of this Python process per request; the rest of mean_ms is waiting on PostgreSQL
    steps_ms: dict[str, float]
    sql_per_request: float
    commits_per_request: float
    statuses: dict[str, int]
    top: str


def profile_in_process(database_url: str, setup: Setup, count: int, rng: random.Random) -> Profile:
    """Time each step of ``POST /webhooks/<key>`` in-process (production config), then cProfile it."""
    os.environ.update({k: v for k, v in production_env(database_url, setup.encryption_key).items()
                       if k in ("REBOUND_CONFIG", "DATABASE_URL", "SECRET_KEY", "REBOUND_ENCRYPTION_KEY")})
    import sqlalchemy as sa

    import app.inbound.services as inbox
    import app.inbound.webhooks as webhooks
    from app import create_app
    from app.extensions import db
    from integrations import get_adapter

    app = create_app()
    orders = synthetic_orders((2 * count + 100) * 3 // 10 + 10, 50_000_000, rng)  # one per return request
    load_orders(database_url, setup, orders)
    deliveries = build_deliveries(count * 2 + 100, orders, rng, 60_000_000, "profile")
    adapter = get_adapter("zendesk")
    client = app.test_client()
    path = f"/webhooks/{setup.public_key}"

    def send(delivery: Delivery) -> tuple[int, str]:
        headers = adapter.sign(delivery.body, setup.signing_secret, datetime.now(timezone.utc), delivery.invocation_id)
        response = client.post(path, data=delivery.body, headers=headers)
        return response.status_code, (response.get_json(silent=True) or {}).get("status", "?")

    steps: Counter[str] = Counter()
    statements = commits = 0

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                steps[name] += time.perf_counter() - start
        return wrapper

    originals_inbox = {name: getattr(inbox, name)
                       for name in ("receiver_for", "record_event", "process_event", "handle_ticket_event")}
    original_get_adapter = webhooks.get_adapter

    class TimedAdapter:
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.verify = timed("verify signature", inner.verify)
            self.parse = timed("parse payload", inner.parse)
            self.handshake = inner.handshake
            self.delivery_key = inner.delivery_key

    def count_statement(*_: Any) -> None:
        nonlocal statements
        statements += 1

    def count_commit(*_: Any) -> None:
        nonlocal commits
        commits += 1

    statuses: Counter[str] = Counter()
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count_statement)
    sa.event.listen(engine, "commit", count_commit)
    inbox.receiver_for = timed("find integration (cached)", originals_inbox["receiver_for"])
    webhooks.get_adapter = lambda kind: TimedAdapter(original_get_adapter(kind))
    webhooks.services.record_event = timed("record event (group INSERT + commit)", originals_inbox["record_event"])
    webhooks.services.process_event = timed("process event (claim, intake, COMMIT)", originals_inbox["process_event"])
    inbox.handle_ticket_event = timed("  of which intake (handle_ticket_event)", originals_inbox["handle_ticket_event"])
    try:
        for delivery in deliveries[:100]:  # warm-up: imports, connections, caches
            send(delivery)
        steps.clear()
        statements = commits = 0
        measured = deliveries[100:100 + count]
        start, cpu_start = time.perf_counter(), time.process_time()
        for delivery in measured:
            status, outcome = send(delivery)
            statuses[f"{status} {outcome}"] += 1
        total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        sql_count, commit_count = statements, commits
    finally:
        inbox.receiver_for = originals_inbox["receiver_for"]
        webhooks.get_adapter = original_get_adapter
        webhooks.services.record_event = originals_inbox["record_event"]
        webhooks.services.process_event = originals_inbox["process_event"]
        inbox.handle_ticket_event = originals_inbox["handle_ticket_event"]
        sa.event.remove(engine, "before_cursor_execute", count_statement)
        sa.event.remove(engine, "commit", count_commit)

    order = ("find integration (cached)", "verify signature", "parse payload", "record event (group INSERT + commit)", "process event (claim, intake, COMMIT)",
             "  of which intake (handle_ticket_event)")
    steps_ms = {name: steps[name] * 1000 / count for name in order}
    steps_ms["rest (Flask, headers, JSON answer, test client)"] = total * 1000 / count - sum(
        v for k, v in steps_ms.items() if not k.startswith("  "))

    profiler = cProfile.Profile()
    profiler.enable()
    for delivery in deliveries[100 + count:100 + 2 * count]:
        send(delivery)
    profiler.disable()
    profiler.dump_stats(RESULTS_DIR / "ingest-profile.pstats")
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(35)
    text.write("\n")
    stats.sort_stats("tottime").print_stats(25)
    with app.app_context():
        db.engine.dispose()
    return Profile(count, total * 1000 / count, cpu * 1000 / count, steps_ms, sql_count / count,
                   commit_count / count, dict(statuses), text.getvalue())


# ---- report ----------------------------------------------------------------------------------

def fmt_ms(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1f} ms"


def print_table(runs: Sequence[WrkRun]) -> None:
    rows = [("endpoint", "2xx", "non-2xx", "sock err", "2xx/s", "p50", "p90", "p99", "max")]
    for r in runs:
        lat = r.latency_ms
        rows.append((r.name, f"{r.ok:,}", f"{r.non2xx:,}", f"{sum(r.socket_errors.values()):,}", f"{r.ok_per_s:,.1f}",
                     fmt_ms(lat["p50"]), fmt_ms(lat["p90"]), fmt_ms(lat["p99"]), fmt_ms(lat["max"])))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = (cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))
        print("  ".join([row[0].ljust(widths[0]), *cells]))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL,
                        help=f"dropped and created again on every run (default: {DEFAULT_DATABASE_URL})")
    parser.add_argument("--duration", type=int, default=20, help="seconds per endpoint (default: 20, at least 20)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections (default: 50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default: 2)")
    parser.add_argument("--deliveries", type=int, default=0,
                        help="distinct deliveries to sign for the ingest run (default: sized from the bare rate)")
    parser.add_argument("--gunicorn-options", default=None,
                        help="gunicorn options instead of the README's (to compare settings; --bind is added)")
    parser.add_argument("--app", default="bench.bare_app:app",
                        help="WSGI app to serve (default: bench.bare_app:app); a variant must keep POST /bench/bare")
    parser.add_argument("--settle-seconds", type=float, default=60.0,
                        help="longest wait for requests still in flight after wrk stops (default: 60)")
    parser.add_argument("--drain-workers", type=int, default=2, metavar="N",
                        help="afterwards, run N `flask worker` processes until the events the web nodes left "
                             "for the worker (REBOUND_INBOUND_PROCESSING=worker) are processed; 0: skip (default: 2)")
    parser.add_argument("--drain-seconds", type=float, default=900.0,
                        help="longest drain (default: 900)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="afterwards, profile N deliveries in-process (default: 0, no profile)")
    parser.add_argument("--keep-files", action="store_true", help="keep the signed request files")
    parser.add_argument("--seed", type=int, default=11, help="seed of the delivery mix (default: 11)")
    parser.add_argument("--output", default=str(RESULTS_DIR / "ingest.json"), help="results file")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.connections < 1 or args.threads < 1 or args.connections < args.threads:
        parser.error("--duration, --connections and --threads must be positive, connections ≥ threads")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = find_wrk()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up on SIGTERM as on Ctrl-C
    rng = random.Random(args.seed)
    readme_options, readme_command = readme_gunicorn_args()
    options = shlex.split(args.gunicorn_options) if args.gunicorn_options is not None else readme_options
    notes: list[str] = []
    if args.duration < 20:
        notes.append(f"--duration {args.duration} is shorter than the 20 s the requirement asks for.")

    url = args.database_url
    print(f"Database {database_name(url)}: dropping, creating, migrating; tenant and Zendesk integration", flush=True)
    setup = prepare_database(url)
    files = Path(tempfile.mkdtemp(prefix="ingest-", dir=RESULTS_DIR))
    server = Server(args.app, options, production_env(url, setup.encryption_key),
                    RESULTS_DIR / "ingest-gunicorn.log")
    host = f"127.0.0.1:{server.port}"
    webhook_path = f"/webhooks/{setup.public_key}"
    threads, connections, seconds = args.threads, args.connections, args.duration
    load_before = os.getloadavg()
    try:
        print(f"Starting {server.display} (REBOUND_CONFIG=production; README: {readme_command})", flush=True)
        server.start()
        print(f"gunicorn master {server.pid}, workers {server.worker_pids()}", flush=True)

        # Warm-up: both endpoints, with deliveries of their own (left out of the accounting).
        warm_orders = synthetic_orders(2000, 10_000_000, rng)
        load_orders(url, setup, warm_orders)
        warm = build_deliveries(10_000, warm_orders, rng, 10_000_000, "warm")
        bare_requests, _ = sign_all(warm, "/bench/bare", host, setup.signing_secret)
        write_request_files(files / "bare", bare_requests, threads)
        warm_requests, _ = sign_all(warm, webhook_path, host, setup.signing_secret)
        write_request_files(files / "warm", warm_requests, threads)
        print(f"Warm-up: {WARMUP_SECONDS} s per endpoint", flush=True)
        run_wrk(wrk, "warm-up bare", server.port, files / "bare", threads, connections, WARMUP_SECONDS, None)
        run_wrk(wrk, "warm-up webhook", server.port, files / "warm", threads, connections, WARMUP_SECONDS, None)
        wait_until_settled(url, setup.integration_id, args.settle_seconds)
        before = stored_keys(url, setup.integration_id)

        print(f"Bare endpoint: {threads} wrk threads, {connections} connections, {seconds} s", flush=True)
        bare = run_wrk(wrk, "POST /bench/bare (204), before", server.port, files / "bare", threads, connections,
                       seconds, RESULTS_DIR / "ingest-wrk-bare.txt")
        print(f"  {bare.ok_per_s:,.1f} 2xx/s, p99 {fmt_ms(bare.latency_ms['p99'])}", flush=True)

        count = args.deliveries or max(MIN_DELIVERIES, math.ceil(bare.ok_per_s * seconds * 1.3))
        returns_expected = math.ceil(count * dict(MIX)["return"] / sum(w for _, w in MIX) * 1.2) + 100
        orders = synthetic_orders(returns_expected, 20_000_000, rng)
        load_seconds = load_orders(url, setup, orders)
        print(f"Loaded {len(orders):,} orders for the return requests in {load_seconds:.1f} s", flush=True)
        deliveries = build_deliveries(count, orders, rng, 20_000_000, "run")
        requests, signed_at = sign_all(deliveries, webhook_path, host, setup.signing_secret)
        shares = write_request_files(files / "ingest", requests, threads)
        del requests
        sign_seconds = (datetime.now(timezone.utc) - signed_at).total_seconds()
        kinds = Counter(d.kind for d in deliveries)
        print(f"Signed {count:,} distinct deliveries in {sign_seconds:.1f} s "
              f"({', '.join(f'{k} {v:,}' for k, v in kinds.most_common())})", flush=True)

        print(f"Webhook: {threads} wrk threads, {connections} connections, {seconds} s", flush=True)
        signature_lead = (datetime.now(timezone.utc) - signed_at).total_seconds()
        ingest = run_wrk(wrk, "POST /webhooks/<key> (Zendesk)", server.port, files / "ingest", threads, connections,
                         seconds, RESULTS_DIR / "ingest-wrk-webhook.txt")
        signature_age = (datetime.now(timezone.utc) - signed_at).total_seconds()
        print(f"  {ingest.ok_per_s:,.1f} 2xx/s, p99 {fmt_ms(ingest.latency_ms['p99'])}; waiting for requests "
              "still in flight", flush=True)
        waited, still_open = wait_until_settled(url, setup.integration_id, args.settle_seconds)

        print(f"Bare endpoint again (brackets the webhook run): {seconds} s", flush=True)
        bare_after = run_wrk(wrk, "POST /bench/bare (204), after", server.port, files / "bare", threads, connections,
                             seconds, RESULTS_DIR / "ingest-wrk-bare-after.txt")
        print(f"  {bare_after.ok_per_s:,.1f} 2xx/s, p99 {fmt_ms(bare_after.latency_ms['p99'])}", flush=True)
    finally:
        server.stop()
        if not args.keep_files:
            shutil.rmtree(files, ignore_errors=True)
    load_after = os.getloadavg()
    drain = None
    if args.drain_workers:
        print(f"Processing what the web nodes left to the worker: {args.drain_workers} x flask worker", flush=True)
        drain = drain_with_workers(url, setup, args.drain_workers, args.drain_seconds)
        if drain is not None:
            print(f"  {drain.waiting_before - drain.left:,} events in {drain.seconds:.1f} s ({drain.per_s:,.1f}/s), "
                  f"{drain.left:,} left", flush=True)

    # Accounting: which distinct deliveries did wrk hand out, and which are stored?
    sent_keys: set[str] = set()
    sent_kinds: Counter[str] = Counter()
    for t, share in enumerate(shares):
        for index in share[:min(ingest.per_thread_generated.get(t, 0), len(share))]:
            sent_keys.add(f"zendesk:invocation:{deliveries[index].invocation_id}")
            sent_kinds[deliveries[index].kind] += 1
    after = stored_keys(url, setup.integration_id)
    new = after - before
    lost = sent_keys - after
    unexpected = new - sent_keys
    inbox = inbox_summary(url, setup, sent_keys)
    completed_new = ingest.ok - ingest.outcomes.get("duplicate", 0)
    in_flight = ingest.generated - ingest.requests
    doubled = (inbox.events - inbox.distinct_keys) + inbox.processed_more_than_once
    exact = not lost and not unexpected and doubled == 0 and len(new & sent_keys) == len(sent_keys)

    bare_rate = (bare.ok_per_s + bare_after.ok_per_s) / 2
    ratio = ingest.ok_per_s / bare_rate if bare_rate else float("nan")
    drift = abs(bare.ok_per_s - bare_after.ok_per_s) / bare_rate if bare_rate else 0.0
    if drift > 0.15:
        notes.append(f"the bare endpoint's rate moved by {drift:.0%} between its two runs: something else was using "
                     "the CPUs (see the load averages); compare runs made on a quiet machine")
    p99 = ingest.latency_ms["p99"]
    profile = None
    if args.profile:
        print(f"Profiling {args.profile:,} deliveries in-process (the server is stopped)", flush=True)
        profile = profile_in_process(url, setup, args.profile, rng)
        (RESULTS_DIR / "ingest-profile.txt").write_text(profile.top)

    print()
    print(f"Rebound webhook ingest benchmark: {server.display.replace(f'127.0.0.1:{server.port}', '127.0.0.1:<port>')}"
          f" (REBOUND_CONFIG=production{'' if args.gunicorn_options else ', options from the README'}), "
          f"PostgreSQL {database_name(url)}")
    print(f"wrk -t{threads} -c{connections} -d{seconds}s --latency, pre-signed distinct deliveries; {os.cpu_count()} "
          f"CPUs shared by gunicorn, PostgreSQL and wrk; load average (1 min) {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    print()
    print_table([bare, ingest, bare_after])
    print()
    print(f"Ingest throughput {ingest.ok_per_s:,.1f}/s = {ratio:.1%} of the bare endpoint's {bare_rate:,.1f}/s "
          f"(mean of {bare.ok_per_s:,.1f} before and {bare_after.ok_per_s:,.1f} after) "
          f"(target ≥ {RATIO_TARGET:.0%}): {verdict(ratio >= RATIO_TARGET)}")
    print(f"Ingest latency p50 {fmt_ms(ingest.latency_ms['p50'])}, p90 {fmt_ms(ingest.latency_ms['p90'])}, "
          f"p99 {fmt_ms(p99)} (target ≤ {P99_TARGET_MS:.0f} ms): {verdict(p99 <= P99_TARGET_MS)} "
          f"| bare p99 {fmt_ms(bare.latency_ms['p99'])} / {fmt_ms(bare_after.latency_ms['p99'])}")
    print(f"Stored events {len(new & sent_keys):,} = distinct deliveries sent {len(sent_keys):,}: "
          f"{'OK' if exact else 'MISMATCH'} (answered 2xx {completed_new:,}, in flight at the stop {in_flight:,}, "
          f"lost {len(lost):,}, unexpected {len(unexpected):,}, doubled {doubled:,}, replayed {ingest.replayed:,})")
    print(f"Signatures made {signature_lead:.1f} s before the run started, {signature_age:.1f} s old at its end "
          f"(Zendesk's window: 300 s); all {count:,} signed deliveries distinct (invocation id and body)")
    print(f"Inbox after {waited:.1f} s: {', '.join(f'{k} {v:,}' for k, v in inbox.by_status.items()) or 'empty'}; "
          f"outcomes {', '.join(f'{k} {v:,}' for k, v in inbox.by_outcome.items()) or '-'}")
    print(f"Cases opened by the run {inbox.cases_from_run:,} (return requests sent {sent_kinds['return']:,}); "
          f"tickets with several cases {inbox.tickets_with_several_cases}; suggestions {inbox.suggestions:,}; "
          f"answers {', '.join(f'{k} {v:,}' for k, v in sorted(ingest.outcomes.items())) or '-'}")
    if drain is not None:
        print(f"Worker drain (after the run, server stopped): {drain.command} processed "
              f"{drain.waiting_before - drain.left:,} events in {drain.seconds:.1f} s = {drain.per_s:,.1f} events/s; "
              f"{drain.left:,} left; events processed more than once {inbox.processed_more_than_once:,}")
        if drain.left:
            notes.append(f"{drain.left:,} events were not processed within --drain-seconds {args.drain_seconds:.0f}")
    if ingest.errors or bare.errors or bare_after.errors:
        notes.append(f"errors: bare non-2xx {bare.statuses or 0} / {bare_after.statuses or 0}, socket "
                     f"{bare.socket_errors} / {bare_after.socket_errors}; webhook non-2xx "
                     f"{ingest.statuses or 0} socket {ingest.socket_errors} (see bench/results/ingest-gunicorn.log)")
    if still_open:
        notes.append(f"{still_open} events were still processing after {waited:.0f} s")
    if lost:
        where = {f"zendesk:invocation:{deliveries[index].invocation_id}": (t, position)
                 for t, share in enumerate(shares) for position, index in enumerate(share)}
        named = [f"{key} (wrk thread {where[key][0]}, request {where[key][1] + 1} of "
                 f"{ingest.per_thread_generated.get(where[key][0], 0)})" for key in sorted(lost)[:5]]
        notes.append(f"lost (sent, not stored): {'; '.join(named)}{' …' if len(lost) > 5 else ''}")
    if unexpected:
        notes.append(f"unexpected (stored, not sent): {sorted(unexpected)[:5]}")
    if ingest.replayed:
        notes.append(f"wrk ran out of deliveries and resent {ingest.replayed:,} (use --deliveries)")
    if profile is not None:
        print()
        print(f"In-process profile, {profile.requests:,} deliveries one after the other: {profile.mean_ms:.2f} ms per "
              f"request, of which {profile.cpu_ms:.2f} ms Python CPU (the rest waits on PostgreSQL); "
              f"{profile.sql_per_request:.1f} SQL statements and {profile.commits_per_request:.1f} commits per request")
        for name, ms in profile.steps_ms.items():
            print(f"  {name:<50} {ms:6.2f} ms  {ms / profile.mean_ms:6.1%}")
        print(f"  answers: {', '.join(f'{k} {v:,}' for k, v in sorted(profile.statuses.items()))}")
        print("  cProfile: bench/results/ingest-profile.txt (raw: ingest-profile.pstats)")
    for note in notes:
        print(f"Note: {note}")

    results = {
        "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine() | {"load_average_before": load_before, "load_average_after": load_after},
        "database": database_name(url),
        "server": {"command": server.display, "readme_command": readme_command,
                   "options_from_readme": args.gunicorn_options is None, "config": "production"},
        "client": {"tool": "wrk", "threads": threads, "connections": connections, "seconds": seconds,
                   "script": str(LUA_SCRIPT.relative_to(ROOT))},
        "targets": {"throughput_ratio_min": RATIO_TARGET, "p99_ms_max": P99_TARGET_MS},
        "bare": asdict(bare) | {"ok_per_s": bare.ok_per_s, "output": None},
        "bare_after": asdict(bare_after) | {"ok_per_s": bare_after.ok_per_s, "output": None},
        "bare_ok_per_s_mean": bare_rate,
        "ingest": asdict(ingest) | {"ok_per_s": ingest.ok_per_s, "output": None},
        "ratio": ratio,
        "meets": {"ratio": ratio >= RATIO_TARGET, "p99": p99 <= P99_TARGET_MS, "stored_equals_sent": exact},
        "deliveries": {"signed": count, "mix_signed": dict(kinds), "mix_sent": dict(sent_kinds),
                       "sent_distinct": len(sent_keys), "replayed": ingest.replayed,
                       "signature_lead_s": round(signature_lead, 1), "signature_age_at_end_s": round(signature_age, 1)},
        "accounting": {"stored_from_run": len(new & sent_keys), "answered_2xx_new": completed_new,
                       "in_flight_at_stop": in_flight, "lost": len(lost), "unexpected": len(unexpected),
                       "doubled": doubled, "settle_seconds": round(waited, 1), "still_open": still_open},
        "inbox": asdict(inbox),
        "drain": None if drain is None else asdict(drain),
        "profile": None if profile is None else asdict(profile) | {"top": "bench/results/ingest-profile.txt"},
        "notes": notes,
    }
    out = Path(args.output)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nResults written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0 if exact and not (ingest.errors or bare.errors or bare_after.errors) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        sys.exit(130)
