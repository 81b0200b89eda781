"""Is a parsed mail from a machine? Bounce, out-of-office, auto-reply, list mail, or a person.

Pure rules over a ``ParsedMessage`` (RFC 3834 and what Zammad, FreeScout, RT and Discourse check;
see the project's email research notes, §3). Callers record automated mail on the case but never
answer it; a bounce also names the recipients that failed, so their address can be paused.

An ``X-Auto-Response-Suppress`` header on its own is *not* automation: it asks others not to
auto-reply, and Outlook and many newsletters send it on ordinary mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from app.email.parse import ParsedMessage

__all__ = ["Automation", "AutomationKind", "classify_automation"]


class AutomationKind(StrEnum):
    NONE = "none"
    BOUNCE = "bounce"
    OUT_OF_OFFICE = "out_of_office"
    AUTO_REPLY = "auto_reply"
    LIST = "list"


@dataclass(frozen=True, slots=True)
class Automation:
    kind: AutomationKind
    reasons: tuple[str, ...] = ()  # the signals that decided, for the case's audit trail
    failed_recipients: tuple[str, ...] = ()  # bounces only, lower-cased
    permanent: bool | None = None  # bounces: a 5.x.x status (hard) vs 4.x.x (soft); None unknown

    @property
    def automated(self) -> bool:
        return self.kind is not AutomationKind.NONE


_KEYWORD = re.compile(r"\s*([a-z0-9_-]+)")
_COMMENT = re.compile(r"\([^()]*\)")
_BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster"})
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
# Subject prefixes of out-of-office replies in the languages customers write in (Outlook, Gmail,
# Apple Mail and Exchange defaults); matched only at the start of the subject. Words a customer
# could open a subject with ("absent", "vacation", Japanese 不在 as in a missed delivery) are left out.
_OUT_OF_OFFICE = re.compile(
    r"^\s*(?:auto(?:matic)?\s*reply|auto:|out\s+of\s+(?:the\s+)?office|autoreply|"
    r"abwesenheitsnotiz|automatische\s+antwort|r[ée]ponse\s+automatique|"
    r"absen(?:ce|te?)\s+du\s+bureau|respuesta\s+autom[áa]tica|fuera\s+de\s+la\s+oficina|"
    r"risposta\s+automatica|"
    r"fuori\s+sede|automatisch\s+antwoord|afwezig|resposta\s+autom[áa]tica|"
    r"fora\s+do\s+escrit[óo]rio|autosvar|automatisk\s+svar|fr[åa]nvaro|frav[æe]r|"
    r"automatyczna\s+odpowied[źz]|odpowied[źz]\s+automatyczna|poza\s+biurem|自動応答|自動返信)",
    re.IGNORECASE)


def classify_automation(parsed: ParsedMessage) -> Automation:
    """What kind of machine sent ``parsed``, strongest signal first."""
    bounce = _bounce(parsed)
    if bounce is not None:
        return bounce
    header = parsed.header
    reasons: list[str] = []
    auto_submitted = (header("auto-submitted") or "").strip().lower()
    # RFC 3834: a keyword, then optional parameters and comments ("no (sent by hand)").
    keyword = _KEYWORD.match(_COMMENT.sub(" ", auto_submitted))
    auto_submitted_kind = keyword.group(1) if keyword else auto_submitted[:40]
    if auto_submitted_kind and auto_submitted_kind != "no":
        reasons.append(f"Auto-Submitted: {auto_submitted_kind}")
    for name in _AUTO_HEADERS:
        value = header(name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            reasons.append(f"{name}: {value[:40]}")
    precedence = (header("precedence") or header("x-precedence") or "").strip().lower()
    if precedence in ("auto_reply", "auto-reply"):
        reasons.append(f"Precedence: {precedence}")

    out_of_office = []
    suppress = (header("x-auto-response-suppress") or "").lower()
    if "all" in suppress and header("x-ms-exchange-inbox-rules-loop") is not None:
        out_of_office.append("Exchange out-of-office headers")
    if "vacation" in auto_submitted:
        out_of_office.append("Auto-Submitted: vacation")
    if _OUT_OF_OFFICE.match(parsed.subject):
        out_of_office.append("out-of-office subject")
    if out_of_office:
        return Automation(AutomationKind.OUT_OF_OFFICE, tuple(out_of_office + reasons))
    if reasons:
        return Automation(AutomationKind.AUTO_REPLY, tuple(reasons))

    list_reasons = [name for name in ("List-Id", "List-Unsubscribe", "List-Post")
                    if header(name) is not None]
    if precedence in ("bulk", "junk", "list"):
        list_reasons.append(f"Precedence: {precedence}")
    if list_reasons:
        return Automation(AutomationKind.LIST, tuple(list_reasons))

    if _empty_return_path(parsed):
        # Checked last: RFC 3834 asks auto-replies to use the null sender too, and those are
        # recognised above by their own headers. What is left with "<>" is a non-standard bounce.
        return Automation(AutomationKind.BOUNCE, ("empty Return-Path",))
    return Automation(AutomationKind.NONE)


def _bounce(parsed: ParsedMessage) -> Automation | None:
    reasons = []
    if parsed.content_type == "multipart/report" and parsed.report_type == "delivery-status":
        reasons.append("multipart/report; report-type=delivery-status")
    elif parsed.delivery_status:
        reasons.append("message/delivery-status part")
    sender = parsed.from_.address.lower() if parsed.from_ else ""
    if sender.rsplit("@", 1)[0] in _BOUNCE_SENDERS:
        reasons.append(f"sender {sender.rsplit('@', 1)[0]}")
    failed_header = parsed.header("x-failed-recipients")
    if failed_header:
        reasons.append("X-Failed-Recipients")
    if not reasons:
        return None
    failed: list[str] = []
    statuses: list[str] = []
    for entry in parsed.delivery_status:
        if entry.action == "failed" or (not entry.action and entry.status.startswith("5")):
            failed.append(entry.recipient.lower())
            statuses.append(entry.status)
    for address in (failed_header or "").split(","):
        address = address.strip().strip("<>").lower()
        if "@" in address:
            failed.append(address)
    permanent = None
    if statuses and all(status[:1] in ("4", "5") for status in statuses):
        permanent = any(status.startswith("5") for status in statuses)
    return Automation(AutomationKind.BOUNCE, tuple(reasons), tuple(dict.fromkeys(failed)),
                      permanent)


def _empty_return_path(parsed: ParsedMessage) -> bool:
    value = parsed.header("return-path")
    return value is not None and value.replace(" ", "") in ("<>", "")
