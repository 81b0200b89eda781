"""API benchmark: read latency and write throughput of Rebound with a million cases loaded.

The requirement it measures: with 1,000,000 cases loaded (the loader itself under 10 minutes),
``GET /api/v1/cases/{number}`` p95 ≤ 20 ms and a filtered list page p95 ≤ 50 ms, each printed
beside ``GET /healthz`` measured in the same run under the same server; plus create-case and
approve throughput in cases/s.

Run it from the repository root (PostgreSQL must be reachable)::

    .venv/bin/python bench/api.py                      # 1,000,000 cases, 2,000 requests per figure
    .venv/bin/python bench/api.py --cases 20000        # a quick run
    .venv/bin/python bench/api.py --reload             # drop the bench database and load it again

What it does, in order:

1. Creates the database if missing (``--database-url``, default ``rebound_bench`` on the local
   server) and migrates it with the project's Alembic migrations (``flask_migrate.upgrade``).
2. Creates the ``bench`` tenant through ``app.tenants.services.create_tenant`` (or issues a new
   token for it on a rerun).
3. Loads N cases with PostgreSQL ``COPY`` in one transaction, unless the tenant already holds at
   least N cases: ~N/20 customers, ~0.3·N orders (1-4 lines each), N cases (10 % with two
   lines) whose statuses cover every ``CaseStatus`` (recent cases mostly open, older ones mostly
   closed), each with its case lines, its whole event timeline and, once resolved, its
   settlement. Policy decisions come from the real ``app.cases.policy.evaluate``. Numbers are
   ``RMA-<10001+i>`` and ``tenants.case_counter`` is set to N so new cases get fresh numbers.
   Then ``VACUUM ANALYZE`` and a ``CHECKPOINT``, so neither runs during the measurements.
   The loader time is printed (target: under 10 minutes for 1,000,000 cases).
4. Starts ``gunicorn wsgi:app -w 4 --threads 1`` with the production configuration on a free
   local port and waits for ``/healthz``.
5. Measures, from client threads using ``http.client`` (``--threads`` for reads, default 2;
   ``--write-threads`` for writes, default 4; a new TCP connection per request, as the sync
   workers close every connection):

   * ``GET /healthz`` latency (the baseline: routing, a ``SELECT 1`` and the network);
   * ``GET /api/v1/cases/{number}`` for random loaded cases;
   * list pages, mixed: ``status=pending_review``, its second page through ``next_cursor``,
     ``customer_email=`` (including the customers with the most cases), ``order_number=``, and
     ``q=`` with a case number, an e-mail or an order number;
   * create-case throughput: ``POST /api/v1/cases`` on orders posted beforehand for the purpose
     (one new customer and order per case), alternately ``too_small`` (auto-approved) and
     ``damaged_in_transit`` without a photo (goes to ``pending_review``);
   * approve throughput: ``POST /api/v1/cases/{number}/actions/approve`` on the cases the create
     phase sent to review.

6. Prints a table (figure, measured, target, healthz p95 of the same run), writes the figures to
   ``bench/results/api.json`` and stops gunicorn (also on an error or Ctrl-C).

Targets are printed, never asserted: the exit status is 0 unless a request failed or the run
could not complete. Latencies are client-side, from sending the request to the last byte of
the response (``time.perf_counter``), on the same two-core machine as the server.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder would come first on sys.path, and bench/email.py would hide
# the standard library's email package: the repository root goes first instead, bench/ not at all.
sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import bisect
import http.client
import itertools
import json
import math
import os
import platform
import random
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent

from app.cases.defaults import DEFAULT_REASONS  # noqa: E402
from app.cases.policy import CaseFacts, LineFacts, PolicyRules, evaluate  # noqa: E402
from app.cases.states import CaseStatus  # noqa: E402
from bench.common import (  # noqa: E402
    RESULTS_DIR,
    Server,
    database_name,
    ensure_database,
    git_commit,
    libpq_url,
    production_env,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/rebound_bench"
TENANT_SLUG = "bench"
LOADER_TARGET_SECONDS = 600.0
GET_CASE_TARGET_MS = 20.0
LIST_TARGET_MS = 50.0


# ---- the data set ----------------------------------------------------------------------------

# Tables the loader fills, with the columns it writes (in COPY order).
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "tenant_id", "email", "name", "created_at"),
    "orders": ("id", "tenant_id", "number", "customer_id", "currency", "ordered_on", "delivered_on", "total",
               "created_at", "updated_at"),
    "order_lines": ("id", "tenant_id", "order_id", "sku", "title", "quantity", "unit_price", "category", "tags",
                    "final_sale"),
    "cases": ("id", "tenant_id", "number", "status", "held_from", "type", "channel", "customer_id", "locale",
              "currency", "preferred_resolution", "ticket_provider", "ticket_id", "ticket_url", "return_carrier",
              "return_tracking", "return_label_url", "label_issued_at", "policy_version", "policy_decision", "note",
              "version", "created_at", "updated_at", "status_changed_at"),
    "case_lines": ("id", "tenant_id", "case_id", "position", "order_id", "order_line_id", "sku", "title",
                   "unit_price", "qty_requested", "qty_authorized", "qty_received", "qty_accepted", "reason_code",
                   "customer_comment", "reception_status", "decision_status", "decision_results", "fee_percent",
                   "condition_grade", "disposition", "resolution_preference", "fault_party", "inspection_note"),
    "case_events": ("id", "tenant_id", "case_id", "action", "from_status", "to_status", "actor_type", "actor_id",
                    "channel", "reason", "data", "created_at"),
    "settlements": ("id", "tenant_id", "case_id", "kind", "status", "currency", "gross", "fees", "bonus", "amount",
                    "price_difference", "customer_owes", "external_ref", "created_at", "updated_at"),
}

S = CaseStatus
# Status weights: cases of the last ~6 % of the time span are mostly open, older ones mostly
# finished; every status occurs.
RECENT_SHARE = 0.06
RECENT_WEIGHTS: dict[CaseStatus, float] = {
    S.REQUESTED: 1, S.PENDING_REVIEW: 14, S.AWAITING_CUSTOMER: 5, S.AUTHORIZED: 9, S.AWAITING_SHIPMENT: 16,
    S.IN_TRANSIT: 14, S.RECEIVED: 5, S.INSPECTED: 3, S.RESOLVING: 3, S.RESOLVED: 6, S.CLOSED: 8, S.REJECTED: 4,
    S.CANCELLED: 5, S.EXPIRED: 2, S.ON_HOLD: 3, S.EXCEPTION: 2,
}
OLDER_WEIGHTS: dict[CaseStatus, float] = {
    S.REQUESTED: 0.01, S.PENDING_REVIEW: 0.3, S.AWAITING_CUSTOMER: 0.2, S.AUTHORIZED: 0.1, S.AWAITING_SHIPMENT: 0.1,
    S.IN_TRANSIT: 0.05, S.RECEIVED: 0.02, S.INSPECTED: 0.02, S.RESOLVING: 0.05, S.RESOLVED: 3, S.CLOSED: 80,
    S.REJECTED: 6, S.CANCELLED: 6, S.EXPIRED: 3.5, S.ON_HOLD: 0.4, S.EXCEPTION: 0.3,
}
# The steps after "create" and the automatic approve/flag that lead to each status.
AFTER_APPROVAL: dict[CaseStatus, tuple[str, ...]] = {
    S.AUTHORIZED: (),
    S.AWAITING_SHIPMENT: ("issue_label",),
    S.IN_TRANSIT: ("issue_label", "ship"),
    S.RECEIVED: ("issue_label", "ship", "receive"),
    S.INSPECTED: ("issue_label", "ship", "receive", "inspect"),
    S.RESOLVING: ("issue_label", "ship", "receive", "inspect", "resolve"),
    S.RESOLVED: ("issue_label", "ship", "receive", "inspect", "resolve", "settle"),
    S.CLOSED: ("issue_label", "ship", "receive", "inspect", "resolve", "settle", "close"),
    S.CANCELLED: ("cancel",),
    S.EXPIRED: ("issue_label", "expire"),
    S.ON_HOLD: ("hold",),
    S.EXCEPTION: ("issue_label", "ship", "mark_lost"),
}
REVIEW_ONLY: dict[CaseStatus, tuple[str, ...]] = {
    S.PENDING_REVIEW: (),
    S.AWAITING_CUSTOMER: ("request_info",),
    S.REJECTED: ("reject",),
}
# action → (from, to, actor is the system?, min gap s, max gap s)
STEPS: dict[str, tuple[str, str, bool, int, int]] = {
    "approve_auto": ("requested", "authorized", True, 0, 2),
    "flag": ("requested", "pending_review", True, 0, 2),
    "approve": ("pending_review", "authorized", False, 1800, 2 * 86400),
    "request_info": ("pending_review", "awaiting_customer", False, 1800, 86400),
    "reject": ("pending_review", "rejected", False, 1800, 2 * 86400),
    "issue_label": ("authorized", "awaiting_shipment", False, 60, 6 * 3600),
    "ship": ("awaiting_shipment", "in_transit", False, 86400, 4 * 86400),
    "receive": ("in_transit", "received", False, 2 * 86400, 6 * 86400),
    "inspect": ("received", "inspected", False, 3600, 2 * 86400),
    "resolve": ("inspected", "resolving", False, 600, 86400),
    "settle": ("resolving", "resolved", False, 600, 2 * 86400),
    "close": ("resolved", "closed", False, 3600, 3 * 86400),
    "cancel": ("authorized", "cancelled", False, 3600, 3 * 86400),
    "expire": ("awaiting_shipment", "expired", True, 28 * 86400, 28 * 86400 + 3600),
    "hold": ("authorized", "on_hold", False, 3600, 86400),
    "mark_lost": ("in_transit", "exception", False, 8 * 86400, 12 * 86400),
}
# Reasons without a photo requirement are auto-approved; photo reasons without a photo are reviewed.
APPROVE_REASONS = {"too_small": 20, "too_large": 15, "no_longer_needed": 15, "better_price": 5,
                   "ordered_by_mistake": 8, "missing_parts": 4, "arrived_late": 3}
REVIEW_REASONS = {"damaged_in_transit": 30, "damaged_on_arrival": 15, "defective_dead_on_arrival": 15,
                  "defective_stopped_working": 15, "wrong_item_sent": 10, "wrong_variant_sent": 10,
                  "not_as_described": 5}
FAULT_PARTY = {code: fault for code, _, _, fault, _ in DEFAULT_REASONS} | {
    child: fault for *_, children in DEFAULT_REASONS for child, _, _, fault in children
}
CHANNELS = {"api": 60, "portal": 25, "helpdesk": 10, "agent": 5}
RESOLUTIONS = {"refund": 60, "store_credit": 20, "exchange": 15, "": 5}
PRODUCT_KINDS = (("tent", "tents"), ("boots", "footwear"), ("jacket", "apparel"), ("headlamp", "electronics"),
                 ("stove", "cooking"), ("backpack", "backpacks"), ("sleeping bag", "sleeping"), ("socks", "underwear"),
                 ("fleece", "apparel"), ("gloves", "apparel"))
ADJECTIVES = ("Trailhead", "Ridge", "Summit", "Alpine", "Canyon", "Harbor", "Meadow", "Granite", "Aurora", "Tundra")
FIRST_NAMES = ("Maria", "Jonas", "Claire", "Sam", "Aiko", "Luca", "Nora", "Omar", "Ines", "Pavel", "Grace", "Tomas")
LAST_NAMES = ("Lopez", "Becker", "Martin", "Okafor", "Tanaka", "Rossi", "Berg", "Haddad", "Silva", "Novak", "Kim")
N_PRODUCTS = 2000
SPAN_SECONDS = 730 * 86400  # the loaded cases were opened over the last two years
NULL = "\\N"


def copy_escape(text: str) -> str:
    """A value for COPY's text format."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def weighted(rng: random.Random, weights: Mapping[Any, float]) -> Callable[[], Any]:
    """A fast chooser for ``weights`` (bisect on cumulative weights)."""
    keys = list(weights)
    cumulative = list(itertools.accumulate(weights.values()))
    total = cumulative[-1]

    def choose() -> Any:
        return keys[bisect.bisect_right(cumulative, rng.random() * total)]

    return choose


