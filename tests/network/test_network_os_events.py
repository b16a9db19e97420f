"""OS change events: netlink messages parsed and filtered, and a real pulled link in namespaces.

The namespace tests create their own network namespaces (a client and a
"router" joined by a veth pair), keep all traffic inside them, and remove them
afterwards. They need Linux, root and ``ip``; elsewhere they are skipped with
the reason.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from network_helpers import ONLINE, monitor_for

from connmgr.network import NetlinkListener
from connmgr.network.os_events import GROUPS, NetlinkState, _messages, netlink_supported

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

IFF_UP, IFF_LOOPBACK, IFF_RUNNING, IFF_LOWER_UP = 0x1, 0x8, 0x40, 0x10000
UP = IFF_UP | IFF_RUNNING | IFF_LOWER_UP
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE, RTM_DELROUTE = (
    16,
    17,
    20,
    21,
    24,
    25,
)


def attr(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("=HH", length, kind) + value + b"\0" * ((4 - length % 4) % 4)


def link(index: int, name: str, flags: int) -> bytes:
    return struct.pack("=BxHiII", 0, 1, index, flags, 0) + attr(3, name.encode() + b"\0")


def address(index: int, ip: str) -> bytes:
    return struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, index) + attr(2, socket.inet_aton(ip))


def route(oif: int, dst_len: int = 0, table: int = 254, flags: int = 0) -> bytes:
    header = struct.pack("=BBBBBBBBI", socket.AF_INET, dst_len, 0, 0, table, 3, 0, 1, flags)
    return header + attr(4, struct.pack("=i", oif)) + attr(5, socket.inet_aton("10.0.0.1"))


def nlmsg(kind: int, payload: bytes) -> bytes:
    length = 16 + len(payload)
    return struct.pack("=IHHII", length, kind, 0, 0, 0) + payload + b"\0" * ((4 - length % 4) % 4)


# --------------------------------------------------------------------------- parsing


def test_links_report_only_a_change_of_up_or_down():
    state = NetlinkState()
    assert state.links_up() is None  # nothing known: cannot tell
    assert state.apply(RTM_NEWLINK, link(1, "lo", UP | IFF_LOOPBACK)) == "link lo up"
    assert state.links_up() is None  # loopback is not a way out
    assert state.apply(RTM_NEWLINK, link(2, "eth0", UP)) == "link eth0 up"
    assert state.apply(RTM_NEWLINK, link(2, "eth0", UP | 0x1000)) is None  # other flags
    assert state.links_up() is True
    assert state.apply(RTM_NEWLINK, link(2, "eth0", IFF_UP)) == "link eth0 down"  # no carrier
    assert state.links_up() is False  # was up, none is now: proof of offline
    assert state.apply(RTM_DELLINK, link(2, "eth0", 0)) == "link eth0 removed"
    assert state.apply(RTM_DELLINK, link(2, "eth0", 0)) is None
    assert state.links_up() is False


def test_addresses_and_routes_report_additions_and_removals_once():
    state = NetlinkState()
    state.apply(RTM_NEWLINK, link(2, "wlan0", UP))
    assert state.apply(RTM_NEWADDR, address(2, "10.0.0.2")) == "address added on wlan0"
    assert state.apply(RTM_NEWADDR, address(2, "10.0.0.2")) is None  # a lifetime refresh
    assert state.apply(RTM_DELADDR, address(2, "10.0.0.2")) == "address removed on wlan0"
    assert state.apply(RTM_NEWROUTE, route(2)) == "default route added via wlan0"
    assert state.apply(RTM_NEWROUTE, route(2)) is None
    assert state.apply(RTM_NEWROUTE, route(2, table=255)) is None  # the local table
    assert state.apply(RTM_NEWROUTE, route(2, dst_len=24, flags=0x200)) is None  # cached
    assert state.apply(RTM_DELROUTE, route(2)) == "default route removed"


def test_routes_of_a_link_set_down_are_forgotten_so_their_return_is_reported():
    # The kernel flushes them silently (no RTM_DELROUTE) when the link goes down.
    state = NetlinkState()
    state.apply(RTM_NEWLINK, link(2, "eth0", UP))
    state.apply(RTM_NEWLINK, link(3, "wlan0", UP))
    assert state.apply(RTM_NEWROUTE, route(2)) == "default route added via eth0"
    assert state.apply(RTM_NEWROUTE, route(3, dst_len=24)) == "route added via wlan0"
    assert state.apply(RTM_NEWLINK, link(2, "eth0", 0)) == "link eth0 down"
    assert state.apply(RTM_NEWLINK, link(2, "eth0", UP)) == "link eth0 up"
    assert state.apply(RTM_NEWROUTE, route(2)) == "default route added via eth0"
    assert state.apply(RTM_NEWROUTE, route(3, dst_len=24)) is None  # another link's: kept
    # A lost carrier (still administratively up) keeps the routes, as the kernel does.
    assert state.apply(RTM_NEWLINK, link(2, "eth0", IFF_UP)) == "link eth0 down"
    assert state.apply(RTM_NEWROUTE, route(2)) is None


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x01", b"\xff" * 7, struct.pack("=IHHII", 8, 16, 0, 0, 0), b"\x00" * 64],
)
def test_garbage_and_truncated_messages_are_ignored(garbage):
    state = NetlinkState()
    for kind, _, payload in _messages(garbage):
        assert state.apply(kind, payload) is None
    assert state.apply(RTM_NEWLINK, b"\x00\x01") is None  # shorter than its header
    assert state.apply(99, b"\x00" * 32) is None  # not a routing message


def test_one_datagram_can_hold_several_messages():
    data = nlmsg(RTM_NEWLINK, link(2, "eth0", UP)) + nlmsg(RTM_NEWADDR, address(2, "10.1.1.1"))
    kinds = [kind for kind, _, _ in _messages(data)]
    assert kinds == [RTM_NEWLINK, RTM_NEWADDR]
    # A length that runs past the end stops the reading instead of raising.
    assert list(_messages(data[:-4])) == list(_messages(data))[:1]


def test_listener_arguments_are_checked():
    with pytest.raises(TypeError, match="on_change"):
        NetlinkListener("print")  # type: ignore[arg-type]
    for bad in (-0.1, 11, True, "0.05"):
        with pytest.raises(ValueError, match=r"NetlinkListener\.debounce"):
            NetlinkListener(print, debounce=bad)  # type: ignore[arg-type]


def test_groups_are_links_addresses_and_routes():
    assert GROUPS == 0x1 | 0x10 | 0x100 | 0x40 | 0x400


@pytest.mark.skipif(not netlink_supported(), reason="netlink exists only on Linux")
def test_the_listener_reads_the_state_and_stops_quickly():
    listener = NetlinkListener(lambda reason, up: None)
    assert listener.start() is True
    assert listener.start() is True  # idempotent
    assert any(flags & IFF_LOOPBACK for _, flags in listener.state.links.values())
    started = time.perf_counter()
    listener.stop()
    assert time.perf_counter() - started < 0.5
    assert not listener.running


@pytest.mark.skipif(not netlink_supported(), reason="netlink exists only on Linux")
def test_the_monitor_starts_and_stops_its_listener(listener):
    from connmgr.network import TcpProbe

    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port), os_events=True)
    monitor.start()
    try:
        assert monitor.os_events_source == "netlink"
    finally:
        monitor.stop()
    assert monitor.os_events_source is None
    quiet = monitor_for(TcpProbe("127.0.0.1", listener.port))
    quiet.start()
    try:
        assert quiet.os_events_source is None  # os_events=False: polling only
    finally:
        quiet.stop()


# --------------------------------------------------------------------------- real namespaces


def _why_no_namespaces() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces exist only on Linux"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is missing"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Lab:
    """A client and a router namespace joined by a veth pair: 10.213.0.2 <-> 10.213.0.1."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.client, self.router = f"cmnet{tag}c", f"cmnet{tag}r"
        self.client_if, self.router_if = f"cm{tag}c", f"cm{tag}r"
        self.procs: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Lab:
        self._remove()  # left over from a run that was killed
        _ip("netns", "add", self.client)
        _ip("netns", "add", self.router)
        # Distinct interface indexes on the two ends. The kernel reports a carrier
        # change at once only for a device whose peer index differs from its own
        # (linkwatch's "urgent" rule); otherwise it batches such reports at most
        # once a second across the whole machine, so any link event elsewhere in
        # the previous second (another test's namespaces) would delay ours by up
        # to 1 s. A physical NIC is paced the same way; docs/network.md says so.
        _ip(
            "link", "add", self.client_if, "index", "7", "netns", self.client, "type", "veth",
            "peer", "name", self.router_if, "index", "8", "netns", self.router,
        )  # fmt: skip
        _ip("-n", self.client, "addr", "add", "10.213.0.2/24", "dev", self.client_if)
        _ip("-n", self.router, "addr", "add", "10.213.0.1/24", "dev", self.router_if)
        for ns, dev in ((self.client, self.client_if), (self.router, self.router_if)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", dev, "up")
        return self

    def run(self, ns: str, *argv: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}"}
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.procs.append(proc)
        return proc

    def __exit__(self, *exc_info: object) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(3)
        self._remove()

    def _remove(self) -> None:
        for ns in (self.client, self.router):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True, timeout=10)


