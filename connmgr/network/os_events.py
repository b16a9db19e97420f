"""OS network-change events without Qt: Linux netlink (link, address and route changes).

A :class:`NetlinkListener` subscribes to the kernel's routing messages through
the standard library's ``AF_NETLINK`` socket (``NETLINK_ROUTE``; groups link,
IPv4/IPv6 address and IPv4/IPv6 route), in one daemon thread. Messages that
change nothing (an IPv6 address lifetime refreshed, a route re-announced) are
filtered against the state read at start; the rest are debounced (50 ms by
default: a pulled cable sends a burst) and reported once through
``on_change(reason, links_up)``:

* ``reason``: plain words, e.g. ``"link eth0 down"``;
* ``links_up``: ``False`` when every non-loopback link is down although one
  was up before (a pulled cable, Wi-Fi off): that is proof of offline, no
  probe needed; ``True`` when one is up; ``None`` when it cannot tell.

The :class:`~connmgr.network.NetworkMonitor` starts one with its watcher and
turns each report into :meth:`~connmgr.network.NetworkMonitor.hint_changed`:
a new epoch and an immediate re-probe. Elsewhere (macOS, Windows, a sandbox
without netlink) :meth:`NetlinkListener.start` returns ``False`` and the
monitor polls (every ``interval`` while online); Qt apps can add
``connmgr.qt.NetworkInformationHint`` there.

Example::

    listener = NetlinkListener(lambda reason, links_up: log.info("%s (up: %s)", reason, links_up))
    if listener.start():
        ...
        listener.stop()
"""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["NetlinkListener", "NetlinkState", "netlink_supported"]

logger = logging.getLogger("connmgr.network")

# linux/netlink.h, linux/rtnetlink.h, linux/if.h
_NLMSG_ERROR, _NLMSG_DONE, _NLMSG_OVERRUN = 2, 3, 4
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_RTM_NEWLINK, _RTM_DELLINK, _RTM_GETLINK = 16, 17, 18
_RTM_NEWADDR, _RTM_DELADDR, _RTM_GETADDR = 20, 21, 22
_RTM_NEWROUTE, _RTM_DELROUTE, _RTM_GETROUTE = 24, 25, 26
_RTMGRP_LINK, _RTMGRP_IPV4_IFADDR, _RTMGRP_IPV4_ROUTE = 0x1, 0x10, 0x40
_RTMGRP_IPV6_IFADDR, _RTMGRP_IPV6_ROUTE = 0x100, 0x400
#: The groups the listener joins: links, IPv4/IPv6 addresses, IPv4/IPv6 routes.
GROUPS = (
    _RTMGRP_LINK | _RTMGRP_IPV4_IFADDR | _RTMGRP_IPV6_IFADDR | _RTMGRP_IPV4_ROUTE
) | _RTMGRP_IPV6_ROUTE
_IFLA_IFNAME = 3
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_RTA_DST, _RTA_OIF, _RTA_GATEWAY, _RTA_PRIORITY, _RTA_TABLE = 1, 4, 5, 6, 15
_RTM_F_CLONED = 0x200
_RT_TABLE_LOCAL = 255
_IFF_UP, _IFF_LOOPBACK, _IFF_RUNNING, _IFF_LOWER_UP = 0x1, 0x8, 0x40, 0x10000
_NLA_TYPE_MASK = 0x3FFF

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct(
    "=BBBBBBBBI"
)  # family, dst_len, src_len, tos, table, proto, scope, type, flags
_RTATTR = struct.Struct("=HH")  # len, type

_RECV_SIZE = 65536
#: Seconds to wait for the kernel's answer to the start-up dump.
_DUMP_TIMEOUT = 2.0