def scramble(value: int) -> int:
    """A cheap deterministic pseudo-random 31-bit number for ``value`` (no state to keep)."""
    value = (value * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF
    value ^= value >> 15
    return (value * 2246822519) & 0x7FFFFFFF


class Timestamps:
    """Fast ``timestamptz`` text for integer epoch seconds (COPY parses it far faster than Python formats)."""

    def __init__(self, first_day: date, days: int) -> None:
        self.epoch0 = int(datetime(first_day.year, first_day.month, first_day.day, tzinfo=timezone.utc).timestamp())
        self.days = [(first_day + timedelta(days=d)).isoformat() for d in range(days)]
        self.hms = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]

    def ts(self, epoch: int) -> str:
        day, second = divmod(epoch - self.epoch0, 86400)
        return f"{self.days[day]} {self.hms[second]}+00"

    def day(self, epoch: int) -> str:
        return self.days[(epoch - self.epoch0) // 86400]


@dataclass
class DecisionTemplate:
    """A real policy decision (``Decision.to_dict``) and each line's stored rule results, COPY-escaped."""

    outcome: str
    summary: str
    decision: str
    line_results: list[str]


class Dataset:
    """Generates the bench tenant's customers, orders and cases as COPY text, deterministically.

    ``plan`` fixes every per-case choice in compact arrays first, because order lines must be
    written (with quantities covering what the cases return) before the cases that point at them.
    """

    def __init__(self, tenant_id: int, cases: int, id_base: dict[str, int], number_prefix: str,
                 number_start: int, seed: int = 42) -> None:
        self.tenant_id = tenant_id
        self.n_cases = cases
        self.n_customers = max(10, cases // 20)
        self.n_orders = max(1, cases * 3 // 10)
        self.big_customers = max(1, self.n_customers // 1000)
        self.id_base = id_base
        self.prefix = number_prefix
        self.start_number = number_start
        self.rng = random.Random(seed)
        self.now = int(time.time()) - 3600
        self.t0 = self.now - SPAN_SECONDS
        self.today = datetime.fromtimestamp(self.now, timezone.utc).date()
        first_day = datetime.fromtimestamp(self.t0 - 400 * 86400, timezone.utc).date()
        self.clock = Timestamps(first_day, 800 + SPAN_SECONDS // 86400)
        self.statuses: list[CaseStatus] = list(CaseStatus.__members__.values())
        self.decisions: dict[tuple[str, int, bool], DecisionTemplate] = {}

    # -- planning -----------------------------------------------------------------------

    def case_time(self, i: int) -> int:
        return self.t0 + i * SPAN_SECONDS // self.n_cases

    def first_case(self, order: int) -> int:
        return -(-order * self.n_cases // self.n_orders)

    def plan(self) -> None:
        rng = self.rng
        n_orders, n_cases = self.n_orders, self.n_cases
        line_count = weighted(rng, {1: 45, 2: 35, 3: 15, 4: 5})
        self.order_customer = [0] * n_orders
        self.order_line_start = [0] * (n_orders + 1)
        self.line_product: list[int] = []
        for o in range(n_orders):
            if o % 50 == 0:  # a few business customers with hundreds of cases
                self.order_customer[o] = (o // 50) % self.big_customers
            else:
                self.order_customer[o] = rng.randrange(self.n_customers)
            count = line_count()
            first_product = rng.randrange(N_PRODUCTS)
            self.line_product.extend((first_product + 37 * j) % N_PRODUCTS for j in range(count))
            self.order_line_start[o + 1] = self.order_line_start[o] + count
        self.line_requested = [0] * len(self.line_product)

        recent = weighted(rng, RECENT_WEIGHTS)
        older = weighted(rng, OLDER_WEIGHTS)
        approve_reason = weighted(rng, APPROVE_REASONS)
        review_reason = weighted(rng, REVIEW_REASONS)
        recent_from = int(n_cases * (1 - RECENT_SHARE))
        status_index = {s: k for k, s in enumerate(self.statuses)}
        self.case_status = bytearray(n_cases)
        self.case_reviewed = bytearray(n_cases)
        self.case_reason = [""] * n_cases
        self.case_line1 = [0] * n_cases
        self.case_line2 = [-1] * n_cases
        self.case_qty = bytearray(n_cases)
        for i in range(n_cases):
            status = recent() if i >= recent_from else older()
            self.case_status[i] = status_index[status]
            reviewed = status in REVIEW_ONLY or (status != S.REQUESTED and rng.random() < 0.2)
            self.case_reviewed[i] = reviewed
            self.case_reason[i] = review_reason() if reviewed else approve_reason()
            o = i * n_orders // n_cases
            start, end = self.order_line_start[o], self.order_line_start[o + 1]
            k = i - self.first_case(o)
            first = start + k % (end - start)
            qty = 2 if rng.random() < 0.1 else 1
            self.case_line1[i], self.case_qty[i] = first, qty
            self.line_requested[first] += qty
            if end - start > 1 and rng.random() < 0.1:
                second = start + (k + 1) % (end - start)
                self.case_line2[i] = second
                self.line_requested[second] += 1
        self.products = [self._product(p) for p in range(N_PRODUCTS)]

    def _product(self, p: int) -> tuple[str, str, Decimal, str, str, bool]:
        rng = self.rng
        noun, category = PRODUCT_KINDS[p % len(PRODUCT_KINDS)]
        title = f"{ADJECTIVES[(p // len(PRODUCT_KINDS)) % len(ADJECTIVES)]} {noun} #{p}"
        price = Decimal(rng.randrange(900, 40000)) / 100
        final_sale = rng.random() < 0.02
        tags = '["clearance"]' if final_sale else ('["new"]' if p % 7 == 0 else "[]")
        return f"SKU-{p:05d}", title, price, category, tags, final_sale

    def case_decision(self, i: int) -> DecisionTemplate:
        """The decision ``evaluate`` makes for case ``i``'s request (evaluated once per reason, line count and path)."""
        two_lines = self.case_line2[i] >= 0
        key = (self.case_reason[i], 2 if two_lines else 1, bool(self.case_reviewed[i]))
        template = self.decisions.get(key)
        if template is None:
            reason, _, reviewed = key
            titles = [self.products[self.line_product[self.case_line1[i]]][:3]]
            if two_lines:
                titles.append(self.products[self.line_product[self.case_line2[i]]][:3])
            today = self.today
            delivered = today - timedelta(days=6)
            facts = CaseFacts(
                today=today,
                lines=tuple(
                    LineFacts(key=str(index), sku=sku, title=title, quantity=1, unit_price=price, category="tents",
                              reason_code=reason, reason_requires_photo=reviewed, has_photo=False,
                              ordered_on=delivered - timedelta(days=3), delivered_on=delivered, order_number="SO1")
                    for index, (sku, title, price) in enumerate(titles)
                ),
                order_value=sum((price for _, _, price in titles), Decimal("0")),
                preferred_resolution="refund",
            )
            result = evaluate(facts, PolicyRules())
            data = result.to_dict()
            template = DecisionTemplate(
                outcome=result.outcome,
                summary=copy_escape(result.summary),
                decision=copy_escape(json.dumps(data, ensure_ascii=False)),
                line_results=[
                    copy_escape(json.dumps([{"rule": r.rule, "passed": r.passed, "why": r.why, "effect": r.effect}
                                            for r in line.results], ensure_ascii=False))
                    for line in result.lines
                ],
            )
            self.decisions[key] = template
        return template

    def steps(self, i: int) -> list[str]:
        """The actions of case ``i``'s timeline after ``create``."""
        status = self.statuses[self.case_status[i]]
        if status == S.REQUESTED:
            return []
        if status in REVIEW_ONLY:
            return ["flag", *REVIEW_ONLY[status]]
        head = ["flag", "approve"] if self.case_reviewed[i] else ["approve_auto"]
        return [*head, *AFTER_APPROVAL[status]]

    def step_times(self, i: int, steps: Sequence[str]) -> list[int]:
        """When each step happened; the same answer every time it is asked.

        A recent case's timeline is compressed to end before now rather than run into the future.
        """
        start = self.case_time(i)
        gaps = []
        for n, step in enumerate(steps):
            _, _, _, low, high = STEPS[step]
            gaps.append(low + scramble(i * 16 + n) % (high - low + 1))
        room, needed = self.now - start, sum(gaps)
        if needed > room:
            gaps = [gap * room // needed for gap in gaps]
        times = [start]
        for gap in gaps:
            times.append(times[-1] + gap)
        return times

    # -- COPY text ------------------------------------------------------------------------

    @staticmethod
    def _chunks(rows: Iterator[str], size: int = 4000) -> Iterator[str]:
        buffer: list[str] = []
        for row in rows:
            buffer.append(row)
            if len(buffer) >= size:
                yield "".join(buffer)
                buffer.clear()
        if buffer:
            yield "".join(buffer)

    def customers(self) -> Iterator[str]:
        base, tenant = self.id_base["customers"], self.tenant_id
        created = self.clock.ts(self.t0 - 300 * 86400)

        def rows() -> Iterator[str]:
            for k in range(self.n_customers):
                first, last = FIRST_NAMES[k % len(FIRST_NAMES)], LAST_NAMES[(k // len(FIRST_NAMES)) % len(LAST_NAMES)]
                email = f"{first}.{last}.{k}@bench.example".lower()
                yield f"{base + k + 1}\t{tenant}\t{email}\t{first} {last}\t{created}\n"

        return self._chunks(rows())

    def order_dates(self, o: int) -> tuple[int, int | None]:
        """(ordered at, delivered at or None) for order ``o``: a week to four weeks before its first case."""
        first_case_at = self.case_time(self.first_case(o))
        ordered = first_case_at - (7 + scramble(o) % 21) * 86400
        if scramble(o + 7) % 100 < 3:
            return ordered, None
        return ordered, ordered + (2 + scramble(o + 13) % 5) * 86400

    def orders(self) -> Iterator[str]:
        base, customer_base, tenant = self.id_base["orders"], self.id_base["customers"], self.tenant_id

        def rows() -> Iterator[str]:
            for o in range(self.n_orders):
                ordered, delivered = self.order_dates(o)
                total = Decimal("0")
                for line in range(self.order_line_start[o], self.order_line_start[o + 1]):
                    total += self.products[self.line_product[line]][2] * self.line_quantity(line)
                stamp = self.clock.ts(ordered)
                delivered_on = self.clock.day(delivered) if delivered is not None else NULL
                customer_id = customer_base + self.order_customer[o] + 1
                yield (f"{base + o + 1}\t{tenant}\tSO{1_000_000 + o}\t{customer_id}\tUSD\t"
                       f"{self.clock.day(ordered)}\t{delivered_on}\t{total}\t{stamp}\t{stamp}\n")

        return self._chunks(rows())

    def line_quantity(self, line: int) -> int:
        return max(1, self.line_requested[line] + scramble(line) % 2)

    def order_lines(self) -> Iterator[str]:
        base, order_base, tenant = self.id_base["order_lines"], self.id_base["orders"], self.tenant_id

        def rows() -> Iterator[str]:
            for o in range(self.n_orders):
                for line in range(self.order_line_start[o], self.order_line_start[o + 1]):
                    sku, title, price, category, tags, final_sale = self.products[self.line_product[line]]
                    yield (f"{base + line + 1}\t{tenant}\t{order_base + o + 1}\t{sku}\t{title}\t"
                           f"{self.line_quantity(line)}\t{price}\t{category}\t{tags}\t{'t' if final_sale else 'f'}\n")

        return self._chunks(rows())

    def cases(self) -> Iterator[str]:
        base, customer_base, tenant = self.id_base["cases"], self.id_base["customers"], self.tenant_id
        channel, resolution = weighted(self.rng, CHANNELS), weighted(self.rng, RESOLUTIONS)
        labelled = {"issue_label"}

        def rows() -> Iterator[str]:
            for i in range(self.n_cases):
                status = self.statuses[self.case_status[i]]
                steps = self.steps(i)
                times = self.step_times(i, steps)
                o = i * self.n_orders // self.n_cases
                customer_id = customer_base + self.order_customer[o] + 1
                decision = self.case_decision(i)
                preferred = resolution() or NULL
                held_from = "authorized" if status == S.ON_HOLD else NULL
                if i % 3 == 0:
                    ticket = f"zendesk\t{400000 + i}\thttps://bench.zendesk.example/agent/tickets/{400000 + i}"
                else:
                    ticket = f"{NULL}\t{NULL}\t{NULL}"
                if labelled.intersection(steps):
                    at = times[steps.index("issue_label") + 1]
                    shipment = (f"UPS\t1Z{i:016d}\thttps://labels.bench.example/{i}.pdf\t"
                                f"{self.clock.ts(at)}")
                else:
                    shipment = f"{NULL}\t{NULL}\t{NULL}\t{NULL}"
                kind = "exchange" if i % 20 == 0 else "return"
                created, last = self.clock.ts(times[0]), self.clock.ts(times[-1])
                yield (f"{base + i + 1}\t{tenant}\t{self.prefix}{self.start_number + i}\t{status.value}\t{held_from}\t"
                       f"{kind}\t{channel()}\t{customer_id}\ten\tUSD\t{preferred}\t{ticket}\t{shipment}\t1\t"
                       f"{decision.decision}\t{NULL}\t{len(steps) + 1}\t{created}\t{last}\t{last}\n")

        return self._chunks(rows())

    def line_state(self, status: CaseStatus, qty: int) -> tuple[int, int, int, str, str, str, str]:
        """(authorized, received, accepted, reception status, decision status, grade, disposition)."""
        received_statuses = (S.RECEIVED, S.INSPECTED, S.RESOLVING, S.RESOLVED, S.CLOSED)
        inspected = status in (S.INSPECTED, S.RESOLVING, S.RESOLVED, S.CLOSED)
        authorized = 0 if status in (S.REQUESTED, S.PENDING_REVIEW, S.AWAITING_CUSTOMER, S.REJECTED) else qty
        received = qty if status in received_statuses else 0
        accepted = qty if inspected else 0
        reception = {S.IN_TRANSIT: "in_transit", S.EXCEPTION: "lost_in_transit", S.CANCELLED: "cancelled"}.get(
            status, "received" if status in received_statuses else "awaiting")
        decision = "rejected" if status == S.REJECTED else "accepted" if inspected else "pending"
        grade, disposition = ("A", "restock") if inspected else (NULL, NULL)
        return authorized, received, accepted, reception, decision, grade, disposition

    def case_lines(self) -> Iterator[str]:
        base, case_base, order_base = self.id_base["case_lines"], self.id_base["cases"], self.id_base["orders"]
        line_base, tenant = self.id_base["order_lines"], self.tenant_id

        def rows() -> Iterator[str]:
            next_id = base
            for i in range(self.n_cases):
                status = self.statuses[self.case_status[i]]
                o = i * self.n_orders // self.n_cases
                decision = self.case_decision(i)
                reason = self.case_reason[i]
                fault = FAULT_PARTY.get(reason, "customer")
                comment = "Please see the photos I sent to support." if i % 5 == 0 else NULL
                lines = [(self.case_line1[i], self.case_qty[i])]
                if self.case_line2[i] >= 0:
                    lines.append((self.case_line2[i], 1))
                for position, (line, qty) in enumerate(lines):
                    next_id += 1
                    sku, title, price, _, _, _ = self.products[self.line_product[line]]
                    state = self.line_state(status, qty)
                    authorized, received, accepted, reception, verdict, grade, disposition = state
                    yield (f"{next_id}\t{tenant}\t{case_base + i + 1}\t{position}\t{order_base + o + 1}\t"
                           f"{line_base + line + 1}\t{sku}\t{title}\t{price}\t{qty}\t{authorized}\t{received}\t"
                           f"{accepted}\t{reason}\t{comment}\t{reception}\t{verdict}\t"
                           f"{decision.line_results[position]}\t0.00\t{grade}\t{disposition}\t{NULL}\t{fault}\t{NULL}\n")

        return self._chunks(rows())

    def _case_amount(self, i: int) -> Decimal:
        total = self.products[self.line_product[self.case_line1[i]]][2] * self.case_qty[i]
        if self.case_line2[i] >= 0:
            total += self.products[self.line_product[self.case_line2[i]]][2]
        return total

    def case_events(self) -> Iterator[str]:
        base, case_base, tenant = self.id_base["case_events"], self.id_base["cases"], self.tenant_id
        first_line_id, first_settlement_id = self.id_base["case_lines"], self.id_base["settlements"]

        def rows() -> Iterator[str]:
            event_id, line_id, settlement_id = base, first_line_id, first_settlement_id
            for i in range(self.n_cases):
                steps = self.steps(i)
                times = self.step_times(i, steps)
                case_id = case_base + i + 1
                decision = self.case_decision(i)
                qty = self.case_qty[i]
                ids = [line_id + 1] + ([line_id + 2] if self.case_line2[i] >= 0 else [])
                qtys = [qty] + ([1] if len(ids) == 2 else [])
                line_id += len(ids)
                amount = self._case_amount(i)
                outcome = "approve" if decision.outcome == "approve" else "review"
                event_id += 1
                yield (f"{event_id}\t{tenant}\t{case_id}\tcreate\t{NULL}\trequested\tapi\ttoken:1\tapi\t{NULL}\t"
                       f'{{"policy_version": 1, "outcome": "{outcome}"}}\t{self.clock.ts(times[0])}\n')
                for n, step in enumerate(steps):
                    source, target, system, _, _ = STEPS[step]
                    reason = NULL
                    data = "{}"
                    if step == "approve_auto":
                        reason = f"Auto-approved by policy version 1: {decision.summary}"
                    elif step == "flag":
                        reason = decision.summary
                    elif step == "approve":
                        authorized = ", ".join(f'"{lid}": {q}' for lid, q in zip(ids, qtys, strict=True))
                        data = f'{{"authorized": {{{authorized}}}, "exception_lines": []}}'
                    elif step == "reject":
                        reason = "Damage caused by misuse, not in transit."
                    elif step == "request_info":
                        reason = "Could you send us a photo of the damage?"
                        data = f'{{"message": "{reason}"}}'
                    elif step == "issue_label":
                        data = (f'{{"carrier": "UPS", "tracking_number": "1Z{i:016d}", '
                                f'"label_url": "https://labels.bench.example/{i}.pdf"}}')
                    elif step == "ship":
                        data = f'{{"tracking_number": "1Z{i:016d}"}}'
                    elif step == "receive":
                        got = ", ".join(f'"{lid}": {{"quantity": {q}, "outcome": "received"}}'
                                        for lid, q in zip(ids, qtys, strict=True))
                        data = f'{{"received": {{{got}}}}}'
                    elif step == "inspect":
                        seen = ", ".join(f'"{lid}": {{"grade": "A", "disposition": "restock", "accepted": {q}}}'
                                         for lid, q in zip(ids, qtys, strict=True))
                        data = f'{{"inspected": {{{seen}}}}}'
                    elif step == "resolve":
                        settlement_id += 1
                        data = (f'{{"settlement": {{"kind": "refund", "gross": "{amount}", "fees": "0.00", '
                                f'"bonus": "0.00", "amount": "{amount}", "price_difference": "0.00", '
                                f'"customer_owes": "0.00"}}, "exception": false}}')
                    elif step == "settle":
                        data = f'{{"settled": [{settlement_id}], "external_ref": "re_{i}"}}'
                    elif step == "hold":
                        reason = "Chargeback opened by the customer's bank."
                    actor = "system\t\\N\tsystem" if system else "api\ttoken:1\tapi"
                    action = "approve" if step == "approve_auto" else step
                    event_id += 1
                    yield (f"{event_id}\t{tenant}\t{case_id}\t{action}\t{source}\t{target}\t{actor}\t{reason}\t"
                           f"{data}\t{self.clock.ts(times[n + 1])}\n")

        return self._chunks(rows())

    def settlements(self) -> Iterator[str]:
        base, case_base, tenant = self.id_base["settlements"], self.id_base["cases"], self.tenant_id

        def rows() -> Iterator[str]:
            settlement_id = base
            for i in range(self.n_cases):
                steps = self.steps(i)
                if "resolve" not in steps:
                    continue
                times = self.step_times(i, steps)
                created = self.clock.ts(times[steps.index("resolve") + 1])
                settled = "settle" in steps
                updated = self.clock.ts(times[steps.index("settle") + 1]) if settled else created
                amount = self._case_amount(i)
                settlement_id += 1
                yield (f"{settlement_id}\t{tenant}\t{case_base + i + 1}\trefund\t"
                       f"{'succeeded' if settled else 'pending'}\tUSD\t{amount}\t0.00\t0.00\t{amount}\t0.00\t0.00\t"
                       f"{f're_{i}' if settled else NULL}\t{created}\t{updated}\n")

        return self._chunks(rows())


# ---- database --------------------------------------------------------------------------------

def migrate_and_prepare_tenant(database_url: str) -> tuple[int, str, int, dict[str, Any]]:
    """Migrate, then create the bench tenant or issue it a new token.

    :return: (tenant id, API token, cases the tenant holds, app config values the loader needs)
    """
    import flask_migrate
    import sqlalchemy as sa

    from app import create_app
    from app.cases.models import ReturnCase
    from app.extensions import db
    from app.tenants.models import Tenant
    from app.tenants.services import create_tenant, issue_token
    from config import DevelopmentConfig

    app = create_app(DevelopmentConfig, SQLALCHEMY_DATABASE_URI=database_url)
    with app.app_context():
        flask_migrate.upgrade()
        tenant_id = db.session.scalar(sa.select(Tenant.id).where(Tenant.slug == TENANT_SLUG))
        if tenant_id is None:
            issued = create_tenant("Rebound Bench", slug=TENANT_SLUG, currency="USD")
            tenant_id = issued.token.tenant_id
        else:
            issued = issue_token(tenant_id, f"bench-{int(time.time())}")
        cases = db.session.scalar(sa.select(sa.func.count()).select_from(ReturnCase).where(
            ReturnCase.tenant_id == tenant_id)) or 0
        config = {key: app.config[key] for key in ("REBOUND_CASE_NUMBER_PREFIX", "REBOUND_CASE_NUMBER_START")}
        db.engine.dispose()
    return tenant_id, issued.plain, cases, config


def check_schema(conn: psycopg.Connection[Any]) -> None:
    """Fail clearly if a migration added a required column the loader does not fill (or dropped one)."""
    rows = conn.execute(
        "SELECT table_name, column_name, is_nullable = 'NO' AND column_default IS NULL "
        "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ANY(%s)",
        (list(COLUMNS),),
    ).fetchall()
    present: dict[str, set[str]] = {}
    problems = []
    for table, column, required in rows:
        present.setdefault(table, set()).add(column)
        if required and column not in COLUMNS[table]:
            problems.append(f"{table}.{column} is NOT NULL without a default but the loader does not fill it")
    for table, columns in COLUMNS.items():
        problems += [f"{table}.{c} no longer exists" for c in columns if c not in present.get(table, set())]
    if problems:
        raise SystemExit("bench/api.py is out of date with the schema:\n  " + "\n  ".join(problems))


@dataclass
class Deferred:
    """Secondary indexes and foreign keys of the loaded tables, dropped for the load and rebuilt after it."""

    indexes: list[tuple[str, str]]  # (name, CREATE INDEX statement)
    foreign_keys: list[tuple[str, str, str]]  # (table, constraint name, definition)


def drop_indexes_and_foreign_keys(conn: psycopg.Connection[Any], tables: Sequence[str]) -> Deferred:
    """Drop what makes COPY slow (per-row index inserts and FK trigger checks), remembering the definitions.

    Primary keys and unique constraints stay. Done inside the loading transaction, so a failed load
    rolls the drops back too. Building an index once after the load (sorted, in parallel) and
    validating a foreign key with one join is far cheaper than maintaining them row by row.
    """
    indexes = conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
        "WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')) "
        "ORDER BY 1",
        (list(tables),),
    ).fetchall()
    foreign_keys = conn.execute(
        "SELECT t.relname, f.conname, pg_get_constraintdef(f.oid) FROM pg_constraint f "
        "JOIN pg_class t ON t.oid = f.conrelid WHERE f.contype = 'f' AND f.conrelid = ANY(%s::regclass[]) "
        "ORDER BY 1, 2",
        (list(tables),),
    ).fetchall()
    for table, name, _ in foreign_keys:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name)))
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return Deferred(indexes=indexes, foreign_keys=foreign_keys)


def rebuild(conn: psycopg.Connection[Any], deferred: Deferred) -> None:
    """Recreate what ``drop_indexes_and_foreign_keys`` dropped, from the saved definitions."""
    for _, statement in deferred.indexes:
        conn.execute(sql.SQL(statement))  # pg_get_indexdef output
    for table, name, definition in deferred.foreign_keys:
        conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)))  # pg_get_constraintdef output


def scalar(conn: psycopg.Connection[Any], query: sql.Composed) -> Any:
    row = conn.execute(query).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {query.as_string(conn)}")
    return row[0]


def load(database_url: str, tenant_id: int, cases: int, config: dict[str, Any]) -> dict[str, float]:
    """Bulk-load the data set with COPY in one transaction; return seconds per step."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        check_schema(conn)
        # The loaded tables and every table that references them: TRUNCATE needs them all at once.
        related = [row[0] for row in conn.execute(
            "WITH RECURSIVE refs(oid) AS (SELECT unnest(%s::regclass[])::oid UNION "
            "SELECT f.conrelid FROM pg_constraint f JOIN refs ON f.confrelid = refs.oid WHERE f.contype = 'f') "
            "SELECT c.relname FROM refs JOIN pg_class c ON c.oid = refs.oid ORDER BY 1",
            (list(COLUMNS),),
        )]
        empty = all(
            scalar(conn, sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(t))) for t in related
        )
        freeze = ""
        if empty:
            # TRUNCATE in the loading transaction allows COPY FREEZE: rows are written frozen and
            # all-visible, so no vacuum has to rewrite hint bits during the measurements.
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, related))))
            freeze = " WITH (FREEZE)"
        id_base = {
            table: scalar(conn, sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(table)))
            for table in COLUMNS
        }
        deferred = drop_indexes_and_foreign_keys(conn, list(COLUMNS))
        dataset = Dataset(tenant_id, cases, id_base, str(config["REBOUND_CASE_NUMBER_PREFIX"]),
                          int(config["REBOUND_CASE_NUMBER_START"]))
        step = time.perf_counter()
        dataset.plan()
        timings["plan"] = time.perf_counter() - step
        generators: dict[str, Callable[[], Iterator[str]]] = {
            "customers": dataset.customers, "orders": dataset.orders, "order_lines": dataset.order_lines,
            "cases": dataset.cases, "case_lines": dataset.case_lines, "case_events": dataset.case_events,
            "settlements": dataset.settlements,
        }
        with conn.cursor() as cur:
            for table, generate in generators.items():
                step = time.perf_counter()
                statement = sql.SQL("COPY {} ({}) FROM STDIN" + freeze).format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table])))
                with cur.copy(statement) as copy:
                    for chunk in generate():
                        copy.write(chunk)
                timings[f"copy {table}"] = time.perf_counter() - step
                print(f"  COPY {table:<12} {cur.rowcount:>10,} rows  {timings[f'copy {table}']:7.1f} s", flush=True)
            for table in COLUMNS:
                cur.execute(sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), "
                                    "(SELECT greatest(max(id), 1) FROM {}))").format(sql.Literal(table),
                                                                                     sql.Identifier(table)))
            cur.execute("UPDATE tenants SET case_counter = %s WHERE id = %s", (cases, tenant_id))
        step = time.perf_counter()
        rebuild(conn, deferred)
        timings["indexes and foreign keys"] = time.perf_counter() - step
        print(f"  rebuilt {len(deferred.indexes)} indexes and {len(deferred.foreign_keys)} foreign keys "
              f"{timings['indexes and foreign keys']:7.1f} s", flush=True)
        step = time.perf_counter()
        conn.commit()
        timings["commit"] = time.perf_counter() - step
    step = time.perf_counter()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        for table in (*COLUMNS, "tenants"):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        timings["vacuum analyze"] = time.perf_counter() - step
        step = time.perf_counter()
        conn.execute("CHECKPOINT")
        timings["checkpoint"] = time.perf_counter() - step
    timings["total"] = time.perf_counter() - started
    return timings


@dataclass
class Probes:
    """Real values to filter by, sampled from the loaded data."""

    emails: list[str]
    busy_emails: list[str]
    order_numbers: list[str]
    case_numbers: list[str]


def sample_probes(database_url: str, tenant_id: int, cases: int, config: dict[str, Any], rng: random.Random) -> Probes:
    with psycopg.connect(libpq_url(database_url)) as conn:
        emails = [r[0] for r in conn.execute(
            "SELECT email FROM customers WHERE tenant_id = %s ORDER BY random() LIMIT 300", (tenant_id,))]
        busy = [r[0] for r in conn.execute(
            "SELECT cu.email FROM cases ca JOIN customers cu ON cu.id = ca.customer_id WHERE ca.tenant_id = %s "
            "GROUP BY cu.email ORDER BY count(*) DESC LIMIT 20", (tenant_id,))]
        orders = [r[0] for r in conn.execute(
            "SELECT o.number FROM orders o WHERE o.tenant_id = %s AND o.number LIKE 'SO%%' "
            "ORDER BY random() LIMIT 300", (tenant_id,))]
    prefix, start = config["REBOUND_CASE_NUMBER_PREFIX"], int(config["REBOUND_CASE_NUMBER_START"])
    numbers = [f"{prefix}{start + rng.randrange(cases)}" for _ in range(300)]
    return Probes(emails, busy, orders, numbers)


# ---- client and measurements -------------------------------------------------------------------

@dataclass
class Sample:
    kind: str
    status: int  # 0: the request failed without an HTTP answer
    seconds: float


class Client:
    """One HTTP connection (reopened per request, since sync gunicorn workers close it)."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.json_headers = {**self.headers, "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes, float]:
        payload = json.dumps(body).encode() if body is not None else None
        headers = self.json_headers if payload is not None else self.headers
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return 0, b"", time.perf_counter() - start
        return response.status, data, time.perf_counter() - start

    def close(self) -> None:
        self.conn.close()


Task = Callable[[Client], list[Sample]]


@dataclass
class PhaseRun:
    samples: list[Sample]
    wall_seconds: float
    skipped: int  # tasks not started because the phase ran out of time


def run_tasks(tasks: Sequence[Task], threads: int, make_client: Callable[[], Client],
              max_seconds: float = math.inf) -> PhaseRun:
    """Run ``tasks`` on ``threads`` threads, each with its own client; collect every sample.

    No task is started after ``max_seconds``: the tasks are shuffled beforehand, so the ones
    that ran are a fair sample of the mix.
    """
    pending = iter(tasks)
    lock = threading.Lock()
    samples: list[Sample] = []
    started = 0
    deadline = time.perf_counter() + max_seconds

    def work() -> None:
        nonlocal started
        client, local = make_client(), []
        try:
            while True:
                with lock:
                    task = next(pending, None) if time.perf_counter() < deadline else None
                    started += task is not None
                if task is None:
                    break
                try:
                    local.extend(task(client))
                except Exception as exc:  # noqa: BLE001  (a broken task must not end the thread)
                    local.append(Sample(f"task error: {exc!r}"[:200], 0, 0.0))
        finally:
            client.close()
            with lock:
                samples.extend(local)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return PhaseRun(samples, time.perf_counter() - start, len(tasks) - started)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Latency:
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    error_statuses: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, samples: Sequence[Sample], ok: Callable[[int], bool] = lambda s: 200 <= s < 300) -> Latency:
        good = sorted(s.seconds * 1000 for s in samples if ok(s.status))
        bad: dict[str, int] = {}
        for s in samples:
            if not ok(s.status):
                bad[str(s.status)] = bad.get(str(s.status), 0) + 1
        return cls(
            requests=len(samples), errors=len(samples) - len(good),
            p50_ms=percentile(good, 50), p95_ms=percentile(good, 95), p99_ms=percentile(good, 99),
            mean_ms=sum(good) / len(good) if good else float("nan"), max_ms=good[-1] if good else float("nan"),
            error_statuses=bad,
        )


def path_with(base: str, **params: str | int) -> str:
    return f"{base}?{urllib.parse.urlencode(params)}"


def simple(kind: str, method: str, path: str, body: dict[str, Any] | None = None) -> Task:
    def task(client: Client) -> list[Sample]:
        status, _, seconds = client.call(method, path, body)
        return [Sample(kind, status, seconds)]

    return task


def list_tasks(probes: Probes, count: int, rng: random.Random) -> list[Task]:
    """The mixed list-page workload; ``status`` tasks also fetch page 2 through the returned cursor."""

    def status_pages(client: Client) -> list[Sample]:
        status, body, seconds = client.call("GET", path_with("/api/v1/cases", status="pending_review", limit=50))
        samples = [Sample("status=pending_review", status, seconds)]
        cursor = json.loads(body).get("next_cursor") if status == 200 else None
        if cursor:
            path = path_with("/api/v1/cases", status="pending_review", limit=50, cursor=cursor)
            status, _, seconds = client.call("GET", path)
            samples.append(Sample("status=pending_review, page 2 (cursor)", status, seconds))
        return samples

    def listing(kind: str, **params: str) -> Task:
        return simple(kind, "GET", path_with("/api/v1/cases", **params, limit=50))

    makers: list[Callable[[], Task]] = [
        lambda: status_pages,
        lambda: listing("customer_email=", customer_email=rng.choice(
            probes.busy_emails if rng.random() < 0.2 else probes.emails)),
        lambda: listing("order_number=", order_number=rng.choice(probes.order_numbers)),
        lambda: listing("q=<case number>", q=rng.choice(probes.case_numbers)),
        lambda: listing("q=<email>", q=rng.choice(probes.emails)),
        lambda: listing("q=<order number>", q=rng.choice(probes.order_numbers)),
    ]
    tasks = [makers[n % len(makers)]() for n in range(count)]
    rng.shuffle(tasks)
    return tasks


LIST_KINDS = ("status=pending_review", "status=pending_review, page 2 (cursor)", "customer_email=", "order_number=",
              "q=<case number>", "q=<email>", "q=<order number>")


def order_body(number: str, email: str, today: date) -> dict[str, Any]:
    ordered = today - timedelta(days=8)
    return {
        "number": number, "currency": "USD", "ordered_on": ordered.isoformat(),
        "delivered_on": (ordered + timedelta(days=3)).isoformat(),
        "customer": {"email": email, "name": "Bench Customer"},
        "lines": [
            {"sku": "BENCH-TENT", "title": "Bench tent", "quantity": 4, "unit_price": "249.00", "category": "tents"},
            {"sku": "BENCH-SOCK", "title": "Bench socks", "quantity": 4, "unit_price": "24.00", "category": "socks"},
        ],
    }


def create_tasks(orders: Sequence[str], pending: list[str]) -> list[Task]:
    """One case per prepared order; alternately auto-approved and sent to review (collected in ``pending``)."""

    def make(order: str, reason: str) -> Task:
        body = {"lines": [{"order_number": order, "sku": "BENCH-TENT", "quantity": 1, "reason_code": reason}],
                "preferred_resolution": "refund"}

        def task(client: Client) -> list[Sample]:
            status, data, seconds = client.call("POST", "/api/v1/cases", body)
            if status == 201:
                case = json.loads(data)
                if case["status"] == "pending_review":
                    pending.append(case["number"])
            return [Sample(f"create ({reason})", status, seconds)]

        return task

    return [make(order, "damaged_in_transit" if n % 2 else "too_small") for n, order in enumerate(orders)]


# ---- the run -------------------------------------------------------------------------------------

@dataclass
class Figure:
    name: str
    latency: Latency
    target: str = ""
    meets: bool | None = None
    throughput_per_s: float | None = None
    unit: str = ""
    wall_seconds: float | None = None
    detail: bool = False  # a breakdown of the figure above it

    @classmethod
    def throughput(cls, name: str, run: PhaseRun, latency: Latency, unit: str = "cases/s") -> Figure:
        done = latency.requests - latency.errors
        return cls(name, latency, throughput_per_s=done / run.wall_seconds, unit=unit, wall_seconds=run.wall_seconds)

    @classmethod
    def p95(cls, name: str, latency: Latency, target_ms: float, detail: bool = False) -> Figure:
        meets = latency.p95_ms <= target_ms if latency.requests > latency.errors else None
        return cls(name, latency, f"p95 ≤ {target_ms:.0f} ms", meets, detail=detail)


def fmt_ms(value: float) -> str:
    return f"{value:.1f} ms" if value == value else "—"


def measure_all(port: int, token: str, probes: Probes, config: dict[str, Any], args: argparse.Namespace,
                rng: random.Random, notes: list[str]) -> list[Figure]:
    """Every measured phase against the running server, in order; returns the figures to report.

    Phases cut short by ``--max-phase-seconds`` are described in ``notes``.
    """

    def measure(name: str, tasks: Sequence[Task], threads: int, capped: bool = True) -> PhaseRun:
        print(f"  {name}: {len(tasks):,} tasks on {threads} threads", flush=True)
        limit = args.max_phase_seconds if capped else math.inf
        run = run_tasks(tasks, threads, lambda: Client(port, token), limit)
        if run.skipped:
            note = (f"{name}: stopped after {args.max_phase_seconds:.0f} s (--max-phase-seconds), "
                    f"{len(tasks) - run.skipped:,} of {len(tasks):,} tasks run")
            print(f"    {note}", flush=True)
            notes.append(note)
        return run

    n = args.requests
    prefix, start = config["REBOUND_CASE_NUMBER_PREFIX"], int(config["REBOUND_CASE_NUMBER_START"])
    figures: list[Figure] = []

    # Warm-up: every worker opens its database connections and imports what it loads lazily.
    warm = [simple("warm", "GET", "/healthz") for _ in range(100)]
    warm += [simple("warm", "GET", f"/api/v1/cases/{rng.choice(probes.case_numbers)}") for _ in range(200)]
    measure("warm-up", warm + list_tasks(probes, 120, rng), args.threads)

    healthz = measure("GET /healthz", [simple("healthz", "GET", "/healthz") for _ in range(n)], args.threads)
    figures.append(Figure("GET /healthz", Latency.of(healthz.samples), "baseline"))

    numbers = [f"{prefix}{start + rng.randrange(args.cases)}" for _ in range(n)]
    get = measure("GET case", [simple("get", "GET", f"/api/v1/cases/{num}") for num in numbers], args.threads)
    figures.append(Figure.p95("GET /api/v1/cases/{number}", Latency.of(get.samples), GET_CASE_TARGET_MS))

    lists = measure("list pages", list_tasks(probes, n, rng), args.threads)
    figures.append(Figure.p95("GET /api/v1/cases?<filter> (all kinds)", Latency.of(lists.samples), LIST_TARGET_MS))
    for kind in LIST_KINDS:
        latency = Latency.of([s for s in lists.samples if s.kind == kind])
        figures.append(Figure.p95(kind, latency, LIST_TARGET_MS, detail=True))

    run_id = f"{int(time.time()):x}"
    today = date.today()
    order_numbers = [f"BENCH-{run_id}-{k}" for k in range(n)]
    setup = [simple("order", "POST", "/api/v1/orders", order_body(num, f"new-{run_id}-{k}@bench.example", today))
             for k, num in enumerate(order_numbers)]
    orders = measure("setup: POST /api/v1/orders", setup, args.write_threads, capped=False)  # creates need them all
    orders_latency = Latency.of(orders.samples)
    if orders_latency.errors:
        raise RuntimeError(f"{orders_latency.errors} orders could not be posted: {orders_latency.error_statuses}")
    figures.append(Figure.throughput("POST /api/v1/orders (setup)", orders, orders_latency, "orders/s"))

    pending: list[str] = []
    creates = measure("POST /api/v1/cases", create_tasks(order_numbers, pending), args.write_threads)
    figures.append(Figure.throughput("POST /api/v1/cases", creates, Latency.of(creates.samples, lambda s: s == 201)))

    approve = [simple("approve", "POST", f"/api/v1/cases/{num}/actions/approve", {}) for num in pending]
    approves = measure("POST /api/v1/cases/{number}/actions/approve", approve, args.write_threads)
    figures.append(Figure.throughput("POST /api/v1/cases/{number}/actions/approve", approves,
                                     Latency.of(approves.samples)))
    return figures


def print_report(figures: list[Figure], header: list[str], notes: Sequence[str]) -> None:
    healthz = figures[0].latency
    base = fmt_ms(healthz.p95_ms)
    rows = [("figure", "n", "err", "p50", "p95", "p99", "measured vs target", "healthz p95")]
    for f in figures:
        lat = f.latency
        if f.throughput_per_s is not None:
            verdict = f"{f.throughput_per_s:.1f} {f.unit} ({lat.requests - lat.errors:,} in {f.wall_seconds:.1f} s)"
        elif f.meets is not None:
            verdict = f"p95 {fmt_ms(lat.p95_ms)} ({f.target}) {'OK' if f.meets else 'MISSED'}"
        elif f.target.startswith("p95"):
            verdict = "no successful request"
        else:
            verdict = f.target
        name = f"  {f.name}" if f.detail else f.name
        rows.append((name, f"{lat.requests:,}", str(lat.errors), fmt_ms(lat.p50_ms), fmt_ms(lat.p95_ms),
                     fmt_ms(lat.p99_ms), verdict, base))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    print()
    for line in header:
        print(line)
    print()
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), *(row[c].rjust(widths[c]) for c in range(1, 6)),
                 row[6].ljust(widths[6]), row[7].rjust(widths[7])]
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))

    by_name = {f.name: f for f in figures}
    get, lists = by_name["GET /api/v1/cases/{number}"], by_name["GET /api/v1/cases?<filter> (all kinds)"]
    measured = [f for f in figures if f.detail and f.meets is not None]
    worst = max(measured, key=lambda f: f.latency.p95_ms) if measured else lists
    create, approve = by_name["POST /api/v1/cases"], by_name["POST /api/v1/cases/{number}/actions/approve"]
    print()
    print(f"GET case p95 {fmt_ms(get.latency.p95_ms)} (target ≤ {GET_CASE_TARGET_MS:.0f} ms) | healthz p95 {base}")
    print(f"List page p95 {fmt_ms(lists.latency.p95_ms)} (target ≤ {LIST_TARGET_MS:.0f} ms; slowest kind "
          f"{worst.name}: {fmt_ms(worst.latency.p95_ms)}) | healthz p95 {base}")
    print(f"Create {create.throughput_per_s:.1f} cases/s, approve {approve.throughput_per_s:.1f} cases/s "
          f"({create.latency.requests:,} creates, {approve.latency.requests:,} approvals)")
    for note in notes:
        print(f"Note: {note}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000, help="cases to load (default: 1,000,000)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help=f"default: {DEFAULT_DATABASE_URL}")
    parser.add_argument("--requests", type=int, default=2000,
                        help="requests per latency figure, and cases to create (default: 2000)")
    parser.add_argument("--reload", action="store_true", help="drop and recreate the bench database, then load")
    parser.add_argument("--threads", type=int, default=2, help="client threads for the latency figures (default: 2)")
    parser.add_argument("--write-threads", type=int, default=4, help="client threads for creates/approves (default: 4)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default: 4)")
    parser.add_argument("--max-phase-seconds", type=float, default=120.0,
                        help="start no new request in a phase after this long (default: 120)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the request mix (default: 7)")
    args = parser.parse_args(argv)
    if args.cases < 100 or args.requests < 10:
        parser.error("--cases must be at least 100 and --requests at least 10")
    return args


