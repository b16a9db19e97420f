"""The suite's socket guard refuses the internet and records every refusal.

The guard (tests/conftest.py) fails any test that reaches past loopback or
looks a name up; these tests take their own refusals back with
``socket_guard.take()`` after checking them.
"""

from __future__ import annotations

import socket

import pytest
import requests


def test_a_connect_to_a_public_address_is_refused_and_recorded(socket_guard):
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="socket guard"):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: refused before any packet
    with socket.socket() as sock:
        assert sock.connect_ex(("192.0.2.1", 80)) != 0
    refused = socket_guard.take()
    assert len(refused) == 2
    assert "'192.0.2.1'" in refused[0]


def test_a_datagram_to_a_public_resolver_is_refused(socket_guard):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(ConnectionRefusedError):
            sock.sendto(b"\0" * 12, ("8.8.8.8", 53))
        with pytest.raises(ConnectionRefusedError):
            sock.sendto(b"\0" * 12, 0, ("2001:4860:4860::8888", 53))
    assert len(socket_guard.take()) == 2


def test_a_name_lookup_is_refused_but_localhost_and_literals_resolve(socket_guard):
    with pytest.raises(socket.gaierror, match="DNS lookup"):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("connectivity-check.ubuntu.com")
    assert len(socket_guard.take()) == 2
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert socket.getaddrinfo("::1", 80)
    assert socket.getaddrinfo("203.0.113.30", 80)  # a literal: nothing is looked up
    assert socket_guard.take() == []


def test_an_invalid_name_fails_as_not_found_without_a_query(socket_guard):
    # RFC 6761: .invalid never resolves; tests use it for "a name that does not exist".
    with pytest.raises(socket.gaierror) as info:
        socket.getaddrinfo("no-such-host.invalid", 80)
    assert info.value.errno == socket.EAI_NONAME
    assert socket_guard.take() == []


def test_a_name_idna_cannot_encode_fails_as_python_fails_it(socket_guard):
    # A 64-letter label cannot be encoded: the real getaddrinfo refuses it, no query.
    with pytest.raises(UnicodeError):
        socket.getaddrinfo("a" * 64 + ".example", 80)
    assert socket_guard.take() == []


def test_requests_to_the_internet_fail_and_are_recorded(socket_guard):
    with pytest.raises(requests.ConnectionError):
        requests.get("http://192.0.2.1:9/", timeout=1)
    with pytest.raises(requests.ConnectionError):
        requests.get("http://example.com/", timeout=1)
    assert len(socket_guard.take()) == 2


def test_loopback_and_local_families_pass(socket_guard, probe_target):
    with socket.create_connection(("127.0.0.1", probe_target.port), timeout=1):
        pass
    with socket.create_connection(("localhost", probe_target.port), timeout=1):
        pass
    left, right = socket.socketpair()
    left.close()
    right.close()
    if hasattr(socket, "AF_NETLINK"):
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
            sock.bind((0, 0))
            sock.sendto(b"\0" * 16, (0, 0))
    assert socket_guard.take() == []
