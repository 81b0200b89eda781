"""Outbound URL safety: private, loopback and link-local targets are refused unless allowed."""

from __future__ import annotations

import socket

import pytest

from app.errors import ValidationFailed
from app.outbound.urls import check_outbound_url

PUBLIC = "93.184.216.34"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/api", "http://[::1]/", "https://10.1.2.3", "https://192.168.0.10",
    "http://172.16.5.4", "http://169.254.169.254/latest/meta-data", "http://0.0.0.0", "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]/", "http://localhost:5000",
])
def test_private_loopback_and_link_local_targets_are_refused(url: str) -> None:
    """Addresses inside the machine or the private network are refused, with the field named."""
    with pytest.raises(ValidationFailed) as refused:
        check_outbound_url(url, allow_private=False, field="settings.base_url")
    assert "settings.base_url" in refused.value.details["fields"]


def test_a_public_address_is_allowed() -> None:
    """A public address passes unchanged."""
    assert check_outbound_url(f"https://{PUBLIC}/api/v2", allow_private=False) == f"https://{PUBLIC}/api/v2"


def test_private_targets_pass_when_the_setting_allows_them() -> None:
    """Development and tests may call local helpdesks."""
    assert check_outbound_url("http://127.0.0.1:9000", allow_private=True) == "http://127.0.0.1:9000"


def test_a_name_resolving_to_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """One public and one private address: refused, since either may be used later (DNS rebinding)."""
    def resolve(host, port, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(ValidationFailed, match="cannot be called"):
        check_outbound_url("https://helpdesk.example.com", allow_private=False)


def test_an_unresolvable_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that does not resolve is a clear 422, not a 500."""
    def fail(*args, **kwargs):
        raise socket.gaierror("no such host")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(ValidationFailed) as refused:
        check_outbound_url("https://nowhere.example", allow_private=False)
    assert "cannot be resolved" in str(refused.value.details)


@pytest.mark.parametrize("url", ["ftp://example.com", "file:///etc/passwd", "https://", "https://user:pw@example.com"])
def test_other_schemes_missing_hosts_and_credentials_in_urls_are_refused(url: str) -> None:
    """Only http(s) with a host, and never credentials in the URL, even when private targets are allowed."""
    with pytest.raises(ValidationFailed):
        check_outbound_url(url, allow_private=True)
