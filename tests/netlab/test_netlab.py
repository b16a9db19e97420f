"""NetLab itself: it comes up, every knob does what it says, and it leaves nothing behind.

Client code runs in child processes inside the client namespace (about 0.2 s
each), so each test asks several things in one snippet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from connmgr.testing import netns
from connmgr.testing.labclient import ClientCodeError
from connmgr.testing.netlab import NetLab

pytestmark = pytest.mark.netlab

STORE_IP = NetLab.hosts["store.test"]

# Connects by name and by address; reports what happened to each, never raises.
PROBE = """
import socket
out = {}
for key, host in (("name", "store.test"), ("ip", args["ip"])):
    try:
        socket.create_connection((host, 80), timeout=args.get("timeout", 2)).close()
        out[key] = "connected"
    except socket.gaierror as exc:
        out[key] = "lookup failed"
    except OSError as exc:
        out[key] = type(exc).__name__ + ":" + str(exc.errno)
return out
"""

# GETs each URL in args (one URL, or a list: one answer each), redirects not followed;
# http.client rather than requests: a snippet starts in a third of the time.
GET = """
import http.client, urllib.parse
answers = []
for url in ([args] if isinstance(args, str) else args):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=3)
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
    r = conn.getresponse()
    answers.append({"status": r.status, "location": r.getheader("Location"),
                    "body": r.read().decode()})
    conn.close()
return answers[0] if isinstance(args, str) else answers
"""


def probe(lab: NetLab, timeout: float = 2.0) -> dict[str, str]:
    result: dict[str, str] = lab.client_python(PROBE, {"ip": STORE_IP, "timeout": timeout})
    return result


def leftovers(lab: NetLab) -> list[str]:
    names = [n for n in lab.namespaces if (netns.NETNS_DIR / n).exists()]
    if (netns.ETC_NETNS_DIR / lab.client_ns).exists():
        names.append(str(netns.ETC_NETNS_DIR / lab.client_ns))
    return names


def test_two_labs_come_up_side_by_side_and_leave_nothing() -> None:
    reason = NetLab.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    first, second = NetLab(), NetLab()
    with first, second:
        assert set(first.namespaces).isdisjoint(second.namespaces)
        assert all(n.startswith(f"cmlab-{os.getpid()}-") for n in first.namespaces)
        assert sorted(leftovers(first)) == sorted(
            [*first.namespaces, str(netns.ETC_NETNS_DIR / first.client_ns)]
        )
        # Nothing of the lab shows on the host: its links live inside the namespaces.
        host_links = subprocess.run(
            ["ip", "-o", "link"], capture_output=True, text=True, check=True
        ).stdout
        assert "lan" not in host_links.split() and "up1" not in host_links
        assert second.client_python(GET, second.store_url("/ok"))["status"] == 200
    assert leftovers(first) == [] and leftovers(second) == []
    first.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        first.start()
    with pytest.raises(RuntimeError, match="not running"):
        first.pull_cable()


def test_an_error_inside_with_still_removes_everything() -> None:
    if NetLab.unavailable_reason():
        pytest.skip(NetLab.unavailable_reason() or "")
    lab = NetLab()
    with pytest.raises(ZeroDivisionError), lab:
        proc = lab.start_client("ready()\nimport time\ntime.sleep(60)")
        proc.wait_ready(10)
        1 / 0  # noqa: B018
    assert leftovers(lab) == []
    with pytest.raises(ClientCodeError):  # the running client was killed by close()
        proc.wait(5)


def test_a_build_that_fails_half_way_removes_what_it_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if NetLab.unavailable_reason():
        pytest.skip(NetLab.unavailable_reason() or "")

    def broken_sysctl(namespace: str, setting: str) -> None:
        raise netns.NetnsError(f"sysctl refused in {namespace}")

    monkeypatch.setattr(netns, "sysctl", broken_sysctl)
    lab = NetLab()
    with pytest.raises(netns.NetnsError, match="sysctl refused"):
        lab.start()
    assert leftovers(lab) == []
    with pytest.raises(RuntimeError, match="not running"):
        lab.pull_cable()


def test_sweep_removes_namespaces_of_dead_processes_only() -> None:
    if NetLab.unavailable_reason():
        pytest.skip(NetLab.unavailable_reason() or "")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, live = f"cmlabsweep-{dead.pid}-abc-client", f"cmlabsweep-{os.getpid()}-abc-client"
    try:
        for name in (stale, live):
            netns.ip("netns", "add", name)
        (netns.ETC_NETNS_DIR / stale).mkdir(parents=True)
        (netns.ETC_NETNS_DIR / stale / "resolv.conf").write_text("nameserver 10.200.1.1\n")
        assert NetLab.sweep("cmlabsweep") == [stale]
        assert not (netns.NETNS_DIR / stale).exists()
        assert not (netns.ETC_NETNS_DIR / stale).exists()
        assert (netns.NETNS_DIR / live).exists()
    finally:
        for name in (stale, live):
            netns.delete_netns(name)


def test_a_lab_dropped_without_close_is_removed_when_collected() -> None:
    if NetLab.unavailable_reason():
        pytest.skip(NetLab.unavailable_reason() or "")
    import gc

    lab = NetLab().start()
    names = lab.namespaces
    del lab
    gc.collect()
    assert [n for n in names if (netns.NETNS_DIR / n).exists()] == []


def test_a_killed_run_leaves_namespaces_that_sweep_removes() -> None:
    if NetLab.unavailable_reason():
        pytest.skip(NetLab.unavailable_reason() or "")
    crash = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, os, sys\n"
            "from connmgr.testing.netlab import NetLab\n"
            "lab = NetLab(prefix='cmlabcrash').start()\n"
            "print(json.dumps(lab.namespaces), flush=True)\n"
            "os.kill(os.getpid(), 9)\n",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert crash.returncode == -9, crash.stderr
    names = json.loads(crash.stdout)
    client = names[0]
    try:
        assert all((netns.NETNS_DIR / n).exists() for n in names)
        assert (netns.ETC_NETNS_DIR / client / "resolv.conf").exists()
    finally:
        removed = NetLab.sweep("cmlabcrash")
    assert sorted(removed) == sorted(names)
    assert not any((netns.NETNS_DIR / n).exists() for n in names)
    assert not (netns.ETC_NETNS_DIR / client).exists()


def test_the_store_answers_by_name_through_the_labs_dns(lab: NetLab) -> None:
    names = list(NetLab.hosts)
    answer = lab.client_python(
        """
