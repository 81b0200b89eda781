"""Reply tokens, subject tags and ticket references (the pure half of threading)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from app.email.threading import (
    case_id_from_token, case_token, reply_address, subject_numbers, ticket_references, tokens_in,
)

KEY = b"k" * 32


@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=1, max_value=10**6))
def test_a_token_names_its_case_and_only_for_its_tenant(case_id: int, tenant_id: int) -> None:
    token = case_token(KEY, tenant_id, case_id)
    assert case_id_from_token(KEY, tenant_id, token) == case_id
    assert case_id_from_token(KEY, tenant_id, token.upper()) == case_id  # servers may change case
    assert case_id_from_token(KEY, tenant_id + 1, token) is None
    assert case_id_from_token(b"other-key" * 4, tenant_id, token) is None


@pytest.mark.parametrize("token", ["", "abc", "1-", "-abcdefghabcdefgh", "1-abcdefghabcdefg!", "zz" * 40])
def test_malformed_tokens_match_nothing(token: str) -> None:
    assert case_id_from_token(KEY, 1, token) is None


def test_an_edited_token_matches_nothing() -> None:
    token = case_token(KEY, 1, 42)
    other_case = case_token(KEY, 1, 43).split("-")[0] + "-" + token.split("-")[1]
    assert case_id_from_token(KEY, 1, other_case) is None


def test_reply_address_and_tokens_in() -> None:
    address = reply_address("returns+old@shop.example", "2a-abc")
    assert address == "returns+2a-abc@shop.example"
    assert tokens_in([address, "someone@else.example", "a+b+c@x.example"]) == ["2a-abc", "b+c"]


def test_subject_numbers_need_the_brackets_and_the_prefix() -> None:
    assert subject_numbers("Re: AW: Your return [RMA-10042] and [rma-10043]", "RMA-") == ["RMA-10042", "RMA-10043"]
    assert subject_numbers("RMA-10042 without brackets", "RMA-") == []
    assert subject_numbers("[RET-7]", "RMA-") == []
    assert subject_numbers(None, "RMA-") == []


def test_ticket_references() -> None:
    assert ticket_references("Re: [#1234] broken kettle") == ["1234"]
    assert ticket_references("Ticket #99: update") == ["99"]
    assert ticket_references("Order #1234") == []
