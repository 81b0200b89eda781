"""Outbox dispatch benchmark: deliveries per second with 1 and with 3 workers, beside a bare loop.

The requirement it measures: 10,000 outbox messages delivered to a local fake helpdesk by worker
processes running the real dispatcher on PostgreSQL, beside a bare ``requests.Session`` loop
sending the same requests (path, headers, body) to the same server in the same run. Targets:
1 worker ≥ 50 % of the bare loop; 3 workers ≥ 1.5 × one worker; enqueueing a message inside a
service transaction ≤ 1 ms p95.

Run it from the repository root (PostgreSQL on 127.0.0.1:5432)::

    .venv/bin/python bench/dispatch.py                    # 10,000 messages, 1 then 3 workers
    .venv/bin/python bench/dispatch.py --messages 2000    # a quick look
    .venv/bin/python bench/dispatch.py --profile          # + cProfile of the 1-worker run

What it does, in order:

1. Drops and creates the bench database (``--database-url``, default ``rebound_dispatch_bench``),
   migrates it, creates a tenant and a Zendesk integration whose ``base_url`` is the fake
   helpdesk and whose ``settings.rate_limit`` (1,000,000 per second) is far above what is sent,
   so pacing is exercised (the throttle row is locked and counted on every claim) but never waits.
2. Starts ``bench/fake_helpdesk.py`` (one asyncio process, answers 200 with a Zendesk-shaped
   body, counts requests by idempotency key, reports its own CPU time).
3. Bare loop: one ``requests.Session`` sending ``--messages`` PUTs exactly like the Zendesk
   client's (``/api/v2/tickets/<id>.json``, basic auth, the same headers and note bodies), one
   at a time. Measured again at the end; workers are compared with the mean of both runs.
4. Enqueue cost: ``--enqueue-samples`` times, in a transaction that has read the tenant and the
   integration as a service would, ``outbox.enqueue(...)`` plus the flush that INSERTs the row,
   timed, then rolled back. Measured with the table holding a full load of pending messages. The
   INSERT is one round trip to PostgreSQL (in a real service it shares the transaction's flush);
   ``enqueue()`` alone (building the row in the session) is shown beside it.
5. For 1 worker, then ``--workers`` workers: loads ``--messages`` notes over ``--tickets``
   tickets (interleaved, so each ticket's updates must go in order), starts the worker
   processes (production config), waits until each has imported and connected, then says go.
   Each runs ``dispatch_due(--batch)`` until nothing is pending or sending, and exits. Time is
   from go to the last worker's exit; afterwards every message must be ``delivered`` and the fake
   helpdesk must have seen each idempotency key once.
6. Prints a table (each figure beside its baseline and target, OK/MISSED) and writes
   ``bench/results/dispatch.json``.

Everything runs on one machine: the workers, PostgreSQL, the fake helpdesk and the bare loop
share its CPUs (two on the reference machine), so the 3-worker figure is bounded by the cores
left once PostgreSQL and the fake helpdesk have theirs. Targets are printed, never asserted;
the exit status is 1 when a message was lost, doubled or not delivered, else 0.
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
import os
import pstats
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

import requests  # noqa: E402

from bench.common import RESULTS_DIR, database_name, ensure_database, git_commit, machine  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/rebound_dispatch_bench"
ONE_WORKER_TARGET = 0.5  # of the bare loop
SCALE_TARGET = 1.5  # 3 workers against 1
ENQUEUE_P95_TARGET_MS = 1.0
API_EMAIL, API_TOKEN = "bench@example.com", "bench-token-0123456789"
NOTE_TEXTS = (
    "{number} approved by policy: within the 30-day window, reason 'too small', order value under the "
    "auto-approve limit. Return label to follow; refund on receipt.",
    "{number} received at the warehouse: 1 of 1 item, condition A (unused, original packaging).",
    "{number} inspected: accepted, disposition restock. Refund of 129.00 EUR issued to the original payment.",
    "{number}: the customer replied with 2 photos; the case is back in review.",
)


# ---- the worker process ---------------------------------------------------------------------

def run_worker(database_url: str, batch: int, profile: str | None) -> int:
    """One worker: the real dispatcher until the outbox holds nothing pending or sending.

    Prints ``ready`` once imported and connected, waits for a line on stdin, then works; prints
    a JSON line with what it did when done.
    """
    import sqlalchemy as sa

    from app import create_app
    from app.extensions import db
    from app.outbound import dispatcher
    from app.outbound.models import OutboxMessage
    from config import ProductionConfig

    app = create_app(ProductionConfig)
    with app.app_context():
        db.session.execute(sa.text("SELECT 1"))
        db.session.rollback()
        import integrations.zendesk  # noqa: F401 - imported before the clock starts

        print("ready", flush=True)
        sys.stdin.readline()
        profiler = cProfile.Profile() if profile else None
        cpu, attempted = time.process_time(), 0
        if profiler:
            profiler.enable()
        while True:
            count = dispatcher.dispatch_due(batch)
            attempted += count
            if count:
                continue
            left = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.status.in_(("pending", "sending"))))
            db.session.rollback()
            if not left:
                break
            time.sleep(0.01)  # the rest is claimed by others, or their heads are in flight
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        print(json.dumps({"attempted": attempted, "cpu_seconds": time.process_time() - cpu}), flush=True)
    return 0


# ---- the bench ------------------------------------------------------------------------------

@dataclass
class Run:
    name: str
    messages: int
    seconds: float
    per_second: float
    worker_cpu_seconds: float = 0.0
    delivered: int = 0
    server_requests: int = 0
    server_distinct: int = 0
    server_duplicates: int = 0
    server_cpu_seconds: float = 0.0
    machine_busy: float = 0.0  # share of all CPUs busy during the run (anyone's work, from /proc/stat)


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot; (0, 0) where /proc/stat is missing."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_since(start: tuple[int, int]) -> float:
    busy, total = cpu_ticks()
    return (busy - start[0]) / (total - start[1]) if total > start[1] else 0.0


class FakeHelpdesk:
    """``bench/fake_helpdesk.py`` in its own process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_helpdesk.py")],
                                        stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("listening "):
            raise RuntimeError(f"the fake helpdesk did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.control = requests.Session()

    def reset(self) -> None:
        self.control.post(f"{self.url}/__reset", timeout=10)

    def stats(self) -> dict[str, Any]:
        return self.control.get(f"{self.url}/__stats", timeout=10).json()

    def stop(self) -> None:
        self.control.close()
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def note_text(n: int) -> str:
    return NOTE_TEXTS[n % len(NOTE_TEXTS)].format(number=f"RMA-{10001 + n // 4}")


def ticket_of(n: int, tickets: int) -> str:
    return str(500_000 + n % tickets)  # interleaved: ticket t gets messages t, t + tickets, …


def bare_loop(url: str, messages: int, tickets: int, prefix: str) -> Run:
    """What the dispatcher's HTTP part costs at best: the Zendesk client's requests, in a loop."""
    headers = {"Accept": "application/json", "User-Agent": "Rebound-Writeback/1", "Content-Type": "application/json"}
    started, cpu = time.perf_counter(), time.process_time()
    with requests.Session() as session:
        for n in range(messages):
            body = {"ticket": {"comment": {"public": False, "body": note_text(n)}}}
            response = session.put(f"{url}/api/v2/tickets/{ticket_of(n, tickets)}.json", json=body,
                                   headers={**headers, "X-Rebound-Idempotency-Key": f"{prefix}-{n}"},
                                   auth=(f"{API_EMAIL}/token", API_TOKEN), timeout=10, allow_redirects=False)
            response.raise_for_status()
    seconds = time.perf_counter() - started
    return Run("bare requests.Session loop", messages, seconds, messages / seconds,
               worker_cpu_seconds=time.process_time() - cpu)


def prepare(database_url: str, helpdesk_url: str, encryption_key: str) -> Any:
    """Fresh database, migrated, with the bench tenant and its Zendesk integration; returns the app."""
    import flask_migrate

    from app import create_app
    from app.connectors.schemas import IntegrationCreate, IntegrationSettings, RateLimitSetting
    from app.connectors.services import connect
    from app.tenants.services import create_tenant
    from config import DevelopmentConfig

    ensure_database(database_url, recreate=True)
    app = create_app(DevelopmentConfig, SQLALCHEMY_DATABASE_URI=database_url, REBOUND_ENCRYPTION_KEY=encryption_key,
                     REBOUND_ALLOW_PRIVATE_URLS=True)
    with app.app_context():
        flask_migrate.upgrade()
        tenant = create_tenant("Dispatch Bench", slug="dispatch-bench").token.tenant
        integration = connect(tenant, IntegrationCreate(
            kind="zendesk", name="Bench desk", credentials={"api_email": API_EMAIL, "api_token": API_TOKEN},
            settings=IntegrationSettings(base_url=helpdesk_url,
                                         rate_limit=RateLimitSetting(requests=1_000_000, per_seconds=1)),
        )).integration
        app.config["BENCH_IDS"] = (tenant.id, integration.id)
    return app


def load_messages(app: Any, messages: int, tickets: int, prefix: str) -> None:
    """Empty the outbox, then enqueue ``messages`` notes through ``outbox.enqueue``, 1,000 per commit."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.outbound import outbox
    from app.outbound.models import DeliveryAttempt, DeliveryThrottle, OutboxMessage
    from integrations.base import OutboundAction

    tenant_id, integration_id = app.config["BENCH_IDS"]
    with app.app_context():
        for model in (DeliveryAttempt, OutboxMessage, DeliveryThrottle):
            db.session.execute(sa.delete(model))
        for n in range(messages):
            outbox.enqueue(tenant_id=tenant_id, integration_id=integration_id, action=OutboundAction(
                kind="note", ticket_id=ticket_of(n, tickets), idempotency_key=f"{prefix}-{n}", body_text=note_text(n)))
            if n % 1000 == 999:
                db.session.commit()
        db.session.commit()
        db.session.execute(sa.text("ANALYZE outbox_messages"))
        db.session.commit()
        db.session.remove()


def enqueue_cost(app: Any, samples: int) -> dict[str, float]:
    """Milliseconds for ``enqueue`` + the flush that writes its row, inside a service transaction."""
    import sqlalchemy as sa

    from app.connectors.models import Integration
    from app.extensions import db
    from app.outbound import outbox
    from app.tenants.models import Tenant
    from integrations.base import OutboundAction

    tenant_id, integration_id = app.config["BENCH_IDS"]
    times, alone = [], []
    with app.app_context():
        for n in range(samples):
            db.session.get(Tenant, tenant_id)  # what a service has done before it enqueues
            db.session.scalar(sa.select(Integration).where(Integration.id == integration_id))
            action = OutboundAction(kind="note", ticket_id=str(900_000 + n), idempotency_key=f"enqueue-{n}",
                                    body_text=note_text(n))
            started = time.perf_counter()
            outbox.enqueue(tenant_id=tenant_id, integration_id=integration_id, action=action)
            added = time.perf_counter()
            db.session.flush()
            times.append((time.perf_counter() - started) * 1000)
            alone.append((added - started) * 1000)
            db.session.rollback()
        db.session.remove()
    times.sort()
    alone.sort()
    return {"samples": samples, "p50_ms": times[len(times) // 2], "p95_ms": times[int(len(times) * 0.95)],
            "p99_ms": times[int(len(times) * 0.99)], "max_ms": times[-1],
            "enqueue_alone_p95_ms": alone[int(len(alone) * 0.95)]}


def run_workers(app: Any, env: dict[str, str], count: int, batch: int, messages: int, helpdesk: FakeHelpdesk,
                profile: str | None) -> Run:
    """``count`` worker processes on the loaded outbox; time from go to the last one's exit."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.outbound.models import OutboxMessage

    helpdesk.reset()
    workers = []
    for n in range(count):
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--batch", str(batch)]
        if profile and n == 0:
            command += ["--profile-to", profile]
        workers.append(subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, start_new_session=True))
    try:
        for worker in workers:
            line = worker.stdout.readline() if worker.stdout else ""
            if line.strip() != "ready":
                raise RuntimeError(f"a worker did not start: {line!r}")
        started, ticks = time.perf_counter(), cpu_ticks()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = []
        for worker in workers:
            out, _ = worker.communicate(timeout=1800)
            if worker.returncode != 0:
                raise RuntimeError(f"a worker exited with {worker.returncode}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
        seconds, busy = time.perf_counter() - started, busy_since(ticks)
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)  # the group we created: that worker only
                worker.wait()
    stats = helpdesk.stats()
    with app.app_context():
        delivered = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                                      .where(OutboxMessage.status == "delivered")) or 0
        db.session.remove()
    name = "1 worker" if count == 1 else f"{count} workers"
    return Run(name, messages, seconds, delivered / seconds, sum(r["cpu_seconds"] for r in reports), delivered,
               stats["requests"], stats["distinct"], stats["duplicates"], stats["cpu_seconds"], busy)


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def print_report(header: Sequence[str], bare: float, bares: Sequence[Run], one: Run, many: Run,
                 enqueue: dict[str, float], server_us: float, notes: Sequence[str]) -> None:
    rows = [("figure", "measured", "baseline", "target", "verdict")]
    rows.append(("bare requests.Session loop", f"{bare:,.0f} req/s",
                 " / ".join(f"{r.per_second:,.0f}" for r in bares) + " (start / end)", "", ""))
    rows.append((one.name, f"{one.per_second:,.0f} deliveries/s", f"{one.per_second / bare:.0%} of the bare loop",
                 f"≥ {ONE_WORKER_TARGET:.0%}", verdict(one.per_second >= ONE_WORKER_TARGET * bare)))
    rows.append((many.name, f"{many.per_second:,.0f} deliveries/s", f"{many.per_second / one.per_second:.2f} × 1 worker",
                 f"≥ {SCALE_TARGET:.1f} ×", verdict(many.per_second >= SCALE_TARGET * one.per_second)))
    rows.append(("enqueue + its INSERT, in a transaction", f"p95 {enqueue['p95_ms']:.3f} ms",
                 f"p50 {enqueue['p50_ms']:.3f} ms, p99 {enqueue['p99_ms']:.3f} ms; enqueue() alone p95 "
                 f"{enqueue['enqueue_alone_p95_ms']:.3f} ms",
                 f"≤ {ENQUEUE_P95_TARGET_MS:.0f} ms p95", verdict(enqueue["p95_ms"] <= ENQUEUE_P95_TARGET_MS)))
    widths = [max(len(row[c]) for row in rows) for c in range(5)]
    print()
    for line in header:
        print(line)
    print()
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for run in (one, many):
        print(f"{run.name}: {run.delivered:,} of {run.messages:,} delivered in {run.seconds:.1f} s; "
              f"helpdesk saw {run.server_requests:,} requests, {run.server_distinct:,} distinct keys, "
              f"{run.server_duplicates} duplicate(s); worker CPU {run.worker_cpu_seconds / run.messages * 1e6:.0f} µs "
              f"per delivery; the machine's CPUs were {run.machine_busy:.0%} busy (all processes)")
    bare_us = statistics.mean(r.worker_cpu_seconds / r.messages for r in bares) * 1e6
    one_us = one.worker_cpu_seconds / one.messages * 1e6
    print(f"CPU per request: bare loop {bare_us:.0f} µs, 1 worker {one_us:.0f} µs per delivery (HTTP, claim, record): "
          f"the worker would reach {bare_us / one_us:.0%} of the bare loop where the CPU is the only limit")
    print(f"Fake helpdesk: {server_us:.0f} µs CPU per request, i.e. ~{1e6 / server_us:,.0f} req/s on one core "
          f"(the fastest client here sent {max(bare, many.per_second):,.0f}/s): not the bottleneck")
    for note in notes:
        print(f"Note: {note}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000, help="messages per run (default: 10,000)")
    parser.add_argument("--tickets", type=int, default=2_500, help="tickets they are spread over (default: 2,500)")
    parser.add_argument("--workers", type=int, default=3, help="workers of the second run (default: 3)")
    parser.add_argument("--batch", type=int, default=50, help="messages claimed per round (default: 50)")
    parser.add_argument("--enqueue-samples", type=int, default=2_000, help="default: 2,000")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help=f"default: {DEFAULT_DATABASE_URL}")
    parser.add_argument("--profile", action="store_true", help="cProfile the 1-worker run; print its top functions")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a worker process (internal)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.messages < 100 or args.tickets < 1 or args.workers < 1 or args.batch < 1:
        parser.error("--messages must be at least 100; --tickets, --workers and --batch at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return run_worker(os.environ["DATABASE_URL"], args.batch, args.profile_to)
    from cryptography.fernet import Fernet

    from bench.common import production_env

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    key = Fernet.generate_key().decode()
    env = {**production_env(args.database_url, key), "REBOUND_ALLOW_PRIVATE_URLS": "1",
           "PYTHONPATH": str(ROOT)}
    helpdesk = FakeHelpdesk()
    notes: list[str] = []
    load_before = os.getloadavg()
    profile_path = str(RESULTS_DIR / "dispatch-1-worker.prof") if args.profile else None
    try:
        print(f"Database {database_name(args.database_url)}: recreating, migrating; fake helpdesk at {helpdesk.url}",
              flush=True)
        app = prepare(args.database_url, helpdesk.url, key)
        print(f"Bare loop: {args.messages:,} requests", flush=True)
        helpdesk.reset()
        bare_start = bare_loop(helpdesk.url, args.messages, args.tickets, "bare-start")
        server = helpdesk.stats()
        server_us = server["cpu_seconds"] / max(server["requests"], 1) * 1e6

        print(f"Loading {args.messages:,} messages; enqueue cost over {args.enqueue_samples:,} samples", flush=True)
        load_messages(app, args.messages, args.tickets, "one")
        enqueue = enqueue_cost(app, args.enqueue_samples)
        print("1 worker", flush=True)
        one = run_workers(app, env, 1, args.batch, args.messages, helpdesk, profile_path)

        load_messages(app, args.messages, args.tickets, "many")
        print(f"{args.workers} workers", flush=True)
        many = run_workers(app, env, args.workers, args.batch, args.messages, helpdesk, None)

        print(f"Bare loop again: {args.messages:,} requests", flush=True)
        helpdesk.reset()
        bare_end = bare_loop(helpdesk.url, args.messages, args.tickets, "bare-end")
    finally:
        helpdesk.stop()
    load_after = os.getloadavg()

    bare = statistics.mean([bare_start.per_second, bare_end.per_second])
    if abs(bare_start.per_second - bare_end.per_second) > 0.15 * bare:
        notes.append(f"the bare loop differed by more than 15 % between start and end "
                     f"({bare_start.per_second:,.0f} vs {bare_end.per_second:,.0f} req/s): the machine's load changed")
    problems = [f"{run.name}: {run.delivered:,} of {run.messages:,} delivered, helpdesk saw {run.server_distinct:,} "
                f"distinct keys and {run.server_duplicates} duplicates"
                for run in (one, many) if run.delivered != run.messages or run.server_distinct != run.messages
                or run.server_duplicates]
    header = [
        f"Rebound outbox dispatch benchmark: {args.messages:,} Zendesk notes over {args.tickets:,} tickets, batch "
        f"{args.batch}, PostgreSQL {database_name(args.database_url)}, workers with the production config",
        f"{os.cpu_count()} CPUs shared by workers, PostgreSQL, the fake helpdesk and the bare loop; load average "
        f"(1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after",
    ]
    print_report(header, bare, (bare_start, bare_end), one, many, enqueue, server_us, notes + problems)
    if profile_path:
        text = io.StringIO()
        pstats.Stats(profile_path, stream=text).sort_stats("cumulative").print_stats(30)
        print(f"\ncProfile of the 1-worker run ({profile_path}), top 30 by cumulative time:")
        print(text.getvalue())
    results = {
        "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {**machine(), "load_average_before": load_before, "load_average_after": load_after},
        "database": database_name(args.database_url),
        "args": {k: v for k, v in vars(args).items() if k not in ("worker", "profile_to")},
        "bare": [asdict(bare_start), asdict(bare_end)],
        "runs": [asdict(one), asdict(many)],
        "enqueue_ms": enqueue,
        "fake_helpdesk_cpu_us_per_request": server_us,
        "targets": {"one_worker_of_bare": ONE_WORKER_TARGET, "workers_scale": SCALE_TARGET,
                    "enqueue_p95_ms": ENQUEUE_P95_TARGET_MS},
        "notes": notes + problems,
    }
    out = RESULTS_DIR / "dispatch.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nResults written to {out.relative_to(ROOT)}")
    if problems:
        print("Lost, doubled or undelivered messages: see the notes above.")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        sys.exit(130)
