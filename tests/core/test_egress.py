"""Where the platform connects for a tenant (``dalgo_core.egress``): public addresses, the operator's
networks, and names that resolve nowhere."""

from __future__ import annotations

import re
import socket

import pytest

from dalgo_core.egress import NotPublic, operator_networks, private_networks, public_address, status, tenant_address


def test_the_operators_networks_are_read_and_a_malformed_one_is_named() -> None:
    assert [str(n) for n in private_networks(" 10.20.0.0/16, fd00:1::/64 ,")] == ["10.20.0.0/16", "fd00:1::/64"]
    assert private_networks("") == ()
    with pytest.raises(ValueError, match=re.escape("DALGO_PRIVATE_NETWORKS: '10.20.0.0/99' is not a network")):
        private_networks("10.20.0.0/16,10.20.0.0/99")


def test_the_start_says_where_tenants_hosts_may_be(monkeypatch) -> None:
    monkeypatch.delenv("DALGO_SANDBOX_ALLOW_PRIVATE", raising=False)
    monkeypatch.setenv("DALGO_PRIVATE_NETWORKS", "10.20.0.0/16")
    assert status().endswith("public addresses and 10.20.0.0/16")
    # a malformed setting is named at the start, and allows no private network meanwhile
    monkeypatch.setenv("DALGO_PRIVATE_NETWORKS", "10.20.0.0/16,db-subnet")
    assert status().startswith("ERROR: DALGO_PRIVATE_NETWORKS: 'db-subnet' is not a network")
    assert operator_networks() == ()  # what tenant addresses and webhooks are held to meanwhile
    with pytest.raises(NotPublic):
        tenant_address("10.20.3.4", 5432)


@pytest.mark.parametrize(
    ("host", "networks", "allowed"),
    [
        ("127.0.0.1", "", False),
        ("127.0.0.1", "127.0.0.1/32", True),
        ("127.0.0.2", "127.0.0.1/32", False),
        ("10.20.3.4", "10.20.0.0/16", True),
        ("10.21.3.4", "10.20.0.0/16", False),
        ("[::1]", "", False),
        ("::1", "::1/128", True),
        ("169.254.169.254", "10.0.0.0/8", False),
        ("8.8.8.8", "", True),
    ],
)
def test_an_address_is_reached_if_public_or_in_the_operators_networks(host, networks, allowed, monkeypatch) -> None:
    monkeypatch.delenv("DALGO_SANDBOX_ALLOW_PRIVATE", raising=False)
    monkeypatch.setenv("DALGO_PRIVATE_NETWORKS", networks)
    if allowed:
        assert tenant_address(host, 5432) == host.strip("[]")
    else:
        with pytest.raises(NotPublic, match="not a public address"):
            tenant_address(host, 5432)
    monkeypatch.setenv("DALGO_SANDBOX_ALLOW_PRIVATE", "1")  # a development machine: every address
    assert tenant_address(host, 5432) == host.strip("[]")


@pytest.mark.parametrize("host", ["a..b", "a" * 64 + ".org", "."])
def test_a_string_that_cannot_be_a_name_resolves_nowhere(host) -> None:
    with pytest.raises(socket.gaierror, match="not a host name"):
        public_address(host, 5432)