def netlink_supported() -> bool:
    """Whether this platform has ``AF_NETLINK`` routing sockets (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "AF_NETLINK")


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(type, flags, payload)`` for each netlink message in one datagram."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, flags, _, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            return  # truncated or garbage: stop reading this datagram
        yield kind, flags, data[offset + _NLMSGHDR.size : offset + length]
        offset += (length + 3) & ~3


def _attrs(payload: bytes, offset: int) -> dict[int, bytes]:
    """The route attributes after a fixed header (later duplicates win)."""
    found: dict[int, bytes] = {}
    while offset + _RTATTR.size <= len(payload):
        length, kind = _RTATTR.unpack_from(payload, offset)
        if length < _RTATTR.size or offset + length > len(payload):
            break
        found[kind & _NLA_TYPE_MASK] = payload[offset + _RTATTR.size : offset + length]
        offset += (length + 3) & ~3
    return found


def _usable(flags: int) -> bool:
    return bool(flags & _IFF_UP) and bool(flags & (_IFF_RUNNING | _IFF_LOWER_UP))


class NetlinkState:
    """What the kernel has told us: links, addresses, routes; reports only real changes.

    :meth:`apply` takes one netlink message and returns plain words when it
    changed something (``None`` for a repeat, an unknown type or garbage).
    Pure (no sockets), so it is tested with crafted messages.
    """

    __slots__ = ("addresses", "ever_up", "links", "routes")

    def __init__(self) -> None:
        self.links: dict[int, tuple[str, int]] = {}
        self.addresses: set[tuple[int, int, bytes]] = set()
        self.routes: set[tuple[int, int, int, bytes, int, bytes, int]] = set()
        self.ever_up = False

    def links_up(self) -> bool | None:
        """``True``: a non-loopback link is up; ``False``: none is, though one was; else None."""
        if any(_usable(flags) for _, flags in self._outside()):
            return True
        return False if self.ever_up else None

    def _outside(self) -> Iterator[tuple[str, int]]:
        return (v for v in self.links.values() if not v[1] & _IFF_LOOPBACK)

    def _name(self, index: int) -> str:
        link = self.links.get(index)
        return link[0] if link is not None else f"#{index}"

    def apply(self, kind: int, payload: bytes) -> str | None:
        """Record one message; plain words if it changed the state, else ``None``."""
        try:
            if kind in (_RTM_NEWLINK, _RTM_DELLINK):
                return self._link(kind, payload)
            if kind in (_RTM_NEWADDR, _RTM_DELADDR):
                return self._address(kind, payload)
            if kind in (_RTM_NEWROUTE, _RTM_DELROUTE):
                return self._route(kind, payload)
        except struct.error:
            return None  # a message shorter than its header: nothing to learn
        return None

    def _link(self, kind: int, payload: bytes) -> str | None:
        _, _, index, flags, _ = _IFINFOMSG.unpack_from(payload, 0)
        name_attr = _attrs(payload, _IFINFOMSG.size).get(_IFLA_IFNAME, b"")
        name = name_attr.split(b"\0", 1)[0].decode("utf-8", "replace") or self._name(index)
        old = self.links.get(index)
        if kind == _RTM_DELLINK or not flags & _IFF_UP:
            # Linux flushes the IPv4 routes of a link set down (or removed) without a
            # RTM_DELROUTE: forget them here, or their return (a DHCP client re-adding
            # the default route after the link came up) would look like a repeat.
            self.routes = {route for route in self.routes if route[4] != index}
        if kind == _RTM_DELLINK:
            if old is None:
                return None
            del self.links[index]
            return f"link {name} removed"
        self.links[index] = (name, flags)
        up = _usable(flags)
        if up and not flags & _IFF_LOOPBACK:
            self.ever_up = True
        if old is not None and _usable(old[1]) == up:
            return None
        return f"link {name} {'up' if up else 'down'}"

    def _address(self, kind: int, payload: bytes) -> str | None:
        family, _, _, _, index = _IFADDRMSG.unpack_from(payload, 0)
        found = _attrs(payload, _IFADDRMSG.size)
        address = found.get(_IFA_LOCAL) or found.get(_IFA_ADDRESS) or b""
        key = (index, family, address)
        if kind == _RTM_DELADDR:
            if key not in self.addresses:
                return None
            self.addresses.discard(key)
            return f"address removed on {self._name(index)}"
        if key in self.addresses:
            return None
        self.addresses.add(key)
        return f"address added on {self._name(index)}"

    def _route(self, kind: int, payload: bytes) -> str | None:
        family, dst_len, _, _, table, _, _, _, flags = _RTMSG.unpack_from(payload, 0)
        found = _attrs(payload, _RTMSG.size)
        if _RTA_TABLE in found and len(found[_RTA_TABLE]) == 4:
            table = struct.unpack("=I", found[_RTA_TABLE])[0]
        if table == _RT_TABLE_LOCAL or flags & _RTM_F_CLONED:
            return None  # follows the addresses / a cache entry: not a change of the way out
        oif_raw = found.get(_RTA_OIF, b"")
        oif = struct.unpack("=i", oif_raw)[0] if len(oif_raw) == 4 else 0
        prio_raw = found.get(_RTA_PRIORITY, b"")
        priority = struct.unpack("=I", prio_raw)[0] if len(prio_raw) == 4 else 0
        key = (
            family,
            table,
            dst_len,
            found.get(_RTA_DST, b""),
            oif,
            found.get(_RTA_GATEWAY, b""),
            priority,
        )
        what = "default route" if dst_len == 0 else "route"
        if kind == _RTM_DELROUTE:
            if key not in self.routes:
                return None
            self.routes.discard(key)
            return f"{what} removed"
        if key in self.routes:
            return None
        self.routes.add(key)
        return f"{what} added via {self._name(oif)}" if oif else f"{what} added"


class NetlinkListener:
    """Listen to Linux routing changes in a daemon thread; report each burst once.

    Args:
        on_change: called as ``on_change(reason, links_up)`` from the listener's
            thread, at most once per ``debounce``; it must not block for long.
            An exception in it is logged and the listener goes on.
        debounce: seconds to collect a burst of messages before reporting it
            (reported at most this long after its first message).

    Example::

        listener = NetlinkListener(lambda reason, up: monitor.hint_changed(reason, links_up=up))
        listener.start()          # False where there is no netlink
    """

    def __init__(
        self, on_change: Callable[[str, bool | None], object], *, debounce: float = 0.05
    ) -> None:
        if not callable(on_change):
            raise TypeError(f"on_change must be callable, got {on_change!r}")
        if (
            isinstance(debounce, bool)
            or not isinstance(debounce, int | float)
            or not 0 <= debounce <= 10
        ):
            raise ValueError(
                f"NetlinkListener.debounce must be between 0 and 10 seconds, got {debounce!r}"
            )
        self._on_change = on_change
        self.debounce = float(debounce)
        self.state = NetlinkState()
        self.reports = 0
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the listener thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> bool:
        """Subscribe, read the current state, start the thread; ``False`` if unsupported here.

        Idempotent. Never raises for a platform without netlink or a sandbox
        that forbids it: the reason is logged at DEBUG and the caller polls.
        """
        with self._lock:
            if self._thread is not None:
                return True
            if not netlink_supported():
                logger.debug("no netlink on %s: network changes are found by polling", sys.platform)
                return False
            try:
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            except OSError as exc:
                logger.debug("netlink unavailable (%s): polling instead", exc)
                return False
            try:
                # Subscribe first, then read the state: a change in between is
                # seen twice (harmless), never missed.
                sock.bind((0, GROUPS))
                self._read_state()
            except OSError as exc:
                sock.close()
                logger.debug("netlink unavailable (%s): polling instead", exc)
                return False
            wake_r, self._wake_w = socket.socketpair()
            self._thread = threading.Thread(
                target=self._run,
                args=(sock, wake_r, self._wake_w),
                name="connmgr-netlink",
                daemon=True,
            )
            self._thread.start()
        logger.debug("netlink listener started (%d links)", len(self.state.links))
        return True

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread and close the socket (idempotent); returns within ``timeout``."""
        with self._lock:
            thread, self._thread = self._thread, None
            wake = self._wake_w
        if thread is None:
            return
        if wake is not None:
            with contextlib.suppress(OSError):
                wake.send(b"x")
        if thread is not threading.current_thread():
            thread.join(timeout)

    def _read_state(self) -> None:
        dump = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            dump.bind((0, 0))
            dump.settimeout(_DUMP_TIMEOUT)
            for seq, (kind, header) in enumerate(
                (
                    (_RTM_GETLINK, _IFINFOMSG.pack(0, 0, 0, 0, 0)),
                    (_RTM_GETADDR, _IFADDRMSG.pack(0, 0, 0, 0, 0)),
                    (_RTM_GETROUTE, _RTMSG.pack(0, 0, 0, 0, 0, 0, 0, 0, 0)),
                ),
                start=1,
            ):
                request = _NLMSGHDR.pack(
                    _NLMSGHDR.size + len(header), kind, _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0
                )
                dump.send(request + header)
                self._read_dump(dump)
        finally:
            dump.close()

    def _read_dump(self, dump: socket.socket) -> None:
        while True:
            data = dump.recv(_RECV_SIZE)
            if not data:
                return
            for kind, _, payload in _messages(data):
                if kind == _NLMSG_DONE:
                    return
                if kind == _NLMSG_ERROR:
                    code = struct.unpack_from("=i", payload, 0)[0] if len(payload) >= 4 else 0
                    if code:
                        raise OSError(-code, f"netlink dump refused: {errno.errorcode.get(-code)}")
                    return
                self.state.apply(kind, payload)

    def _run(self, sock: socket.socket, wake: socket.socket, wake_w: socket.socket) -> None:
        changes: list[str] = []
        first_at = 0.0
        try:
            while True:
                wait = None
                if changes:
                    wait = max(0.0, first_at + self.debounce - time.monotonic())
                readable, _, _ = select.select([sock, wake], [], [], wait)
                if wake in readable:
                    return
                if sock in readable:
                    found = self._receive(sock)
                    if found and not changes:
                        first_at = time.monotonic()
                    changes.extend(found)
                if changes and time.monotonic() >= first_at + self.debounce:
                    self._report(changes)
                    changes = []
        except Exception:
            logger.exception("netlink listener failed: polling only from now on")
        finally:
            sock.close()
            wake.close()
            wake_w.close()
            logger.debug("netlink listener stopped")

    def _receive(self, sock: socket.socket) -> list[str]:
        try:
            data = sock.recv(_RECV_SIZE)
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            # The kernel dropped messages (a storm): re-read the whole state.
            ever_up = self.state.ever_up
            self.state = NetlinkState()
            self.state.ever_up = ever_up
            self._read_state()
            return ["netlink overrun: state re-read"]
        found = []
        for kind, _, payload in _messages(data):
            if kind == _NLMSG_OVERRUN:
                found.append("netlink overrun")
                continue
            change = self.state.apply(kind, payload)
            if change is not None:
                found.append(change)
        return found

    def _report(self, changes: list[str]) -> None:
        unique = list(dict.fromkeys(changes))
        reason = "; ".join(unique[:4]) + (f" (+{len(unique) - 4} more)" if len(unique) > 4 else "")
        self.reports += 1
        logger.debug("netlink: %s", reason)
        try:
            self._on_change(reason, self.state.links_up())
        except Exception:
            logger.exception("a netlink change receiver raised")
