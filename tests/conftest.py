"""Fixtures shared by the whole suite, and the socket guard it runs under.

The connmgr pytest plugin (``connmgr.testing.plugin``) already provides
``fault_server``, ``tls_fault_server``, ``fake_clock`` and ``probe_target``;
this file adds what only connmgr's own tests need.

The socket guard keeps the suite off the internet: from ``pytest_configure``
on, a connect or datagram to anything but loopback (127.0.0.0/8, ::1) fails,
unless the socket lives in another network namespace than the one the suite
started in (those are the namespaces tests create), and a name lookup of
anything but ``localhost`` or an IP literal fails (names under ``.invalid``
fail at once as "not found", as a resolver would answer, without a query). Each refusal is recorded
and fails the test it happened in, so a test cannot pass by treating it as an
outage. Child processes (``subprocess``, ``ip netns exec``) are not guarded.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest


class RawServer:
    """A loopback server that answers every request with fixed bytes, then closes.

    For responses no well-behaved server sends (malformed headers, truncated
    bodies). ``requests`` counts the requests it read: a resent request shows.
    """

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    self.requests.append(data)
                    conn.sendall(self.response)
                except OSError:
                    pass

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=2)


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes], RawServer]]:
    """A factory of :class:`RawServer`; every server made is closed after the test."""
    made: list[RawServer] = []

    def make(response: bytes) -> RawServer:
        server = RawServer(response)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


# ---------------------------------------------------------------- the socket guard

#: Address families that cannot leave the machine (AF_NETLINK: the OS's network events).
_LOCAL_FAMILIES = {socket.AF_UNIX, getattr(socket, "AF_NETLINK", socket.AF_UNIX)}
_LOCAL_NAMES = {"localhost", "localhost.", "ip6-localhost"}
_ORIGINAL: dict[str, Any] = {}
_violations: list[str] = []


#: ioctl(2) SIOCGSKNS: a file descriptor of the network namespace a socket lives in.
_SIOCGSKNS = 0x894C


def _thread_netns() -> int | None:
    try:
        return os.stat("/proc/thread-self/ns/net").st_ino
    except OSError:
        return None


def _socket_netns(sock: socket.socket) -> int | None:
    """The namespace ``sock`` was made in (whichever thread uses it), else the thread's."""
    try:
        import fcntl  # POSIX only

        fd = fcntl.ioctl(sock.fileno(), _SIOCGSKNS)
    except (ImportError, OSError, ValueError):
        return _thread_netns()
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


#: The network namespace the suite starts in (conftest is imported on the main thread).
_HOST_NETNS = _thread_netns()


@functools.lru_cache(maxsize=4096)  # guarded calls stay cheap, even under tracemalloc
def _local_ip(host: str) -> bool | None:
    """True for loopback (or "any", which connects to this host); None if not an IP literal."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _refuse(what: str) -> str:
    message = f"socket guard: {what} (thread {threading.current_thread().name})"
    _violations.append(message)
    return message


def _check_address(sock: socket.socket, address: Any, verb: str) -> str | None:
    """None if ``sock`` may reach ``address``, else the recorded refusal."""
    if sock.family in _LOCAL_FAMILIES:
        return None
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return _refuse(f"{verb} on address family {sock.family!r}")
    host = address[0] if isinstance(address, tuple) and address else address
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if isinstance(host, str) and (_local_ip(host) or host in _LOCAL_NAMES):
        return None
    if _HOST_NETNS is not None and _socket_netns(sock) != _HOST_NETNS:
        return None  # a socket inside a network namespace that a test made
    return _refuse(f"{verb} to {address!r} is not loopback")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    refused = _check_address(self, address, "connect")
    if refused is not None:
        raise ConnectionRefusedError(errno.ECONNREFUSED, refused)
    _ORIGINAL["connect"](self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if _check_address(self, address, "connect_ex") is not None:
        return errno.ECONNREFUSED
    result: int = _ORIGINAL["connect_ex"](self, address)
    return result


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
    refused = _check_address(self, args[-1], "sendto") if args else None
    if refused is not None:
        raise ConnectionRefusedError(errno.ECONNREFUSED, refused)
    sent: int = _ORIGINAL["sendto"](self, data, *args)
    return sent


def _guarded_sendmsg(self: socket.socket, buffers: Any, *args: Any) -> int:
    address = args[2] if len(args) > 2 else None
    refused = _check_address(self, address, "sendmsg") if address is not None else None
    if refused is not None:
        raise ConnectionRefusedError(errno.ECONNREFUSED, refused)
    sent: int = _ORIGINAL["sendmsg"](self, buffers, *args)
    return sent


def _check_name(host: Any, call: str) -> None:
    if host is None or host in ("", b""):
        return
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    if name.lower() in _LOCAL_NAMES or _local_ip(name) is not None:
        return
    try:
        name.encode("idna")
    except UnicodeError:
        return  # the real call refuses the name itself, before any query
    if name.lower().rstrip(".").endswith(".invalid"):
        # RFC 6761 reserves .invalid: it never resolves, so it fails here, at once,
        # as "not found", without a query leaving the machine.
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    raise socket.gaierror(socket.EAI_NONAME, _refuse(f"{call}({name!r}) is a DNS lookup"))


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    _check_name(host, "getaddrinfo")
    return _ORIGINAL["getaddrinfo"](host, *args, **kwargs)


def _guarded_gethostbyname(host: str) -> str:
    _check_name(host, "gethostbyname")
    address: str = _ORIGINAL["gethostbyname"](host)
    return address


def _guarded_gethostbyname_ex(host: str) -> Any:
    _check_name(host, "gethostbyname_ex")
    return _ORIGINAL["gethostbyname_ex"](host)


_METHODS = {
    "connect": _guarded_connect,
    "connect_ex": _guarded_connect_ex,
    "sendto": _guarded_sendto,
    "sendmsg": _guarded_sendmsg,
}
_FUNCTIONS = {
    "getaddrinfo": _guarded_getaddrinfo,
    "gethostbyname": _guarded_gethostbyname,
    "gethostbyname_ex": _guarded_gethostbyname_ex,
}


def pytest_configure(config: pytest.Config) -> None:
    """Install the socket guard before any test module is imported."""
    if _ORIGINAL:
        return
    for name, guarded in _METHODS.items():
        _ORIGINAL[name] = getattr(socket.socket, name)
        setattr(socket.socket, name, guarded)
    for name, guarded in _FUNCTIONS.items():
        _ORIGINAL[name] = getattr(socket, name)
        setattr(socket, name, guarded)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put the real socket functions back."""
    for name in _METHODS:
        setattr(socket.socket, name, _ORIGINAL.pop(name))
    for name in _FUNCTIONS:
        setattr(socket, name, _ORIGINAL.pop(name))


class SocketGuard:
    """What the guard refused; tests of the guard take their own refusals here."""

    def __init__(self) -> None:
        self._start = len(_violations)

    def take(self) -> list[str]:
        """The refusals since the test began, removed so that they fail nothing."""
        taken = _violations[self._start :]
        del _violations[self._start :]
        return taken


@pytest.fixture(autouse=True)
def socket_guard() -> Iterator[SocketGuard]:
    """Fail the test if it (or any thread meanwhile) reached past loopback or looked up a name."""
    guard = SocketGuard()
    yield guard
    refused = guard.take()
    if refused:
        pytest.fail("\n".join(refused), pytrace=False)
