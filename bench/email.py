"""Inbound mail throughput: parse, extract the reply, thread and store, on one worker.

Feeds the corpus mix from ``../shared/corpora/email/`` (the raw MIME messages as they are, the
plain-text bodies of the reply corpora wrapped in a mail of their own) through the whole inbound
pipeline — ``app.email.services.ingest_mail``: parse, classify, extract, match to a case, store
the mail row, run intake, commit: ``process_received_events`` on inbox rows, the job ``flask worker``
runs, in its batches — and, in the same run, through the standard library's parser alone
(``BytesParser(policy=default)`` and the body text), the baseline. Every second mail of a round
is a reply to the one before it, so threading looks its Message-ID chain up in the database. The
corpus mails name none of the bench tenant's orders: most end ``ignored`` by intake, some as
suggestions, and no case is opened (the outcomes are printed), so this measures the path every
mail takes, not case creation (``bench/api.py`` measures that).

Targets (issue #5): ≥ 100 messages/s, and ≥ 20 % of the parse-only rate.

    .venv/bin/python bench/email.py                       # PostgreSQL database rebound_email_bench
    .venv/bin/python bench/email.py --database-url sqlite:////tmp/email-bench.db
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this file's name would hide
# the standard library's ``email`` package: put the repository root there instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import argparse  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from email import policy  # noqa: E402
from email.message import EmailMessage  # noqa: E402
from email.parser import BytesParser  # noqa: E402

from cryptography.fernet import Fernet  # noqa: E402

from bench.common import ensure_database  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora" / "email"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/rebound_email_bench"
TARGET_RATE = 100.0
TARGET_SHARE = 0.20


def corpus() -> list[bytes]:
    """The mix: raw MIME files as they are, text bodies wrapped as a customer's mail."""
    if not CORPORA.is_dir():
        raise SystemExit(f"The email corpora are not at {CORPORA}.")
    mails = []
    for path in sorted(CORPORA.rglob("*")):
        if not path.is_file() or path.suffix == ".md" or path.name in ("NOTICE.txt", "LICENSE"):
            continue
        data = path.read_bytes()
        head = data[:4096]
        if b"\nFrom:" in head or b"\nReceived:" in head or head.startswith((b"From", b"Received:", b"Return-Path:")):
            mails.append(data)
        else:
            mails.append(_wrap(data.decode("utf-8", "replace"), f"{path.parent.name}-{path.name}"))
    return mails