import socket, requests
resolved = {name: socket.gethostbyname(name) for name in args["names"]}
with requests.Session() as s:
    s.trust_env = False
    first = s.get(args["url"], timeout=3)
    second = s.get(args["url"], timeout=3)
return {"resolved": resolved, "status": [first.status_code, second.status_code],
        "resolv": open("/etc/resolv.conf").read()}
""",
        {"names": names, "url": lab.store_url("/echo")},
    )
    assert answer["resolved"] == NetLab.hosts
    assert answer["status"] == [200, 200]
    assert "nameserver 10.200.1.1" in answer["resolv"]
    recorded = lab.store.requests_to("/echo")
    assert len(recorded) == 2 and recorded[0].headers["Host"] == "store.test"
    # From the client's own address, on one keep-alive connection.
    assert recorded[0].client == recorded[1].client and recorded[0].client[0] == "10.200.1.2"
    assert lab.dns_queries >= len(names)
    assert lab.client_python(GET, lab.check_url)["status"] == 204


def test_pull_cable_makes_every_connect_fail_and_plug_cable_brings_it_back(
    lab: NetLab,
) -> None:
    lab.pull_cable()
    assert lab.cable is False
    down = probe(lab)
    assert down == {"name": "lookup failed", "ip": "OSError:101"}  # ENETUNREACH
    lab.plug_cable()
    assert lab.cable is True
    assert probe(lab) == {"name": "connected", "ip": "connected"}


def test_every_veth_end_has_an_interface_index_of_its_own(lab: NetLab) -> None:
    # Same-index pairs would get their carrier changes reported in the kernel's
    # once-a-second batch, not at once.
    pairs = []
    for ns in lab.namespaces:
        for line in netns.ip("-o", "link", netns=ns).splitlines():
            index, name = line.split(":")[:2]
            if "@if" in name:
                pairs.append((int(index), int(name.split("@if")[1])))
    assert len(pairs) == 8 and all(own != peer for own, peer in pairs), pairs
    assert len({own for own, _ in pairs}) == 8


def test_pull_cable_carrier_only_keeps_the_interface_up_without_a_carrier(lab: NetLab) -> None:
    interface = lab.network.interface
    lab.pull_cable(carrier_only=True)
    assert lab.cable is False
    flags = netns.ip("-o", "link", "show", interface, netns=lab.client_ns)
    assert "NO-CARRIER" in flags and ",UP" in flags, flags
    assert probe(lab, timeout=0.5)["ip"] != "connected"
    lab.plug_cable()
    assert probe(lab) == {"name": "connected", "ip": "connected"}


def test_plug_cable_without_the_route_brings_the_link_but_no_way_out(lab: NetLab) -> None:
    lab.pull_cable()
    lab.plug_cable(route=False)
    assert "default" not in netns.ip("route", netns=lab.client_ns)
    assert probe(lab)["ip"] == "OSError:101"  # ENETUNREACH: no route to the internet
    lab.plug_cable()
    assert probe(lab) == {"name": "connected", "ip": "connected"}


def test_blackhole_one_host_drops_only_that_host(lab: NetLab) -> None:
    lab.blackhole("connectivity.test")
    answer = lab.client_python(PROBE, {"ip": NetLab.hosts["connectivity.test"], "timeout": 0.5})
    assert answer == {"name": "connected", "ip": "TimeoutError:None"}  # store.test still works
    lab.unblackhole()
    assert lab.client_python(GET, lab.check_url)["status"] == 204


def test_knob_arguments_are_checked(lab: NetLab) -> None:
    with pytest.raises(TypeError, match="carrier_only"):
        lab.pull_cable(carrier_only="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="route"):
        lab.plug_cable(route=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="host must be one of"):
        lab.blackhole("example.com")
    assert lab.cable is True  # nothing was changed by the refused calls


@pytest.mark.parametrize("mode", ["servfail", "nxdomain"])
def test_break_dns_fails_names_while_an_ip_literal_connects(lab: NetLab, mode: str) -> None:
    lab.break_dns(mode)
    assert probe(lab) == {"name": "lookup failed", "ip": "connected"}
    lab.fix_dns()
    assert probe(lab) == {"name": "connected", "ip": "connected"}


def test_break_dns_timeout_makes_a_lookup_wait_for_the_resolver(lab: NetLab) -> None:
    lab.break_dns("timeout")
    answer = lab.client_python(
        """
