"""Building outbound mail that threads: our Message-ID, In-Reply-To/References to the customer's
last message, Reply-To with the case token, the subject tag, loop and automation headers.

Pure: values in, an ``email.message.EmailMessage`` out. Sending is ``integrations.mail.smtp``'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

LOOP_HEADER = "X-Rebound-Loop"
MAX_REFERENCES = 20  # RFC 5322 lets chains grow; keep the first id and the newest ones


@dataclass(frozen=True)
class Parent:
    """The customer's message being answered (None when we write first)."""

    message_id: str
    references: Sequence[str] = ()


def make_message_id(case_id: int, domain: str) -> str:
    """A globally unique Message-ID naming the case, e.g. ``<rbd.42.5f0c…@shop.example>``."""
    return f"<rbd.{case_id}.{uuid.uuid4().hex}@{domain}>"


def thread_references(parent: Parent | None) -> list[str]:
    """References for a reply: the parent's chain (first id kept, newest ones after) + the parent."""
    if parent is None:
        return []
    chain = [i for i in parent.references if i and i != parent.message_id]
    if len(chain) > MAX_REFERENCES - 1:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 2):]
    return chain + [parent.message_id]


def with_tag(subject: str, case_number: str) -> str:
    """The subject with the case tag ``[RMA-10042]`` (added once, never twice)."""
    subject = " ".join(subject.split())
    tag = f"[{case_number}]"
    return subject if tag.lower() in subject.lower() else f"{subject} {tag}".strip()


def build_mail(
    *,
    case_id: int,
    case_number: str,
    from_address: str,
    from_name: str | None,
    to_address: str,
    to_name: str | None,
    reply_to: str,
    subject: str,
    text: str,
    html: str | None,
    parent: Parent | None,
    automatic: bool,
    loop_marker: str,
    now: datetime | None = None,
) -> EmailMessage:
    """One multipart (text + HTML) mail to the customer about a case.

    ``automatic`` marks mail no person wrote (``Auto-Submitted: auto-replied`` when it answers the
    customer's message, ``auto-generated`` otherwise); every mail asks Exchange not to auto-reply and
    carries ``loop_marker`` so that our own mail coming back is recognised.
    """
    domain = from_address.rpartition("@")[2]
    message = EmailMessage()
    message["Message-ID"] = make_message_id(case_id, domain)
    message["Date"] = format_datetime(now or datetime.now(timezone.utc))
    message["From"] = _address(from_name, from_address)
    message["To"] = _address(to_name, to_address)
    message["Reply-To"] = reply_to
    message["Subject"] = with_tag(subject, case_number)
    references = thread_references(parent)
    if parent is not None:
        message["In-Reply-To"] = parent.message_id
        message["References"] = " ".join(references)
    if automatic:
        message["Auto-Submitted"] = "auto-replied" if parent is not None else "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message[LOOP_HEADER] = loop_marker
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def _address(name: str | None, address: str) -> str:
    local, _, domain = address.partition("@")
    return str(Address(display_name=" ".join((name or "").split()), username=local, domain=domain))