def _wrap(text: str, name: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Dana Customer <dana@example.com>"
    message["To"] = "returns@shop.example"
    message["Subject"] = f"About my order ({name})"
    message["Message-ID"] = f"<{name}@corpus.example>"
    message.set_content(text)
    return bytes(message)


def _round(mails: list[bytes], n: int) -> list[bytes]:
    """Round ``n`` of the mix: fresh Message-IDs, and every second mail a reply to the one before."""
    out = []
    previous = None
    for i, raw in enumerate(mails):
        own = f"<r{n}.{i}@bench.example>".encode()
        header = b"Message-ID: " + own + b"\r\n"
        if previous is not None and i % 2:
            header += b"In-Reply-To: " + previous + b"\r\nReferences: " + previous + b"\r\n"
        out.append(header + raw)
        previous = own
    return out


def parse_only(mails: list[bytes]) -> float:
    parser = BytesParser(policy=policy.default)
    started = time.perf_counter()
    for raw in mails:
        message = parser.parsebytes(raw)
        try:
            body = message.get_body(("plain", "html"))
            if body is not None:
                body.get_content()
        except Exception:  # the baseline may fail on hostile mail; it still counts its time
            pass
    return len(mails) / (time.perf_counter() - started)


def pipeline(app, mails: list[bytes]) -> tuple[float, dict[str, int]]:
    """What one worker does with mail in its inbox: its job ``process_received_events`` (claim a
    batch, then per message parse, classify, extract, thread, store, intake; commit the batch). The
    inbox rows are written first, untimed: receiving is ``bench/ingest.py``'s figure."""
    from app.connectors.models import Integration
    from app.extensions import db, utcnow
    from app.inbound.models import InboundEvent
    from app.inbound.services import process_received_events

    outcomes: dict[str, int] = {}
    with app.app_context():
        integration = db.session.scalar(db.select(Integration).where(Integration.kind == "rawmime"))
        events = [InboundEvent(tenant_id=integration.tenant_id, integration_id=integration.id,
                               delivery_key=f"bench-{n}", kind="rawmime", event_type="message.created",
                               ticket_id=None, event={}, body=raw, status="received", attempts=0,
                               received_at=utcnow()) for n, raw in enumerate(mails)]
        db.session.add_all(events)
        db.session.commit()
        ids = [event.id for event in events]
        db.session.expunge_all()
        started = time.perf_counter()
        handled = process_received_events(limit=len(ids))
        elapsed = time.perf_counter() - started
        assert handled == len(ids), f"the job handled {handled} of {len(ids)} messages"
        for status, outcome in db.session.execute(
                db.select(InboundEvent.status, InboundEvent.outcome).where(InboundEvent.id.in_(ids))):
            key = (outcome or {}).get("outcome") or status
            outcomes[key] = outcomes.get(key, 0) + 1
    return len(mails) / elapsed, outcomes


def prepare(database_url: str, attachments: str):
    from app import create_app
    from app.extensions import db
    from app.connectors.schemas import IntegrationCreate, IntegrationSettings
    from app.connectors.services import connect
    from app.tenants.services import create_tenant
    from config import ProductionConfig

    if database_url.startswith("postgresql"):
        ensure_database(database_url, recreate=True)
    # The production configuration, with throwaway secrets for this run.
    os.environ.update(SECRET_KEY=secrets.token_hex(32), DATABASE_URL=database_url,
                      REBOUND_ENCRYPTION_KEY=Fernet.generate_key().decode())
    app = create_app(ProductionConfig, SQLALCHEMY_DATABASE_URI=database_url, REBOUND_ATTACHMENT_DIR=attachments)
    with app.app_context():
        db.create_all()
        tenant = create_tenant("Email bench", slug="email-bench").token.tenant
        connect(tenant, IntegrationCreate(kind="rawmime", name="Returns mailbox",
                                          settings=IntegrationSettings(address="returns@shop.example")))
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the corpus mix")
    args = parser.parse_args(argv)

    mails = corpus()
    rounds = [_round(mails, n) for n in range(args.rounds)]
    everything = [raw for batch in rounds for raw in batch]
    with tempfile.TemporaryDirectory(prefix="rebound-email-bench-") as attachments:
        app = prepare(args.database_url, attachments)
        # The baseline before and after the pipeline, so a machine that speeds up or slows down
        # during the run (shared CPUs do) moves both figures alike.
        before = statistics.median(parse_only(everything) for _ in range(3))
        rate, outcomes = pipeline(app, everything)
        after = statistics.median(parse_only(everything) for _ in range(3))
    baseline = (before + after) / 2
    share = rate / baseline
    print(f"Corpus mix: {len(mails)} mails × {args.rounds} rounds = {len(everything)} messages "
          f"({sum(map(len, mails)) / 1024:.0f} KiB per round); database {args.database_url.split('@')[-1]}")
    print(f"Outcomes: {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}")
    print(f"{'':44}{'msgs/s':>10}")
    print(f"{'parse only (stdlib BytesParser, body text)':44}{baseline:>10.1f}  baseline "
          f"({before:.1f} before, {after:.1f} after)")
    ok_rate = "OK" if rate >= TARGET_RATE else "MISSED"
    ok_share = "OK" if share >= TARGET_SHARE else "MISSED"
    print(f"{'parse + extract + thread + store + intake':44}{rate:>10.1f}  "
          f"≥ {TARGET_RATE:.0f}/s {ok_rate}; {share:.1%} of parse-only (≥ {TARGET_SHARE:.0%}) {ok_share}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