import socket, time
started = time.monotonic()
try:
    socket.gethostbyname("store.test")
    return "resolved"
except socket.gaierror:
    return time.monotonic() - started
"""
    )
    assert answer != "resolved" and 0.9 <= answer < 5.0  # dns_timeout=1, one attempt


@pytest.mark.parametrize("redirect", [False, True], ids=["page", "redirect"])
def test_portal_answers_the_connectivity_check(lab: NetLab, redirect: bool) -> None:
    lab.portal(True, redirect=redirect)
    urls = [
        lab.check_url,
        "http://203.0.113.10/generate_204",
        lab.store_url("/ok"),
        f"http://{STORE_IP}/ok",
        "http://portal.test/login",
    ]
    check, by_ip, store, store_by_ip, login = lab.client_python(GET, urls)
    assert login["status"] == 200 and "Sign in" in login["body"]
    if redirect:
        assert check["status"] == by_ip["status"] == store["status"] == 302
        assert check["location"] == "http://portal.test/login"
    else:
        assert check["status"] == by_ip["status"] == store["status"] == 200
        assert "Sign in" in check["body"] and "Sign in" in store["body"]
    assert store_by_ip == {"status": 200, "location": None, "body": "ok"}
    assert lab.portal_hits >= 3
    lab.portal(False)
    assert lab.client_python(GET, lab.check_url)["status"] == 204


def test_blackhole_makes_connects_hang_while_dns_still_answers(lab: NetLab) -> None:
    lab.blackhole()
    assert probe(lab, timeout=0.5) == {"name": "TimeoutError:None", "ip": "TimeoutError:None"}
    assert lab.store.hits() == 0
    lab.unblackhole()
    assert probe(lab) == {"name": "connected", "ip": "connected"}


def test_switch_network_gives_new_addresses_and_strands_old_sockets(lab: NetLab) -> None:
    proc = lab.start_client(
        """
