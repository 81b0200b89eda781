"""Which case a mail belongs to: reply tokens, Message-ID chains, subject tags, ticket links.

Matching goes from the strongest signal to the weakest (``match_case``):

1. the reply token in a recipient address (``returns+<token>@shop.example``): an HMAC of the
   case id, so a guessed or edited token matches nothing;
2. ``In-Reply-To`` then ``References`` against every Message-ID we sent or received;
3. the subject tag ``[RMA-10042]``, only when the sender is the case's customer (a tag is
   easy to type into any mail);
4. a helpdesk ticket reference in the subject (``[#1234]``, ``Ticket #1234``) naming a ticket
   linked to one of the sender's cases.

The token functions are pure; ``match_case`` reads the database and writes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from app.cases.models import ReturnCase
from app.email.models import MailMessage
from app.extensions import db
from app.orders.models import Customer

TOKEN_SIGNATURE_CHARS = 16
_TOKEN = re.compile(r"^([0-9a-z]{1,12})-([a-z2-7]{%d})$" % TOKEN_SIGNATURE_CHARS)
_TICKET_REFERENCE = re.compile(r"(?:\[#|\(#|\bticket\s*#\s*|\bticket\s+|\[ticket\s*#?)(\d{1,18})\b", re.IGNORECASE)
MAX_REFERENCES = 50  # a References chain is attacker-controlled: look at the newest ids only


def _signature(key: bytes, tenant_id: int, case_id: int) -> str:
    digest = hmac.new(key, f"reply-token:{tenant_id}:{case_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:TOKEN_SIGNATURE_CHARS]


def case_token(key: bytes, tenant_id: int, case_id: int) -> str:
    """The token for a case's reply address: the case id (base 36) and an HMAC of it, lower case
    (mail servers may change the case of a local part)."""
    return f"{_base36(case_id)}-{_signature(key, tenant_id, case_id)}"


def case_id_from_token(key: bytes, tenant_id: int, token: str) -> int | None:
    """The case id a token names, or None when it is malformed or its signature is wrong."""
    found = _TOKEN.match(token.strip().lower())
    if not found:
        return None
    case_id = int(found.group(1), 36)
    expected = _signature(key, tenant_id, case_id)
    return case_id if hmac.compare_digest(expected, found.group(2)) else None


def reply_address(mailbox_address: str, token: str) -> str:
    """``returns@shop.example`` and a token → ``returns+<token>@shop.example``."""
    local, _, domain = mailbox_address.partition("@")
    local = local.split("+", 1)[0]
    return f"{local}+{token}@{domain}"


def tokens_in(addresses: Iterable[str]) -> list[str]:
    """The ``+detail`` parts of the given addresses, in order."""
    found = []
    for address in addresses:
        local = address.rsplit("@", 1)[0]
        if "+" in local:
            found.append(local.split("+", 1)[1])
    return found


def subject_numbers(subject: str | None, prefix: str) -> list[str]:
    """Case numbers tagged in a subject, e.g. ``Re: Your return [RMA-10042]`` → ``["RMA-10042"]``."""
    if not subject:
        return []
    pattern = re.compile(r"\[\s*(" + re.escape(prefix) + r"\d{1,12})\s*\]", re.IGNORECASE)
    return [number.upper() for number in pattern.findall(subject)]


def ticket_references(subject: str | None) -> list[str]:
    """Helpdesk ticket ids a subject refers to (``[#1234]``, ``(#1234)``, ``Ticket #1234``)."""
    return _TICKET_REFERENCE.findall(subject or "")


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, remainder = divmod(number, 36)
        out = digits[remainder] + out
        if not number:
            return out


@dataclass(frozen=True)
class Match:
    case: ReturnCase
    by: str  # token | references | subject | ticket


def match_case(
    *,
    tenant_id: int,
    token_key: bytes,
    case_number_prefix: str,
    recipients: Sequence[str],
    in_reply_to: str | None,
    references: Sequence[str],
    subject: str | None,
    sender: str | None,
) -> Match | None:
    """The case this mail continues, or None (then it goes to intake as a new request)."""
    for token in tokens_in(recipients):
        case_id = case_id_from_token(token_key, tenant_id, token)
        if case_id is not None:
            case = db.session.get(ReturnCase, case_id)
            if case is not None and case.tenant_id == tenant_id:
                return Match(case, "token")
    chain = [i for i in ([in_reply_to] if in_reply_to else []) + list(reversed(references[-MAX_REFERENCES:])) if i]
    if chain:
        rows = db.session.execute(
            sa.select(MailMessage.message_id, MailMessage.case_id).where(
                MailMessage.tenant_id == tenant_id, MailMessage.message_id.in_(chain),
                MailMessage.case_id.is_not(None),
            )
        ).all()
        by_id = {message_id: case_id for message_id, case_id in rows}
        for message_id in chain:  # In-Reply-To first, then the newest reference
            if message_id in by_id:
                case = db.session.get(ReturnCase, by_id[message_id])
                if case is not None:
                    return Match(case, "references")
    if not sender:
        return None
    sender = sender.strip().lower()
    numbers = subject_numbers(subject, case_number_prefix)
    if numbers:
        case = db.session.scalar(
            sa.select(ReturnCase).join(Customer, ReturnCase.customer_id == Customer.id).where(
                ReturnCase.tenant_id == tenant_id, ReturnCase.number.in_(numbers), Customer.email == sender,
            ).order_by(ReturnCase.id.desc()).limit(1)
        )
        if case is not None:
            return Match(case, "subject")
    tickets = ticket_references(subject)
    if tickets:
        case = db.session.scalar(
            sa.select(ReturnCase).join(Customer, ReturnCase.customer_id == Customer.id).where(
                ReturnCase.tenant_id == tenant_id, ReturnCase.ticket_id.in_(tickets), Customer.email == sender,
            ).order_by(ReturnCase.id.desc()).limit(1)
        )
        if case is not None:
            return Match(case, "ticket")
    return None