def prepare_data(args: argparse.Namespace) -> tuple[int, str, dict[str, Any], dict[str, Any]]:
    """Database, schema, tenant and data set; returns (tenant id, token, app config, loader record)."""
    url = args.database_url
    record_path = RESULTS_DIR / f"loader-{database_name(url)}.json"
    print(f"Database {database_name(url)}: creating if missing, migrating", flush=True)
    ensure_database(url, recreate=args.reload)
    tenant_id, token, existing, config = migrate_and_prepare_tenant(url)
    if existing >= args.cases:
        previous = json.loads(record_path.read_text()) if record_path.exists() else None
        print(f"Using the {existing:,} cases already loaded (--reload to load again)", flush=True)
        return tenant_id, token, config, {"loaded": False, "existing_cases": existing, "previous_load": previous}
    if existing:
        print(f"The bench tenant holds {existing:,} cases, fewer than {args.cases:,}: recreating the database",
              flush=True)
        ensure_database(url, recreate=True)
        tenant_id, token, existing, config = migrate_and_prepare_tenant(url)
    print(f"Loading {args.cases:,} cases with COPY", flush=True)
    timings = load(url, tenant_id, args.cases, config)
    record = {"loaded": True, "cases": args.cases, "seconds": round(timings["total"], 1),
              "target_seconds": LOADER_TARGET_SECONDS, "steps": {k: round(v, 2) for k, v in timings.items()},
              "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"Loader: {args.cases:,} cases in {timings['total']:.1f} s (target < {LOADER_TARGET_SECONDS:.0f} s)",
          flush=True)
    return tenant_id, token, config, record


