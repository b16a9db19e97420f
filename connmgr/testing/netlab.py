"""NetLab: a client, two home networks and a small internet, in network namespaces.

A test that must see what connmgr does when a cable is pulled, DNS breaks, a
captive portal appears or the laptop moves to another Wi-Fi network cannot do
it on loopback. NetLab builds that world out of Linux network namespaces (so
it needs Linux and root; :meth:`NetLab.unavailable_reason` says why not), with
veth pairs between them and nothing routed to the host::

    client                 router 1 (network 1)          internet
    eth0 10.200.1.2 ─────── lan 10.200.1.1  wan 10.201.1.1 ── up1 10.201.1.2
    eth1 10.200.2.2 ─────── lan 10.200.2.1  wan 10.201.2.1 ── up2 10.201.2.2
                            router 2 (network 2)               203.0.113.10 connectivity.test
                                                               203.0.113.20 portal.test
                                                               203.0.113.30 store.test

The client starts on network 1 (``eth0`` up, default route via ``10.200.1.1``;
``eth1`` down). Each router runs a DNS server on its LAN address, which is the
client's resolver. The internet (``203.0.113.0/24``, TEST-NET-3, which exists
only inside these namespaces) serves ``http://connectivity.test/generate_204``
(204), a captive portal, and the store API: :attr:`NetLab.store`, a
:class:`~connmgr.testing.FaultServer` on ``203.0.113.30:80``, counted and
recorded as usual. The servers run in this process, on sockets created inside
the namespaces, so they end with it.

Client code runs either

- in a child process (:meth:`NetLab.client_python`, :meth:`NetLab.start_client`):
  ``ip netns exec CLIENT python``, which also mounts the lab's resolv.conf
  (``/etc/netns/CLIENT/resolv.conf``) over ``/etc/resolv.conf`` for that
  process only, so names resolve through the lab's DNS; or
- in this process, on a thread inside the client namespace
  (:meth:`NetLab.run_in_client`); sockets and threads it creates stay there,
  but name lookups use the host's resolv.conf, so use IP literals there.

Knobs: :meth:`~NetLab.pull_cable` / :meth:`~NetLab.plug_cable`,
:meth:`~NetLab.break_dns` / :meth:`~NetLab.fix_dns`, :meth:`~NetLab.portal`,
:meth:`~NetLab.blackhole` / :meth:`~NetLab.unblackhole`,
:meth:`~NetLab.switch_network`, and :meth:`~NetLab.reset` for all of them.

Example::

    with NetLab() as lab:
        assert lab.client_python(
            "import requests; return requests.get(args, timeout=5).status_code",
            lab.store_url("/ok"),
        ) == 200
        lab.pull_cable()
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import shutil
import socket
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from connmgr.frozen import explain_frozen
from connmgr.testing import netns
from connmgr.testing.labclient import ClientCodeError, ClientProcess

if TYPE_CHECKING:
    from connmgr.testing.dns import LabDns
    from connmgr.testing.portal import PortalSwitch
    from connmgr.testing.server import FaultServer

__all__ = ["ClientCodeError", "ClientProcess", "LabNetwork", "NetLab"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The internet's addresses by name (what the lab's DNS answers).
HOSTS = {
    "connectivity.test": "203.0.113.10",
    "portal.test": "203.0.113.20",
    "store.test": "203.0.113.30",
}
_INTERNET = "203.0.113.0/24"
_DNS_MODES_BROKEN = ("servfail", "nxdomain", "timeout")


@explain_frozen
@dataclass(frozen=True, slots=True)
class LabNetwork:
    """One of the two networks the client can be on.

    Attributes:
        number: 1 or 2.
        interface: the client's interface on it (``eth0``, ``eth1``).
        client_address: the client's address there.
        gateway: the router's LAN address, also the DNS server.
        uplink: the router's address towards the internet.
        internet_side: the internet's address towards that router.
    """

    number: int
    interface: str
    client_address: str
    gateway: str
    uplink: str
    internet_side: str

    @property
    def dns_server(self) -> str:
        """The resolver the network hands out (its router)."""
        return self.gateway


NETWORKS = (
    LabNetwork(1, "eth0", "10.200.1.2", "10.200.1.1", "10.201.1.1", "10.201.1.2"),
    LabNetwork(2, "eth1", "10.200.2.2", "10.200.2.1", "10.201.2.1", "10.201.2.2"),
)


def _close_all(closers: list[Callable[[], None]]) -> None:
    # Last opened, first closed; one failure does not stop the rest.
    while closers:
        closer = closers.pop()
        try:
            closer()
        except Exception:
            logger.exception("NetLab cleanup step failed")


class NetLab:
    """Network namespaces for a client, two networks and an internet; see the module docstring.

    Args:
        prefix: the start of every namespace name; names are
            ``PREFIX-PID-TOKEN-ROLE`` (roles ``client``, ``net1``, ``net2``,
            ``inet``), unique per instance, so labs in parallel test workers
            never meet. Leftovers of dead processes with this prefix are removed
            by :meth:`start`.
        dns_timeout: the client resolver's timeout in whole seconds (one try),
            i.e. how long a lookup waits in ``break_dns("timeout")``.

    :meth:`start` (or ``with``) builds everything; :meth:`close` (or leaving
    ``with``, also after an error, and at interpreter exit for a lab left open)
    removes the namespaces, their veth pairs and ``/etc/netns/CLIENT``.
    """

    hosts = HOSTS
    networks = NETWORKS

    def __init__(self, *, prefix: str = "cmlab", dns_timeout: int = 1) -> None:
        if not isinstance(prefix, str) or not prefix.replace("_", "").isalnum():
            raise ValueError(f"prefix must be letters, digits or _, got {prefix!r}")
        if isinstance(dns_timeout, bool) or not isinstance(dns_timeout, int):
            raise TypeError(f"dns_timeout must be an int, got {type(dns_timeout).__name__}")
        if not 1 <= dns_timeout <= 30:
            raise ValueError(f"dns_timeout must be 1..30 seconds, got {dns_timeout!r}")
        self.prefix = prefix
        self.dns_timeout = dns_timeout
        base = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
        #: The namespace names by role.
        self.client_ns = f"{base}-client"
        self.router_ns = (f"{base}-net1", f"{base}-net2")
        self.internet_ns = f"{base}-inet"
        self._network = NETWORKS[0]
        self._cable = True
        # Per network, the destinations its router blackholes (the internet, or one host).
        self._blackholed: dict[int, set[str]] = {}
        # Networks whose router end of the client's cable is down (pull_cable(carrier_only=True)).
        self._carrier_pulled: set[int] = set()
        self._dns: LabDns | None = None
        self._switch: PortalSwitch | None = None
        self._store: FaultServer | None = None
        self._closers: list[Callable[[], None]] = []
        self._clients: weakref.WeakSet[ClientProcess] = weakref.WeakSet()
        self._lock = threading.RLock()
        self._started = False
        self._closed = False
        self._finalizer = weakref.finalize(self, _close_all, self._closers)

    # -- availability -------------------------------------------------------

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why a NetLab cannot run here (Linux, root, iproute2, dnslib), or ``None``."""
        reason = netns.netns_unavailable_reason()
        if reason is None:
            try:
                import dnslib  # noqa: F401
            except ImportError:
                reason = "NetLab needs dnslib (pip install dnslib, or the `dev` extra)"
        return reason

    @staticmethod
    def sweep(prefix: str = "cmlab") -> list[str]:
        """Remove namespaces named ``PREFIX-PID-...`` whose process is gone; their names."""
        return netns.sweep(prefix)

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> NetLab:
        """Build the namespaces, links, routes and servers; returns ``self``.

        Raises ``RuntimeError`` saying why when NetLab cannot run here; on any
        failure, whatever was built is removed before the error propagates.
        """
        reason = self.unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        with self._lock:
            if self._closed:
                raise RuntimeError("a closed NetLab cannot be started again")
            if self._started:
                return self
            self._started = True
            netns.sweep(self.prefix)
            try:
                self._build()
            except BaseException:
                self._closed = True
                _close_all(self._closers)
                raise
        return self

    def close(self) -> None:
        """Stop the servers and client processes, remove the namespaces and files. Idempotent."""
        with self._lock:
            self._closed = True
            for client in list(self._clients):
                client.kill()
            self._finalizer()

    def __enter__(self) -> NetLab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<NetLab {self.client_ns} network {self._network.number}>"

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace this lab creates."""
        return (self.client_ns, *self.router_ns, self.internet_ns)

    def _build(self) -> None:
        for name in self.namespaces:
            netns.ip("netns", "add", name)
            self._closers.append(functools.partial(netns.delete_netns, name))
            netns.ip("link", "set", "lo", "up", netns=name)
        client, inet = self.client_ns, self.internet_ns
        for router, net in zip(self.router_ns, NETWORKS, strict=True):
            uplink = f"up{net.number}"
            n = str(net.number)
            # Created inside the namespaces, so no name ever appears on the host. Each
            # end gets its own interface index (client 1x, LAN 2x, WAN 3x, internet 4x):
            # fresh namespaces would give both ends of a pair the same one, and the
            # kernel then reports a veth's carrier changes in its batched once-a-second
            # pass instead of at once, which would blur every timing measured here.
            netns.ip(
                "link", "add", net.interface, "index", "1" + n, "type", "veth",
                "peer", "name", "lan", "index", "2" + n, "netns", router, netns=client,
            )  # fmt: skip
            netns.ip(
                "link", "add", "wan", "index", "3" + n, "type", "veth",
                "peer", "name", uplink, "index", "4" + n, "netns", inet, netns=router,
            )  # fmt: skip
            netns.ip("addr", "add", f"{net.client_address}/24", "dev", net.interface, netns=client)
            netns.ip("addr", "add", f"{net.gateway}/24", "dev", "lan", netns=router)
            netns.ip("addr", "add", f"{net.uplink}/24", "dev", "wan", netns=router)
            netns.ip("addr", "add", f"{net.internet_side}/24", "dev", uplink, netns=inet)
            for dev, where in (("lan", router), ("wan", router), (uplink, inet)):
                netns.ip("link", "set", dev, "up", netns=where)
            netns.ip("route", "add", _INTERNET, "via", net.internet_side, netns=router)
            lan = net.gateway.rsplit(".", 1)[0] + ".0/24"
            netns.ip("route", "add", lan, "via", net.uplink, netns=inet)
            netns.sysctl(router, "net.ipv4.ip_forward=1")
        for address in HOSTS.values():
            netns.ip("addr", "add", f"{address}/32", "dev", "lo", netns=inet)
        self._write_resolv_conf()
        # No closer refers to self, so a lab that is dropped unclosed is still collected
        # (and its finalizer removes everything).
        self._closers.append(
            functools.partial(
                shutil.rmtree, netns.ETC_NETNS_DIR / self.client_ns, ignore_errors=True
            )
        )
        self._bring_up(self._network)
        self._start_servers()

    def _start_servers(self) -> None:
        from connmgr.testing.dns import LabDns
        from connmgr.testing.portal import PortalSwitch, start_lab_http
        from connmgr.testing.server import FaultServer

        dns = LabDns(HOSTS)
        self._dns = dns
        self._closers.append(dns.close)
        for router, net in zip(self.router_ns, NETWORKS, strict=True):
            dns.serve(netns.run_in_netns(router, _udp_socket, net.gateway, 53, timeout=5))
        self._switch = switch = PortalSwitch()
        for host, role in (("connectivity.test", "check"), ("portal.test", "portal")):
            server = netns.run_in_netns(
                self.internet_ns, start_lab_http, HOSTS[host], 80, role, switch, timeout=5
            )
            self._closers.append(server.server_close)
            self._closers.append(server.shutdown)
        store = FaultServer(host=HOSTS["store.test"], port=80)
        self._closers.append(store.close)
        netns.run_in_netns(self.internet_ns, store.start, timeout=5)
        self._store = store

    # -- addresses ------------------------------------------------------------

    @property
    def network(self) -> LabNetwork:
        """The network the client is on now."""
        return self._network

    @property
    def cable(self) -> bool:
        """Whether the client's cable is in (``False`` after :meth:`pull_cable`)."""
        return self._cable

    @property
    def store(self) -> FaultServer:
        """The store API: a :class:`FaultServer` on ``store.test`` (``203.0.113.30:80``)."""
        if self._store is None:
            raise RuntimeError("NetLab is not started")
        return self._store

    @property
    def check_url(self) -> str:
        """The connectivity check, ``http://connectivity.test/generate_204`` (204 when online)."""
        return "http://connectivity.test/generate_204"

    @property
    def portal_hits(self) -> int:
        """How many requests the portal has answered (page or redirect)."""
        return self._switch.hits if self._switch is not None else 0

    @property
    def dns_queries(self) -> int:
        """How many DNS queries the lab's resolvers have read."""
        return self._dns.queries if self._dns is not None else 0

    def store_url(self, path: str = "/") -> str:
        """``http://store.test`` + ``path`` (a FaultServer route, e.g. ``/ok``)."""
        return "http://store.test" + (path if path.startswith("/") else "/" + path)

    # -- knobs ----------------------------------------------------------------

    def pull_cable(self, *, carrier_only: bool = False) -> None:
        """Take the client's link down: its routes go, connects fail (network unreachable).

        By default the client's interface is set down (as ``ip link set eth0
        down`` or switching Wi-Fi off would). With ``carrier_only=True`` the
        router's end goes down instead: the client's interface stays
        administratively up and only loses its carrier, which is what an
        unplugged cable or a lost Wi-Fi association looks like to the client.
        """
        if not isinstance(carrier_only, bool):
            raise TypeError(f"carrier_only must be a bool, got {type(carrier_only).__name__}")
        self._require_started()
        with self._lock:
            net = self._network
            if carrier_only:
                netns.ip("link", "set", "lan", "down", netns=self.router_ns[net.number - 1])
                self._carrier_pulled.add(net.number)
            else:
                netns.ip("link", "set", net.interface, "down", netns=self.client_ns)
            self._cable = False

    def plug_cable(self, *, route: bool = True) -> None:
        """Bring the link back up and restore the default route, as a DHCP client would.

        With ``route=False`` the link comes up with its address but without the
        default route, as while a DHCP client is still asking; a later
        ``plug_cable()`` adds the route.
        """
        if not isinstance(route, bool):
            raise TypeError(f"route must be a bool, got {type(route).__name__}")
        self._require_started()
        with self._lock:
            net = self._network
            if net.number in self._carrier_pulled:
                netns.ip("link", "set", "lan", "up", netns=self.router_ns[net.number - 1])
                self._carrier_pulled.discard(net.number)
            self._bring_up(net, route=route)
            self._cable = True

    def break_dns(self, mode: str = "servfail") -> None:
        """Make the lab's resolvers fail: ``servfail`` (at once), ``nxdomain``, or ``timeout``.

        ``timeout`` drops queries, so a lookup waits ``dns_timeout`` seconds.
        Addresses still connect: only names are broken.
        """
        if mode not in _DNS_MODES_BROKEN:
            raise ValueError(f"mode must be one of {', '.join(_DNS_MODES_BROKEN)}, got {mode!r}")
        self._require_started()
        assert self._dns is not None
        self._dns.set_mode(mode)

    def fix_dns(self) -> None:
        """Resolvers answer again."""
        self._require_started()
        assert self._dns is not None
        self._dns.set_mode("ok")

    def portal(self, on: bool, *, redirect: bool = False) -> None:
        """Turn the captive portal on or off.

        While on, every name resolves to ``portal.test``'s address, and the
        connectivity check's address answers the portal too (for clients that
        use it by IP): the login page (``200`` HTML), or with ``redirect=True``
        a ``302`` to ``http://portal.test/login``. The store stays reachable by
        its IP address, as many portals let established destinations through.
        """
        if not isinstance(on, bool):
            raise TypeError(f"on must be a bool, got {type(on).__name__}")
        self._require_started()
        assert self._dns is not None and self._switch is not None
        self._switch.set(on, redirect)
        self._dns.hijack(HOSTS["portal.test"] if on else None)

    def blackhole(self, host: str | None = None) -> None:
        """The current network's router silently drops everything bound for the internet.

        The link stays up and the router's DNS still answers, but connections to
        the internet hang until their timeout (no reset, no ICMP), like a
        Wi-Fi network whose uplink died. With ``host`` (a name in
        :attr:`hosts`, e.g. ``"connectivity.test"``) only that address is
        dropped and the rest of the internet still answers, like a middlebox
        that swallows the connectivity check.
        """
        if host is not None and host not in HOSTS:
            raise ValueError(f"host must be one of {', '.join(HOSTS)}, got {host!r}")
        self._require_started()
        with self._lock:
            net = self._network
            router = self.router_ns[net.number - 1]
            target = _INTERNET if host is None else HOSTS[host] + "/32"
            netns.ip("route", "replace", "blackhole", target, netns=router)
            self._blackholed.setdefault(net.number, set()).add(target)

    def unblackhole(self) -> None:
        """Restore the current network's routes to the internet."""
        self._require_started()
        with self._lock:
            self._restore_routes(self._network.number)

    def _restore_routes(self, number: int) -> None:
        router = self.router_ns[number - 1]
        for target in sorted(self._blackholed.pop(number, set())):
            if target == _INTERNET:
                via = NETWORKS[number - 1].internet_side
                netns.ip("route", "replace", _INTERNET, "via", via, netns=router)
            else:
                netns.ip("route", "del", target, netns=router)

    def switch_network(self, number: int | None = None) -> LabNetwork:
        """Move the client to the other network (or to network ``number``); the new network.

        The old interface goes down and loses its address (sockets bound to it
        are stranded), the new one comes up with its own address, gateway and
        DNS server, and the client's resolv.conf is rewritten in place, so
        running client processes see the new resolver too.
        """
        self._require_started()
        with self._lock:
            if number is None:
                number = 3 - self._network.number
            if number not in (1, 2):
                raise ValueError(f"number must be 1 or 2, got {number!r}")
            new = NETWORKS[number - 1]
            old = self._network
            if new is old:
                return new
            netns.ip("link", "set", old.interface, "down", netns=self.client_ns)
            netns.ip("addr", "flush", "dev", old.interface, netns=self.client_ns)
            self._network = new
            self._bring_up(new)
            self._cable = True
            self._write_resolv_conf()
            return new

    def reset(self) -> None:
        """Back to the start: network 1, cable in, DNS working, no portal, no blackhole.

        Also clears the store's counters, request log and aliases.
        """
        with self._lock:
            self._require_started()
            for number in sorted(self._blackholed):
                self._restore_routes(number)
            for number in sorted(self._carrier_pulled):
                netns.ip("link", "set", "lan", "up", netns=self.router_ns[number - 1])
            self._carrier_pulled.clear()
            self.switch_network(1)
            self.plug_cable()
            self.fix_dns()
            self.portal(False)
            self.store.reset()

    # -- running code in the client namespace ----------------------------------

    def start_client(self, code: str, args: Any = None) -> ClientProcess:
        """Start ``code`` in a child process inside the client namespace; see ``client_python``.

        Returns the :class:`ClientProcess` at once, so the test can act while it
        runs: the snippet calls ``ready()`` when set up and ``wait_parent()``;
        the test calls ``proc.wait_ready(t)``, pulls a cable, ``proc.release()``,
        then ``proc.wait(t)``. ``send(value)`` in the snippet and
        ``proc.receive(t)`` pass values while it runs (see :class:`ClientProcess`).
        """
        self._require_started()
        proc = ClientProcess(["ip", "netns", "exec", self.client_ns], code, args)
        self._clients.add(proc)
        return proc

    def client_python(self, code: str, args: Any = None, *, timeout: float = 20.0) -> Any:
        """Run ``code`` in a child process in the client namespace; its return value.

        ``code`` is the body of a function with ``args`` (JSON-serialisable,
        passed through), ``send()``, ``ready()`` and ``wait_parent()`` in scope;
        it returns a JSON-serialisable value. Names resolve through the lab's
        DNS. An exception in it raises :class:`ClientCodeError` here, with the
        child's traceback; after
        ``timeout`` seconds the child is killed and ``TimeoutError`` raised.

        Example::

            lab.client_python("import socket; return socket.gethostbyname(args)", "store.test")
            # '203.0.113.30'
        """
        return self.start_client(code, args).wait(timeout)

    def run_in_client(self, fn: Callable[..., T], *args: Any, timeout: float | None = 30.0) -> T:
        """Call ``fn(*args)`` in this process, on a thread inside the client namespace.

        Sockets and threads ``fn`` creates live in the client namespace (a
        ``NetworkMonitor`` started there probes from there). Name lookups on
        that thread still read the host's resolv.conf, so use the addresses in
        :attr:`hosts`; for names, use :meth:`client_python`.
        """
        self._require_started()
        return netns.run_in_netns(self.client_ns, fn, *args, timeout=timeout)

    # -- internals --------------------------------------------------------------

    def _require_started(self) -> None:
        if not self._started or self._closed:
            raise RuntimeError("NetLab is not running (call start() or use `with`)")

    def _bring_up(self, net: LabNetwork, *, route: bool = True) -> None:
        client = self.client_ns
        netns.ip("addr", "replace", f"{net.client_address}/24", "dev", net.interface, netns=client)
        netns.ip("link", "set", net.interface, "up", netns=client)
        if route:
            netns.ip("route", "replace", "default", "via", net.gateway, netns=client)

    def _write_resolv_conf(self) -> None:
        folder = netns.ETC_NETNS_DIR / self.client_ns
        folder.mkdir(parents=True, exist_ok=True)
        text = (
            f"# NetLab {self.client_ns}: network {self._network.number}\n"
            f"nameserver {self._network.dns_server}\n"
            f"options timeout:{self.dns_timeout} attempts:1\n"
        )
        # In place (same inode), so the bind mounts of running clients see it.
        with open(folder / "resolv.conf", "w", encoding="ascii") as file:
            file.write(text)


def _udp_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
