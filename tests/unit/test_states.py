"""Unit tests for the case state machine (app.cases.states). No app, no DB."""

from __future__ import annotations

import ast
import sys
from collections import deque
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cases import states
from app.cases.states import (
    NEXT_STEP,
    PRE_RECEIPT,
    STATUS_DESCRIPTIONS,
    TERMINAL,
    TRANSITIONS,
    Action,
    CaseStatus,
    InvalidTransition,
    Transition,
    allowed_actions,
    blocking_reasons,
    is_terminal,
    next_status,
)

S = CaseStatus
A = Action

# The spec, written out independently of the module's table so that a mistake
# in TRANSITIONS cannot also "fix" the test. (status, action) -> target.
HOLDABLE = [
    S.REQUESTED, S.PENDING_REVIEW, S.AWAITING_CUSTOMER, S.AUTHORIZED,
    S.AWAITING_SHIPMENT, S.IN_TRANSIT, S.RECEIVED, S.INSPECTED, S.RESOLVING,
    S.EXCEPTION,
]
EXPECTED: dict[tuple[CaseStatus, Action], CaseStatus] = {
    (S.REQUESTED, A.APPROVE): S.AUTHORIZED,
    (S.PENDING_REVIEW, A.APPROVE): S.AUTHORIZED,
    (S.REQUESTED, A.FLAG): S.PENDING_REVIEW,
    (S.REQUESTED, A.REJECT): S.REJECTED,
    (S.PENDING_REVIEW, A.REJECT): S.REJECTED,
    (S.REQUESTED, A.REQUEST_INFO): S.AWAITING_CUSTOMER,
    (S.PENDING_REVIEW, A.REQUEST_INFO): S.AWAITING_CUSTOMER,
    (S.AWAITING_CUSTOMER, A.CUSTOMER_REPLIED): S.PENDING_REVIEW,
    (S.AUTHORIZED, A.ISSUE_LABEL): S.AWAITING_SHIPMENT,
    (S.AWAITING_SHIPMENT, A.SHIP): S.IN_TRANSIT,
    (S.AWAITING_SHIPMENT, A.RECEIVE): S.RECEIVED,
    (S.IN_TRANSIT, A.RECEIVE): S.RECEIVED,
    (S.EXCEPTION, A.RECEIVE): S.RECEIVED,
    (S.RECEIVED, A.INSPECT): S.INSPECTED,
    (S.AUTHORIZED, A.APPROVE_RETURNLESS): S.RESOLVING,
    (S.INSPECTED, A.RESOLVE): S.RESOLVING,
    (S.EXCEPTION, A.RESOLVE): S.RESOLVING,
    (S.RESOLVING, A.SETTLE): S.RESOLVED,
    (S.RESOLVED, A.CLOSE): S.CLOSED,
    (S.REJECTED, A.CLOSE): S.CLOSED,
    (S.CANCELLED, A.CLOSE): S.CLOSED,
    (S.EXPIRED, A.CLOSE): S.CLOSED,
    (S.CLOSED, A.REOPEN): S.PENDING_REVIEW,
    (S.REQUESTED, A.CANCEL): S.CANCELLED,
    (S.PENDING_REVIEW, A.CANCEL): S.CANCELLED,
    (S.AWAITING_CUSTOMER, A.CANCEL): S.CANCELLED,
    (S.AUTHORIZED, A.CANCEL): S.CANCELLED,
    (S.AWAITING_SHIPMENT, A.CANCEL): S.CANCELLED,
    (S.AWAITING_CUSTOMER, A.EXPIRE): S.EXPIRED,
    (S.AWAITING_SHIPMENT, A.EXPIRE): S.EXPIRED,
    (S.IN_TRANSIT, A.MARK_LOST): S.EXCEPTION,
    **{(s, A.HOLD): S.ON_HOLD for s in HOLDABLE},
}

statuses = st.sampled_from(list(CaseStatus))
actions = st.sampled_from(list(Action))
maybe_status = st.none() | statuses


