"""Outbound mail threads: Message-ID, In-Reply-To/References, Reply-To, tag, automation headers."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from app.email.compose import LOOP_HEADER, Parent, build_mail, thread_references, with_tag


def _build(**overrides):
    values = dict(
        case_id=7, case_number="RMA-10007", from_address="returns@shop.example", from_name="Shop, Returns",
        to_address="ana@example.com", to_name="Ana Müller", reply_to="returns+7-abc@shop.example",
        subject="Your return is approved", text="Hello Ana,\n\nyour return is approved.",
        html="<p>Hello Ana,</p><p>your return is approved.</p>",
        parent=Parent("<cust-2@example.com>", ("<cust-1@example.com>",)), automatic=True, loop_marker="t1",
    )
    values.update(overrides)
    return build_mail(**values)


def test_a_reply_threads_to_the_customers_message() -> None:
    parsed = BytesParser(policy=policy.default).parsebytes(bytes(_build()))
    assert parsed["In-Reply-To"] == "<cust-2@example.com>"
    assert parsed["References"].split() == ["<cust-1@example.com>", "<cust-2@example.com>"]
    assert parsed["Message-ID"].startswith("<rbd.7.") and parsed["Message-ID"].endswith("@shop.example>")
    assert parsed["Reply-To"] == "returns+7-abc@shop.example"
    assert parsed["Subject"] == "Your return is approved [RMA-10007]"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed[LOOP_HEADER] == "t1"
    assert parsed["To"].addresses[0].display_name == "Ana Müller"
    assert parsed["From"].addresses[0].display_name == "Shop, Returns"
    assert parsed.get_body(("plain",)).get_content().startswith("Hello Ana")
    assert "<p>Hello Ana,</p>" in parsed.get_body(("html",)).get_content()


def test_first_mail_and_manual_mail() -> None:
    first = _build(parent=None)
    assert first["In-Reply-To"] is None and first["References"] is None
    assert first["Auto-Submitted"] == "auto-generated"
    assert _build(automatic=False)["Auto-Submitted"] is None


def test_message_ids_are_unique() -> None:
    assert len({_build()["Message-ID"] for _ in range(50)}) == 50


def test_the_tag_is_added_once() -> None:
    assert with_tag("Re:  Your return   [rma-10007]", "RMA-10007") == "Re: Your return [rma-10007]"
    assert with_tag("Your return", "RMA-10007") == "Your return [RMA-10007]"


def test_long_reference_chains_keep_the_first_and_newest() -> None:
    refs = tuple(f"<r{i}@x>" for i in range(100))
    chain = thread_references(Parent("<p@x>", refs))
    assert chain[0] == "<r0@x>" and chain[-1] == "<p@x>" and chain[-2] == "<r99@x>" and len(chain) == 20


def test_header_injection_in_names_is_neutralised() -> None:
    message = _build(to_name="Eve\r\nBcc: victim@example.com", subject="Hi\r\nBcc: victim@example.com")
    raw = bytes(message)
    assert b"\nBcc:" not in raw
