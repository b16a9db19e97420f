"""LabDns: a small authoritative DNS responder (UDP, built on dnslib) for NetLab.

It answers ``A`` queries for the names it is given and nothing else, with TTL 0
so no cache keeps an answer across a knob. Its modes stand for the ways DNS
breaks on real networks:

- ``"ok"``: the names resolve; any other name is ``NXDOMAIN``;
- ``"servfail"``: every query gets ``SERVFAIL`` (a resolver whose upstream is
  gone: lookups fail at once);
- ``"nxdomain"``: every name is said not to exist;
- ``"timeout"``: queries are read and dropped (lookups wait for the resolver's
  timeout).

:meth:`LabDns.hijack` answers every name with one address, as a captive portal's
DNS does. One responder can serve several sockets, e.g. one per namespace;
create them where they should live and hand them to :meth:`LabDns.serve`.

Example::

    dns = LabDns({"store.test": "203.0.113.30"})
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    dns.serve(sock)
    dns.set_mode("servfail")
    dns.close()
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import selectors
import socket
import threading
from collections.abc import Mapping

from dnslib import QTYPE, RCODE, RR, A, DNSError, DNSRecord

__all__ = ["DNS_MODES", "LabDns"]

logger = logging.getLogger(__name__)

#: The modes :meth:`LabDns.set_mode` accepts.
DNS_MODES = ("ok", "servfail", "nxdomain", "timeout")

_MAX_DATAGRAM = 4096


def _norm(name: str) -> str:
    return name.lower().rstrip(".")


class LabDns:
    """Answers ``A`` queries for ``records`` (name → IPv4 address) on the sockets it serves.

    Names match case-insensitively, without the trailing dot. A known name asked
    for another type (``AAAA``) gets an empty ``NOERROR`` answer, so a resolver
    asking for both families still gets the ``A`` record. :attr:`queries` counts
    the queries read (dropped ones included).
    """

    def __init__(self, records: Mapping[str, str]) -> None:
        self._records: dict[str, str] = {}
        for name, address in records.items():
            ipaddress.IPv4Address(address)  # ValueError for a bad address
            self._records[_norm(name)] = address
        self._mode = "ok"
        self._hijack: str | None = None
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._socks: list[socket.socket] = []
        self._closed = False
        self.queries = 0
        self._thread = threading.Thread(target=self._loop, name="connmgr-lab-dns", daemon=True)
        self._thread.start()

    @property
    def mode(self) -> str:
        """The current mode (one of :data:`DNS_MODES`)."""
        return self._mode

    def set_mode(self, mode: str) -> None:
        """Switch to ``mode`` (one of :data:`DNS_MODES`); ``ValueError`` otherwise."""
        if mode not in DNS_MODES:
            raise ValueError(f"mode must be one of {', '.join(DNS_MODES)}, got {mode!r}")
        with self._lock:
            self._mode = mode

    def hijack(self, address: str | None) -> None:
        """Answer every name with ``address`` (a portal's DNS); ``None`` ends it."""
        if address is not None:
            ipaddress.IPv4Address(address)
        with self._lock:
            self._hijack = address

    def serve(self, sock: socket.socket) -> None:
        """Answer queries arriving on ``sock`` (a bound UDP socket); closed by :meth:`close`."""
        if self._closed:
            raise RuntimeError("LabDns is closed")
        sock.setblocking(False)
        with self._lock:
            self._socks.append(sock)
        self._selector.register(sock, selectors.EVENT_READ)
        self._wake_w.send(b"x")

    def close(self) -> None:
        """Stop answering and close every socket."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(2.0)
        for sock in [*self._socks, self._wake_r, self._wake_w]:
            sock.close()
        self._selector.close()

    def answer(self, query: bytes) -> bytes | None:
        """The reply to one query datagram (pure but for the mode); ``None`` to drop it."""
        try:
            request = DNSRecord.parse(query)
        except (DNSError, ValueError, IndexError):
            return None  # garbage: a real server ignores it too
        with self._lock:
            mode, hijack = self._mode, self._hijack
        if mode == "timeout":
            return None
        reply = request.reply()
        name = _norm(str(request.q.qname))
        address = hijack or self._records.get(name)
        if mode == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
        elif mode == "nxdomain" or address is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=0))
        packed: bytes = reply.pack()
        return packed

    def _loop(self) -> None:
        while not self._closed:
            for key, _ in self._selector.select():
                sock = key.fileobj
                if sock is self._wake_r:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(64)
                    continue
                assert isinstance(sock, socket.socket)
                self._handle(sock)

    def _handle(self, sock: socket.socket) -> None:
        try:
            query, peer = sock.recvfrom(_MAX_DATAGRAM)
        except OSError:
            return
        self.queries += 1
        reply = self.answer(query)
        if reply is not None:
            try:
                sock.sendto(reply, peer)
            except OSError as exc:
                logger.debug("LabDns could not answer %s: %s", peer, exc)