def outcome(status, action, previous=None):
    """Result of next_status as a comparable value: ("ok", s) or ("err", reasons)."""
    try:
        return ("ok", next_status(status, action, previous))
    except InvalidTransition as exc:
        return ("err", exc.action, exc.status, exc.reasons)


# --- the table itself -------------------------------------------------------


def test_enum_values_are_lowercase_names():
    for enum in (CaseStatus, Action):
        for member in enum:
            assert member.value == member.name.lower()
    assert len(CaseStatus) == 16
    assert len(Action) == 19


def test_table_has_one_row_per_action_in_declaration_order():
    assert list(TRANSITIONS) == list(Action)
    for action, t in TRANSITIONS.items():
        assert isinstance(t, Transition)
        assert t.action is action
        assert isinstance(t.sources, frozenset) and t.sources
        assert t.description.strip().endswith(".")


def test_table_is_read_only():
    with pytest.raises(TypeError):
        TRANSITIONS[A.APPROVE] = TRANSITIONS[A.REJECT]  # type: ignore[index]
    with pytest.raises(AttributeError):
        TRANSITIONS[A.APPROVE].target = S.CLOSED  # type: ignore[misc]


def test_only_release_has_open_target_and_only_two_system_actions():
    assert [a for a, t in TRANSITIONS.items() if t.target is None] == [A.RELEASE]
    assert {a for a, t in TRANSITIONS.items() if t.system_only} == {
        A.CUSTOMER_REPLIED,
        A.EXPIRE,
    }


def test_status_groups():
    assert TERMINAL == {S.REJECTED, S.CANCELLED, S.EXPIRED, S.CLOSED}
    assert PRE_RECEIPT == {
        S.REQUESTED, S.PENDING_REVIEW, S.AWAITING_CUSTOMER, S.AUTHORIZED, S.AWAITING_SHIPMENT,
    }
    assert TRANSITIONS[A.CANCEL].sources == PRE_RECEIPT
    for s in CaseStatus:
        assert is_terminal(s) is (s in TERMINAL)


def test_texts_cover_every_status():
    for table in (STATUS_DESCRIPTIONS, NEXT_STEP):
        assert set(table) == set(CaseStatus)
        assert all(text.strip() for text in table.values())