import socket, subprocess
sock = socket.create_connection((args, 80), timeout=2)
sock.sendall(b"GET /ok HTTP/1.1\\r\\nHost: store.test\\r\\n\\r\\n")
first = sock.recv(1000).split(b"\\r\\n")[0].decode()
ready()
wait_parent()  # until the network has changed
sock.settimeout(1.0)
try:
    sock.sendall(b"GET /ok HTTP/1.1\\r\\nHost: store.test\\r\\n\\r\\n")
    second = sock.recv(1000).decode() or "closed"
except OSError as exc:
    second = type(exc).__name__
addrs = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
return {"first": first, "second": second,
        "addrs": sorted(line.split()[3] for line in addrs.splitlines()),
        "resolv": open("/etc/resolv.conf").read(),
        "new": socket.gethostbyname("store.test")}
""",
        STORE_IP,
    )
    proc.wait_ready(10)
    network = lab.switch_network()
    assert network.number == 2 and lab.network is network
    proc.release()
    answer = proc.wait(10)
    assert answer["first"] == "HTTP/1.1 200 OK"
    assert answer["second"] == "TimeoutError"  # the old network's socket gets no answer
    assert answer["addrs"] == ["10.200.2.2/24", "127.0.0.1/8"]
    assert "nameserver 10.200.2.1" in answer["resolv"]  # a running client sees the new DNS
    assert answer["new"] == STORE_IP
    assert lab.client_python(GET, lab.store_url("/echo"))["status"] == 200
    assert lab.store.requests_to("/echo")[0].client[0] == "10.200.2.2"
    assert lab.switch_network().number == 1
    assert probe(lab) == {"name": "connected", "ip": "connected"}


def test_run_in_client_creates_sockets_in_the_client_namespace(lab: NetLab) -> None:
    import socket

    def connect() -> tuple[str, int]:
        with socket.create_connection((STORE_IP, 80), timeout=2) as sock:
            local: tuple[str, int] = sock.getsockname()
            return local

    assert lab.run_in_client(connect)[0] == "10.200.1.2"
    # The calling thread stayed in the host's namespace, where that address is not local.
    with socket.socket() as sock, pytest.raises(OSError):
        sock.bind(("10.200.1.2", 0))
    with pytest.raises(ZeroDivisionError):
        lab.run_in_client(lambda: 1 / 0)


def test_client_snippet_errors_come_back_with_the_childs_traceback(lab: NetLab) -> None:
    with pytest.raises(ClientCodeError, match="KeyError") as info:
        lab.client_python("print('before'); return {}['missing']")
    assert info.value.type_name == "KeyError"
    assert info.value.output == "before\n"


def test_reset_undoes_every_knob(lab: NetLab) -> None:
    lab.switch_network(2)
    lab.blackhole()
    lab.pull_cable(carrier_only=True)
    lab.switch_network(1)
    lab.blackhole("store.test")
    lab.blackhole()
    lab.pull_cable()
    lab.break_dns()
    lab.portal(True)
    lab.reset()
    assert lab.network.number == 1
    assert lab.client_python(GET, lab.check_url)["status"] == 204
    assert probe(lab) == {"name": "connected", "ip": "connected"}
    lab.switch_network(2)
    assert probe(lab) == {"name": "connected", "ip": "connected"}


def test_resolv_conf_is_private_to_the_client(lab: NetLab) -> None:
    host = Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else ""
    assert "10.200.1.1" not in host
    assert (netns.ETC_NETNS_DIR / lab.client_ns / "resolv.conf").read_text().count(
        "nameserver"
    ) == 1