ROUTER_SERVER = """
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.213.0.1", 8080)); s.listen(64)

def serve():
    while True:
        c, _ = s.accept(); c.close()

threading.Thread(target=serve, daemon=True).start()
print("listening", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


class Lines:
    """The child's JSON lines, read in a thread so a wait can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[dict[str, object]] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=self._read, args=(stdout,), daemon=True).start()

    def _read(self, stdout: object) -> None:
        for line in stdout:  # type: ignore[attr-defined]
            self.queue.put(json.loads(line))

    def next_status(self, status: str, timeout: float) -> dict[str, object]:
        end = time.monotonic() + timeout
        while True:
            item = self.queue.get(timeout=max(0.001, end - time.monotonic()))
            if item.get("status") == status or item.get("ready"):
                return item


@pytest.fixture
def lab() -> Iterator[Lab]:
    why = _why_no_namespaces()
    if why is not None:
        pytest.skip(why)
    with Lab() as made:
        yield made


@pytest.mark.parametrize("pulled", ["router side (carrier lost)", "client side (link down)"])
def test_a_pulled_link_is_noticed_within_200_ms_and_its_return_within_1_s(lab, pulled):
    server = lab.run(lab.router, sys.executable, "-c", ROUTER_SERVER)
    assert server.stdout is not None and server.stdout.readline().strip() == "listening"
    child = lab.run(
        lab.client, sys.executable, str(HERE / "netns_monitor_child.py"), "10.213.0.1", "8080"
    )
    lines = Lines(child)
    ready = lines.next_status("never", timeout=10.0)
    assert ready == {"ready": True, "os_events": "netlink"}
    lines.next_status(ONLINE.value, timeout=5.0)

    ns, dev = (
        (lab.router, lab.router_if) if pulled.startswith("router") else (lab.client, lab.client_if)
    )
    pulled_at = time.monotonic()
    print(f"{pulled_at:.3f} pulling {dev}", file=sys.stderr)
    _ip("-n", ns, "link", "set", dev, "down")
    offline = lines.next_status("offline", timeout=5.0)
    noticed = float(offline["t"]) - pulled_at  # type: ignore[arg-type]
    assert noticed <= 0.2, f"offline noticed after {noticed * 1000:.0f} ms: {offline}"

    returned_at = time.monotonic()
    _ip("-n", ns, "link", "set", dev, "up")
    online = lines.next_status("online", timeout=5.0)
    back = float(online["t"]) - returned_at  # type: ignore[arg-type]
    assert back <= 1.0, f"online again after {back * 1000:.0f} ms"
    assert int(online["epoch"]) > int(offline["epoch"])  # type: ignore[call-overload]
    print(f"{pulled}: offline in {noticed * 1000:.0f} ms, online in {back * 1000:.0f} ms")