def test_module_imports_only_stdlib():
    # The module must stay usable without Flask, SQLAlchemy or the app.
    tree = ast.parse(Path(states.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            roots.add(node.module.split(".")[0])
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots


# --- legal and illegal transitions -------------------------------------------


@pytest.mark.parametrize(
    ("status", "action", "target"),
    [(s, a, t) for (s, a), t in EXPECTED.items()],
    ids=[f"{s}-{a}" for (s, a) in EXPECTED],
)
def test_every_legal_transition(status, action, target):
    assert blocking_reasons(status, action) == []
    assert next_status(status, action) is target


def test_legal_pairs_are_exactly_the_spec():
    # Exhaustive over all status/action pairs: nothing beyond the spec is
    # allowed. RELEASE is checked separately because it needs previous_status.
    allowed = {
        (s, a)
        for s in CaseStatus
        for a in Action
        if a is not A.RELEASE and not blocking_reasons(s, a)
    }
    assert allowed == set(EXPECTED)


@pytest.mark.parametrize(
    ("status", "action", "reason"),
    [
        (
            S.RECEIVED,
            A.APPROVE,
            "A case that is 'received' cannot be approved; "
            "approve is possible from: pending_review, requested.",
        ),
        (
            S.PENDING_REVIEW,
            A.FLAG,
            "A case that is 'pending_review' cannot be flagged for review; "
            "flag is possible from: requested.",
        ),
        (
            S.RECEIVED,
            A.CANCEL,
            "A case that is 'received' cannot be cancelled; cancel is possible from: "
            "authorized, awaiting_customer, awaiting_shipment, pending_review, requested.",
        ),
        (
            S.AUTHORIZED,
            A.SHIP,
            "A case that is 'authorized' cannot be shipped; "
            "ship is possible from: awaiting_shipment.",
        ),
        (
            S.IN_TRANSIT,
            A.CLOSE,
            "A case that is 'in_transit' cannot be closed; "
            "close is possible from: cancelled, expired, rejected, resolved.",
        ),
        (
            S.RESOLVED,
            A.REOPEN,
            "A case that is 'resolved' cannot be reopened; reopen is possible from: closed.",
        ),
        (
            S.AWAITING_SHIPMENT,
            A.MARK_LOST,
            "A case that is 'awaiting_shipment' cannot be marked lost; "
            "mark_lost is possible from: in_transit.",
        ),
        (
            S.AUTHORIZED,
            A.EXPIRE,
            "A case that is 'authorized' cannot be expired; "
            "expire is possible from: awaiting_customer, awaiting_shipment.",
        ),
        (
            S.RECEIVED,
            A.APPROVE_RETURNLESS,
            "A case that is 'received' cannot be approved as returnless; "
            "approve_returnless is possible from: authorized.",
        ),
        (
            S.REQUESTED,
            A.RELEASE,
            "A case that is 'requested' cannot be released from hold; "
            "release is possible from: on_hold.",
        ),
        (S.ON_HOLD, A.HOLD, "The case is already on hold."),
    ],
    ids=lambda v: str(v)[:30],
)
def test_illegal_transition_reason_text(status, action, reason):
    assert blocking_reasons(status, action) == [reason]
    with pytest.raises(InvalidTransition) as info:
        next_status(status, action)
    assert info.value.action is action
    assert info.value.status is status
    assert info.value.reasons == [reason]
    assert reason in str(info.value)


@pytest.mark.parametrize("status", sorted(TERMINAL | {S.RESOLVED}))
def test_hold_refused_where_there_is_no_live_work(status):
    (reason,) = blocking_reasons(status, A.HOLD)
    assert reason.startswith(f"A case that is '{status.value}' cannot be put on hold;")
    with pytest.raises(InvalidTransition):
        next_status(status, A.HOLD)


def test_hold_of_held_case_refused():
    with pytest.raises(InvalidTransition) as info:
        next_status(S.ON_HOLD, A.HOLD, previous_status=S.RECEIVED)
    assert info.value.reasons == ["The case is already on hold."]
    assert A.HOLD not in allowed_actions(S.ON_HOLD, previous_status=S.RECEIVED)


@pytest.mark.parametrize("previous", HOLDABLE)
def test_release_returns_to_previous_status(previous):
    held = next_status(previous, A.HOLD)
    assert held is S.ON_HOLD
    assert next_status(held, A.RELEASE, previous_status=previous) is previous
    assert allowed_actions(held, previous_status=previous) == [A.RELEASE]


def test_release_without_previous_status_is_refused():
    reasons = blocking_reasons(S.ON_HOLD, A.RELEASE)
    assert len(reasons) == 1 and "before the hold is unknown" in reasons[0]
    with pytest.raises(InvalidTransition) as info:
        next_status(S.ON_HOLD, A.RELEASE)
    assert info.value.reasons == reasons
    assert allowed_actions(S.ON_HOLD) == []


@pytest.mark.parametrize("previous", [S.ON_HOLD, S.RESOLVED, *sorted(TERMINAL)])
def test_release_into_a_status_that_could_not_be_held_is_refused(previous):
    assert blocking_reasons(S.ON_HOLD, A.RELEASE, previous) == [
        f"The case cannot be released back to '{previous.value}', "
        "because a case in that status cannot be put on hold."
    ]
    with pytest.raises(InvalidTransition):
        next_status(S.ON_HOLD, A.RELEASE, previous_status=previous)


def test_previous_status_is_ignored_for_other_actions():
    for (s, a), target in EXPECTED.items():
        assert next_status(s, a, previous_status=S.CLOSED) is target


def test_plain_strings_are_accepted_and_unknown_values_rejected():
    assert next_status("requested", "approve") is S.AUTHORIZED
    assert next_status("on_hold", "release", "in_transit") is S.IN_TRANSIT
    assert is_terminal("closed") is True
    with pytest.raises(ValueError):
        next_status("nonsense", A.APPROVE)
    with pytest.raises(ValueError):
        blocking_reasons(S.REQUESTED, "teleport")


def test_allowed_actions_examples_in_table_order():
    assert allowed_actions(S.REQUESTED) == [
        A.APPROVE, A.FLAG, A.REJECT, A.REQUEST_INFO, A.CANCEL, A.HOLD,
    ]
    assert allowed_actions(S.AWAITING_CUSTOMER) == [A.CANCEL, A.HOLD]
    assert allowed_actions(S.AWAITING_CUSTOMER, include_system=True) == [
        A.CUSTOMER_REPLIED, A.CANCEL, A.EXPIRE, A.HOLD,
    ]
    assert allowed_actions(S.EXCEPTION) == [A.RECEIVE, A.RESOLVE, A.HOLD]
    assert allowed_actions(S.RESOLVED) == [A.CLOSE]
    assert allowed_actions(S.CLOSED) == [A.REOPEN]


# --- graph properties ---------------------------------------------------------


def _successors(state):
    """Moves from (status, status-before-hold), including system actions."""
    status, held_from = state
    for action in allowed_actions(status, held_from, include_system=True):
        target = next_status(status, action, held_from)
        yield (target, status if action is A.HOLD else None)


def _reachable(start):
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in _successors(queue.popleft()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def test_every_status_reachable_from_requested():
    assert {s for s, _ in _reachable((S.REQUESTED, None))} == set(CaseStatus)


@pytest.mark.parametrize("status", [s for s in CaseStatus if s not in TERMINAL])
def test_every_non_terminal_status_has_a_way_forward(status):
    held_from = S.RECEIVED if status is S.ON_HOLD else None
    # Agents alone can always move the case on ...
    assert allowed_actions(status, held_from)
    # ... and the case can always reach an end state.
    assert any(s in TERMINAL for s, _ in _reachable((status, held_from)))


# --- hypothesis properties ------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(actions, max_size=40))
def test_random_action_sequences_stay_in_the_machine(sequence):
    status, held_from = S.REQUESTED, None
    for action in sequence:
        try:
            new = next_status(status, action, held_from)
        except InvalidTransition:
            continue
        assert isinstance(new, CaseStatus)
        if action is A.HOLD:
            assert new is S.ON_HOLD
            # Holding then releasing must land exactly where we were.
            assert next_status(new, A.RELEASE, previous_status=status) is status
            held_from = status
        elif action is A.RELEASE:
            assert new is held_from
            held_from = None
        status = new
        # The bookkeeping used above only works if a held case knows its past.
        assert (status is S.ON_HOLD) == (held_from is not None)


@settings(max_examples=300, deadline=None)
@given(statuses, actions, maybe_status)
def test_next_status_is_pure_and_agrees_with_blocking_reasons(status, action, previous):
    first = outcome(status, action, previous)
    assert outcome(status, action, previous) == first
    assert blocking_reasons(status, action, previous) == blocking_reasons(
        status, action, previous
    )
    reasons = blocking_reasons(status, action, previous)
    if reasons:
        assert first == ("err", action, status, reasons)
        assert all(isinstance(r, str) and r.endswith(".") for r in reasons)
    else:
        assert first[0] == "ok" and isinstance(first[1], CaseStatus)


@settings(max_examples=300, deadline=None)
@given(statuses, maybe_status, st.booleans())
def test_allowed_actions_match_blocking_reasons(status, previous, include_system):
    expected = [
        a
        for a in Action
        if not blocking_reasons(status, a, previous)
        and (include_system or not TRANSITIONS[a].system_only)
    ]
    assert allowed_actions(status, previous, include_system) == expected
    if include_system:
        assert set(allowed_actions(status, previous, True)) == {
            a for a in Action if not blocking_reasons(status, a, previous)
        }