def loader_summary(loader: dict[str, Any]) -> str:
    if loader["loaded"]:
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in loader["steps"].items() if k != "total")
        return (f"Loader: {loader['cases']:,} cases in {loader['seconds']:.1f} s "
                f"(target < {LOADER_TARGET_SECONDS:.0f} s): {steps}")
    previous = loader.get("previous_load")
    if previous:
        return (f"Loader: skipped, {loader['existing_cases']:,} cases already loaded (that load: "
                f"{previous['cases']:,} cases in {previous['seconds']:.1f} s, {previous['at']})")
    return f"Loader: skipped, {loader['existing_cases']:,} cases already loaded"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up on SIGTERM as on Ctrl-C
    rng = random.Random(args.seed)

    tenant_id, token, config, loader = prepare_data(args)
    probes = sample_probes(args.database_url, tenant_id, args.cases, config, rng)
    server = Server("wsgi:app", ["-w", str(args.workers), "--threads", "1"], production_env(args.database_url),
                    RESULTS_DIR / "gunicorn.log")
    print(f"Starting {server.display} (production config)", flush=True)
    load_before = os.getloadavg()
    notes: list[str] = []
    try:
        server.start()
        figures = measure_all(server.port, token, probes, config, args, rng, notes)
    finally:
        server.stop()
    load_after = os.getloadavg()

    header = [
        f"Rebound API benchmark, {args.cases:,} cases: gunicorn wsgi:app -w {args.workers} --threads 1 "
        f"(production config); client threads: {args.threads} for latencies, {args.write_threads} for writes; "
        f"{os.cpu_count()} CPUs shared by server, database and client; load average (1 min) "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after the measurements",
        loader_summary(loader),
    ]
    print_report(figures, header, notes)
    results = {
        "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": load_after},
        "database": database_name(args.database_url),
        "cases": args.cases,
        "loader": loader,
        "server": {"command": f"gunicorn wsgi:app -w {args.workers} --threads 1", "config": "production"},
        "client": {"latency_threads": args.threads, "write_threads": args.write_threads, "requests": args.requests,
                   "max_phase_seconds": args.max_phase_seconds},
        "targets_ms": {"get_case_p95": GET_CASE_TARGET_MS, "list_page_p95": LIST_TARGET_MS},
        "figures": [asdict(f) for f in figures],
        "notes": notes,
    }
    out = RESULTS_DIR / "api.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nResults written to {out.relative_to(ROOT)}")
    errors = sum(f.latency.errors for f in figures if not f.detail)
    if errors:
        print(f"{errors} request(s) failed; see the err column and {server.log_path.relative_to(ROOT)}")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        sys.exit(130)