# --------------------------------------------------------------------------- the listener loop


class LoopHarness:
    """The listener's loop on a datagram socketpair standing in for the netlink socket."""

    def __init__(self, on_change, debounce: float = 0.05) -> None:
        self.listener = NetlinkListener(on_change, debounce=debounce)
        self.kernel, sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        wake_r, self.wake_w = socket.socketpair()
        self.thread = threading.Thread(
            target=self.listener._run, args=(sock, wake_r, self.wake_w), daemon=True
        )
        self.thread.start()

    def send(self, *messages: bytes) -> None:
        self.kernel.send(b"".join(messages))

    def stop(self) -> None:
        self.wake_w.send(b"x")
        self.thread.join(2.0)
        self.kernel.close()


def test_a_burst_is_reported_once_and_repeats_not_at_all():
    reports: queue.Queue[tuple[str, bool | None]] = queue.Queue()
    harness = LoopHarness(lambda reason, up: reports.put((reason, up)))
    try:
        harness.send(
            nlmsg(RTM_NEWLINK, link(2, "eth0", UP)),
            nlmsg(RTM_NEWADDR, address(2, "10.0.0.2")),
            nlmsg(RTM_NEWROUTE, route(2)),
        )
        assert reports.get(timeout=2.0) == (
            "link eth0 up; address added on eth0; default route added via eth0",
            True,
        )
        harness.send(nlmsg(RTM_NEWADDR, address(2, "10.0.0.2")))  # a lifetime refresh
        harness.send(nlmsg(RTM_NEWLINK, link(2, "eth0", IFF_UP)))  # carrier lost
        assert reports.get(timeout=2.0) == ("link eth0 down", False)
        assert reports.empty()
    finally:
        harness.stop()
    assert not harness.thread.is_alive()


def test_a_receiver_that_raises_is_logged_and_the_listener_goes_on(caplog):
    reports: queue.Queue[str] = queue.Queue()

    def flaky(reason: str, up: bool | None) -> None:
        reports.put(reason)
        if reports.qsize() == 1:
            raise RuntimeError("receiver bug")

    harness = LoopHarness(flaky, debounce=0.0)
    try:
        harness.send(nlmsg(RTM_NEWLINK, link(3, "wlan0", UP)))
        assert reports.get(timeout=2.0) == "link wlan0 up"
        harness.send(b"\xff" * 40)  # garbage from the "kernel": ignored
        harness.send(nlmsg(RTM_DELLINK, link(3, "wlan0", 0)))
        assert reports.get(timeout=2.0) == "link wlan0 removed"
    finally:
        harness.stop()
    assert "a netlink change receiver raised" in caplog.text


def test_many_changes_make_one_short_reason():
    reports: queue.Queue[str] = queue.Queue()
    harness = LoopHarness(lambda reason, up: reports.put(reason), debounce=0.1)
    try:
        harness.send(*(nlmsg(RTM_NEWLINK, link(i, f"veth{i}", UP)) for i in range(2, 9)))
        reason = reports.get(timeout=2.0)
    finally:
        harness.stop()
    assert reason == "link veth2 up; link veth3 up; link veth4 up; link veth5 up (+3 more)"
