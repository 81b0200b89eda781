"""The return-case state machine: statuses, actions and the rules between them.

What belongs here: the list of case statuses, the actions staff or the system
can take on a case, the single transition table that says which action moves
a case from which statuses to which status, and small pure helpers that read
that table (is this allowed, why not, what comes next, what can be done now).
Plain-language texts about statuses and actions for agents and docs live here
too, so that wording and rules cannot drift apart.

What does not belong here: persistence, permissions, tenants, HTTP, audit
logging or side effects (labels, refunds, e-mails). Those live in the service
layer, which asks this module "may I?" and "what next?" and then does the
work. This module therefore imports only the standard library, so it can be
used and tested without Flask, a database or an application context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "Action",
    "CaseStatus",
    "InvalidTransition",
    "NEXT_STEP",
    "PRE_RECEIPT",
    "STATUS_DESCRIPTIONS",
    "TERMINAL",
    "TRANSITIONS",
    "Transition",
    "allowed_actions",
    "blocking_reasons",
    "is_terminal",
    "next_status",
]


class CaseStatus(StrEnum):
    """Where a return case is in its life. Values are stored in the database."""

    REQUESTED = "requested"
    PENDING_REVIEW = "pending_review"
    AWAITING_CUSTOMER = "awaiting_customer"
    AUTHORIZED = "authorized"
    AWAITING_SHIPMENT = "awaiting_shipment"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    INSPECTED = "inspected"
    RESOLVING = "resolving"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    ON_HOLD = "on_hold"
    EXCEPTION = "exception"


class Action(StrEnum):
    """Something staff or the system does to a case. Values appear in APIs and audit logs."""

    APPROVE = "approve"
    FLAG = "flag"
    REJECT = "reject"
    REQUEST_INFO = "request_info"
    CUSTOMER_REPLIED = "customer_replied"
    ISSUE_LABEL = "issue_label"
    SHIP = "ship"
    RECEIVE = "receive"
    INSPECT = "inspect"
    APPROVE_RETURNLESS = "approve_returnless"
    RESOLVE = "resolve"
    SETTLE = "settle"
    CLOSE = "close"
    REOPEN = "reopen"
    CANCEL = "cancel"
    EXPIRE = "expire"
    HOLD = "hold"
    RELEASE = "release"
    MARK_LOST = "mark_lost"


@dataclass(frozen=True)
class Transition:
    """One row of the transition table.

    ``target`` is ``None`` only for RELEASE, whose destination is not fixed:
    it is whatever status the case had before it was put on hold.
    """

    action: Action
    sources: frozenset[CaseStatus]
    target: CaseStatus | None
    description: str
    system_only: bool = False


# "Terminal" means no work is left on the case. CLOSED is terminal even though
# REOPEN leads out of it: reopening is an exception, not a pending step.
TERMINAL: frozenset[CaseStatus] = frozenset(
    {CaseStatus.REJECTED, CaseStatus.CANCELLED, CaseStatus.EXPIRED, CaseStatus.CLOSED}
)

# Statuses before the item is back in the warehouse. Cancelling is only safe
# here: once goods are received, money or stock has to be dealt with.
PRE_RECEIPT: frozenset[CaseStatus] = frozenset(
    {
        CaseStatus.REQUESTED,
        CaseStatus.PENDING_REVIEW,
        CaseStatus.AWAITING_CUSTOMER,
        CaseStatus.AUTHORIZED,
        CaseStatus.AWAITING_SHIPMENT,
    }
)

# A hold pauses live work. Terminal cases have no work to pause, a held case is
# already paused, and a RESOLVED case only waits for CLOSE, so holding it would
# only keep it open for no reason.
_HOLDABLE: frozenset[CaseStatus] = frozenset(
    s
    for s in CaseStatus
    if s not in TERMINAL and s not in (CaseStatus.ON_HOLD, CaseStatus.RESOLVED)
)


def _s(*statuses: CaseStatus) -> frozenset[CaseStatus]:
    return frozenset(statuses)


_TABLE: tuple[Transition, ...] = (
    Transition(
        Action.APPROVE,
        _s(CaseStatus.REQUESTED, CaseStatus.PENDING_REVIEW),
        CaseStatus.AUTHORIZED,
        "Authorize the return so the customer can send it back.",
    ),
    Transition(
        Action.FLAG,
        _s(CaseStatus.REQUESTED),
        CaseStatus.PENDING_REVIEW,
        "Flag the request for a closer manual review before deciding.",
    ),
    Transition(
        Action.REJECT,
        _s(CaseStatus.REQUESTED, CaseStatus.PENDING_REVIEW),
        CaseStatus.REJECTED,
        "Turn the return request down.",
    ),
    Transition(
        Action.REQUEST_INFO,
        _s(CaseStatus.REQUESTED, CaseStatus.PENDING_REVIEW),
        CaseStatus.AWAITING_CUSTOMER,
        "Ask the customer for more information before deciding.",
    ),
    Transition(
        Action.CUSTOMER_REPLIED,
        _s(CaseStatus.AWAITING_CUSTOMER),
        CaseStatus.PENDING_REVIEW,
        "Put the case back into review because the customer answered.",
        system_only=True,
    ),
    Transition(
        Action.ISSUE_LABEL,
        _s(CaseStatus.AUTHORIZED),
        CaseStatus.AWAITING_SHIPMENT,
        "Issue a return shipping label to the customer.",
    ),
    Transition(
        Action.SHIP,
        _s(CaseStatus.AWAITING_SHIPMENT),
        CaseStatus.IN_TRANSIT,
        "Record that the carrier has picked up the parcel.",
    ),
    Transition(
        Action.RECEIVE,
        # A parcel can arrive without any carrier scan, or turn up after it
        # was reported lost, so receipt is accepted from all three.
        _s(CaseStatus.AWAITING_SHIPMENT, CaseStatus.IN_TRANSIT, CaseStatus.EXCEPTION),
        CaseStatus.RECEIVED,
        "Record that the returned item has arrived at the warehouse.",
    ),
    Transition(
        Action.INSPECT,
        _s(CaseStatus.RECEIVED),
        CaseStatus.INSPECTED,
        "Record the result of inspecting the returned item.",
    ),
    Transition(
        Action.APPROVE_RETURNLESS,
        _s(CaseStatus.AUTHORIZED),
        CaseStatus.RESOLVING,
        "Let the customer keep the item and go straight to resolution.",
    ),
    Transition(
        Action.RESOLVE,
        # From EXCEPTION: a lost parcel is resolved through a carrier claim.
        _s(CaseStatus.INSPECTED, CaseStatus.EXCEPTION),
        CaseStatus.RESOLVING,
        "Start the refund, exchange or credit that settles the case.",
    ),
    Transition(
        Action.SETTLE,
        _s(CaseStatus.RESOLVING),
        CaseStatus.RESOLVED,
        "Confirm that the refund, exchange or credit has gone through.",
    ),
    Transition(
        Action.CLOSE,
        _s(CaseStatus.RESOLVED, CaseStatus.REJECTED, CaseStatus.CANCELLED, CaseStatus.EXPIRED),
        CaseStatus.CLOSED,
        "Close the finished case and archive it.",
    ),
    Transition(
        Action.REOPEN,
        _s(CaseStatus.CLOSED),
        CaseStatus.PENDING_REVIEW,
        "Reopen a closed case for review because the customer came back about it.",
    ),
    Transition(
        Action.CANCEL,
        PRE_RECEIPT,
        CaseStatus.CANCELLED,
        "Cancel the return before the item has been received.",
    ),
    Transition(
        Action.EXPIRE,
        _s(CaseStatus.AWAITING_CUSTOMER, CaseStatus.AWAITING_SHIPMENT),
        CaseStatus.EXPIRED,
        "Expire the case because the customer did not act in time.",
        system_only=True,
    ),
    Transition(
        Action.HOLD,
        _HOLDABLE,
        CaseStatus.ON_HOLD,
        "Pause the case until an open question is cleared.",
    ),
    Transition(
        Action.RELEASE,
        _s(CaseStatus.ON_HOLD),
        None,
        "Take the case off hold and return it to the status it had before.",
    ),
    Transition(
        Action.MARK_LOST,
        _s(CaseStatus.IN_TRANSIT),
        CaseStatus.EXCEPTION,
        "Record that the carrier lost the parcel.",
    ),
)

# THE transition table. Everything else in this module is derived from it.
# Read-only so callers cannot change the rules at runtime by accident.
TRANSITIONS: Mapping[Action, Transition] = MappingProxyType({t.action: t for t in _TABLE})

# How to say "cannot <verb>" for each action in refusal messages. Kept next to
# the table and checked at import so a new action cannot ship without wording.
_CANNOT: Mapping[Action, str] = MappingProxyType(
    {
        Action.APPROVE: "be approved",
        Action.FLAG: "be flagged for review",
        Action.REJECT: "be rejected",
        Action.REQUEST_INFO: "have more information requested",
        Action.CUSTOMER_REPLIED: "take a customer reply",
        Action.ISSUE_LABEL: "have a label issued",
        Action.SHIP: "be shipped",
        Action.RECEIVE: "be received",
        Action.INSPECT: "be inspected",
        Action.APPROVE_RETURNLESS: "be approved as returnless",
        Action.RESOLVE: "be resolved",
        Action.SETTLE: "be settled",
        Action.CLOSE: "be closed",
        Action.REOPEN: "be reopened",
        Action.CANCEL: "be cancelled",
        Action.EXPIRE: "be expired",
        Action.HOLD: "be put on hold",
        Action.RELEASE: "be released from hold",
        Action.MARK_LOST: "be marked lost",
    }
)

STATUS_DESCRIPTIONS: Mapping[CaseStatus, str] = MappingProxyType(
    {
        CaseStatus.REQUESTED: "The customer has asked to return the item and nobody has looked at it yet.",
        CaseStatus.PENDING_REVIEW: "The request needs a decision from an agent.",
        CaseStatus.AWAITING_CUSTOMER: "Waiting for the customer to answer a question about the request.",
        CaseStatus.AUTHORIZED: "The return is approved but no return label has been issued yet.",
        CaseStatus.AWAITING_SHIPMENT: "Waiting for the customer to send the item back.",
        CaseStatus.IN_TRANSIT: "The parcel is on its way back to the warehouse.",
        CaseStatus.RECEIVED: "The item has arrived at the warehouse and waits for inspection.",
        CaseStatus.INSPECTED: "The item has been inspected and the case waits for a resolution.",
        CaseStatus.RESOLVING: "The refund, exchange or credit is being processed.",
        CaseStatus.RESOLVED: "The refund, exchange or credit is done; the case only needs closing.",
        CaseStatus.CLOSED: "The case is finished and archived.",
        CaseStatus.REJECTED: "The return request was turned down.",
        CaseStatus.CANCELLED: "The return was cancelled before the item came back.",
        CaseStatus.EXPIRED: "The customer did not act in time, so the return lapsed.",
        CaseStatus.ON_HOLD: "The case is paused until an open question is cleared.",
        CaseStatus.EXCEPTION: "The carrier lost the parcel.",
    }
)

NEXT_STEP: Mapping[CaseStatus, str] = MappingProxyType(
    {
        CaseStatus.REQUESTED: "Review the request: approve it, reject it, flag it for review or ask the customer for more information.",
        CaseStatus.PENDING_REVIEW: "Decide the case: approve it, reject it or ask the customer for more information.",
        CaseStatus.AWAITING_CUSTOMER: "Wait for the customer's reply; the case comes back for review when they answer.",
        CaseStatus.AUTHORIZED: "Issue a return label, or approve a returnless resolution if the item need not come back.",
        CaseStatus.AWAITING_SHIPMENT: "Wait for the customer to ship the item; mark it received if it arrives without a carrier scan.",
        CaseStatus.IN_TRANSIT: "Mark the item received when it arrives, or mark it lost if the carrier cannot deliver it.",
        CaseStatus.RECEIVED: "Inspect the returned item.",
        CaseStatus.INSPECTED: "Resolve the case with a refund, exchange or credit based on the inspection.",
        CaseStatus.RESOLVING: "Settle the case once the refund, exchange or credit has gone through.",
        CaseStatus.RESOLVED: "Close the case.",
        CaseStatus.CLOSED: "Nothing to do; reopen the case only if the customer comes back about it.",
        CaseStatus.REJECTED: "Nothing left to do; close the case to archive it.",
        CaseStatus.CANCELLED: "Nothing left to do; close the case to archive it.",
        CaseStatus.EXPIRED: "Nothing left to do; close the case to archive it.",
        CaseStatus.ON_HOLD: "Clear the open question, then release the hold.",
        CaseStatus.EXCEPTION: "Mark the item received if it turns up, or resolve the case through a carrier claim.",
    }
)


def _check_tables() -> None:
    # Fail at import rather than at some later request: a gap in these tables
    # is a programming error that every caller would hit eventually. Explicit
    # raises, not asserts, so the check survives ``python -O``.
    if set(TRANSITIONS) != set(Action) or len(_TABLE) != len(Action):
        raise RuntimeError("TRANSITIONS must have exactly one row per Action")
    for action, t in TRANSITIONS.items():
        if not t.sources:
            raise RuntimeError(f"{action} has no source statuses")
        if (t.target is None) != (action is Action.RELEASE):
            raise RuntimeError("only RELEASE may have no fixed target")
    for name, table, keys in (
        ("_CANNOT", _CANNOT, set(Action)),
        ("STATUS_DESCRIPTIONS", STATUS_DESCRIPTIONS, set(CaseStatus)),
        ("NEXT_STEP", NEXT_STEP, set(CaseStatus)),
    ):
        if set(table) != keys:
            raise RuntimeError(f"{name} must cover every key exactly")


_check_tables()


class InvalidTransition(Exception):
    """Raised when an action is not allowed on a case in its current status."""

    def __init__(self, action: Action, status: CaseStatus, reasons: list[str]) -> None:
        self.action = action
        self.status = status
        # Copied so later changes to the caller's list cannot alter the error.
        self.reasons = list(reasons)
        super().__init__(" ".join(self.reasons) or f"{action} is not allowed from {status}.")


def _names(statuses: Iterable[CaseStatus]) -> str:
    # Sorted so messages are stable across runs (frozenset order is not).
    return ", ".join(sorted(s.value for s in statuses))


def blocking_reasons(
    status: CaseStatus,
    action: Action,
    previous_status: CaseStatus | None = None,
) -> list[str]:
    """Return why ``action`` cannot be taken on a case in ``status``.

    An empty list means the action is allowed. ``previous_status`` is the
    status the case had before it was put on hold; it is only consulted for
    RELEASE. Plain strings are accepted for ``status``, ``action`` and
    ``previous_status`` (as read from a database); unknown values raise
    ``ValueError``.
    """
    status = CaseStatus(status)
    action = Action(action)
    transition = TRANSITIONS[action]

    if status not in transition.sources:
        # The specific message is clearer to an agent than the generic list.
        if action is Action.HOLD and status is CaseStatus.ON_HOLD:
            return ["The case is already on hold."]
        return [
            f"A case that is '{status.value}' cannot {_CANNOT[action]}; "
            f"{action.value} is possible from: {_names(transition.sources)}."
        ]

    if action is Action.RELEASE:
        if previous_status is None:
            return [
                "The status the case had before the hold is unknown, "
                "so it cannot be released."
            ]
        previous_status = CaseStatus(previous_status)
        # Only statuses that could have been put on hold are valid return
        # points; anything else means corrupt data, and releasing into it
        # would bypass the rest of the table.
        if previous_status not in TRANSITIONS[Action.HOLD].sources:
            return [
                f"The case cannot be released back to '{previous_status.value}', "
                "because a case in that status cannot be put on hold."
            ]
    return []


def next_status(
    status: CaseStatus,
    action: Action,
    previous_status: CaseStatus | None = None,
) -> CaseStatus:
    """Return the status a case moves to when ``action`` is taken.

    For RELEASE this is ``previous_status``. Raises ``InvalidTransition``
    carrying the reasons from :func:`blocking_reasons` when not allowed.
    """
    status = CaseStatus(status)
    action = Action(action)
    reasons = blocking_reasons(status, action, previous_status)
    if reasons:
        raise InvalidTransition(action, status, reasons)
    target = TRANSITIONS[action].target
    if target is None:
        # blocking_reasons has already made sure this is a valid status.
        return CaseStatus(previous_status)  # type: ignore[arg-type]
    return target


def allowed_actions(
    status: CaseStatus,
    previous_status: CaseStatus | None = None,
    include_system: bool = False,
) -> list[Action]:
    """List the actions allowed on a case in ``status``, in table order.

    System-only actions (customer reply, expiry) are left out unless
    ``include_system`` is true, because agents cannot trigger them.
    RELEASE is only listed when ``previous_status`` makes it possible.
    """
    return [
        t.action
        for t in TRANSITIONS.values()
        if (include_system or not t.system_only)
        and not blocking_reasons(status, t.action, previous_status)
    ]


def is_terminal(status: CaseStatus) -> bool:
    """Return True when no work is left on a case in ``status``."""
    return CaseStatus(status) in TERMINAL
