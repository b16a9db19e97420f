"""NetLab's parts that need no namespace: the DNS responder, the portal servers, the
snippet runner and the argument checks. These run everywhere, root or not."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from connmgr.testing.labclient import ClientCodeError, ClientProcess
from connmgr.testing.netlab import NetLab
from connmgr.testing.portal import PortalSwitch, start_lab_http

dnslib = pytest.importorskip("dnslib", reason="the lab's DNS needs dnslib (dev extra)")
from connmgr.testing.dns import LabDns  # noqa: E402


@pytest.fixture
def dns() -> Iterator[LabDns]:
    server = LabDns({"Store.Test.": "203.0.113.30"})
    yield server
    server.close()


def ask(server: LabDns, name: str, qtype: str = "A") -> tuple[str, list[str]]:
    reply = server.answer(dnslib.DNSRecord.question(name, qtype).pack())
    assert reply is not None
    record = dnslib.DNSRecord.parse(reply)
    return dnslib.RCODE[record.header.rcode], [str(rr.rdata) for rr in record.rr]


def test_dns_answers_known_names_case_insensitively(dns: LabDns) -> None:
    assert ask(dns, "store.test") == ("NOERROR", ["203.0.113.30"])
    assert ask(dns, "STORE.test.") == ("NOERROR", ["203.0.113.30"])
    # AAAA: no data, but the name exists (so a dual-stack lookup keeps the A record).
    assert ask(dns, "store.test", "AAAA") == ("NOERROR", [])
    assert ask(dns, "other.test") == ("NXDOMAIN", [])


def test_dns_modes_and_hijack(dns: LabDns) -> None:
    dns.set_mode("servfail")
    assert ask(dns, "store.test") == ("SERVFAIL", [])
    dns.set_mode("nxdomain")
    assert ask(dns, "store.test") == ("NXDOMAIN", [])
    dns.set_mode("timeout")
    assert dns.answer(dnslib.DNSRecord.question("store.test").pack()) is None
    dns.set_mode("ok")
    dns.hijack("203.0.113.20")
    assert ask(dns, "anything.example") == ("NOERROR", ["203.0.113.20"])
    dns.hijack(None)
    assert ask(dns, "anything.example") == ("NXDOMAIN", [])
    with pytest.raises(ValueError, match="mode must be one of"):
        dns.set_mode("flaky")
    with pytest.raises(ValueError):
        dns.hijack("not an address")
    with pytest.raises(ValueError):
        LabDns({"bad.test": "999.1.1.1"})


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"\x12\x34\x01", b"\xff" * 600])
def test_dns_ignores_garbage(dns: LabDns, garbage: bytes) -> None:
    assert dns.answer(garbage) is None


def test_dns_serves_udp_and_survives_garbage(dns: LabDns) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    dns.serve(sock)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(2)
        client.sendto(b"garbage", ("127.0.0.1", port))
        client.sendto(dnslib.DNSRecord.question("store.test").pack(), ("127.0.0.1", port))
        reply = dnslib.DNSRecord.parse(client.recv(4096))
    assert [str(rr.rdata) for rr in reply.rr] == ["203.0.113.30"]
    assert dns.queries == 2
    dns.close()
    dns.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        dns.serve(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))


@pytest.fixture
def portal_servers() -> Iterator[tuple[str, str, PortalSwitch]]:
    switch = PortalSwitch()
    check = start_lab_http("127.0.0.1", 0, "check", switch)
    portal = start_lab_http("127.0.0.1", 0, "portal", switch)
    yield (
        f"http://127.0.0.1:{check.server_address[1]}",
        f"http://127.0.0.1:{portal.server_address[1]}",
        switch,
    )
    for server in (check, portal):
        server.shutdown()
        server.server_close()


def test_check_server_answers_204_until_the_portal_is_on(
    portal_servers: tuple[str, str, PortalSwitch],
) -> None:
    check, portal, switch = portal_servers
    with requests.Session() as session:
        session.trust_env = False
        get = lambda url: session.get(url, timeout=3, allow_redirects=False)  # noqa: E731
        assert get(check + "/generate_204").status_code == 204
        apple = get(check + "/hotspot-detect.html")
        assert apple.status_code == 200 and "Success" in apple.text
        assert get(check + "/elsewhere").status_code == 404
        assert get(portal + "/anything").status_code == 200  # the portal always is one
        switch.set(True, redirect=False)
        page = get(check + "/generate_204")
        assert page.status_code == 200 and "Sign in" in page.text
        switch.set(True, redirect=True)
        moved = get(check + "/generate_204?x=1")
        assert moved.status_code == 302 and moved.headers["Location"].endswith("/login")
        assert get(portal + "/login").status_code == 200  # the login page itself
        assert session.post(portal + "/login", data=b"x" * 5000, timeout=3).status_code == 200
        switch.set(False, redirect=False)
        assert get(check + "/generate_204").status_code == 204
    assert switch.hits == 5


def test_start_lab_http_refuses_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="role"):
        start_lab_http("127.0.0.1", 0, "proxy", PortalSwitch())


def run(code: str, args: object = None, timeout: float = 20.0) -> object:
    return ClientProcess([], code, args).wait(timeout)


def test_client_process_returns_json_and_passes_args() -> None:
    assert run("return {'sum': sum(args), 'x': None}", [1, 2, 3]) == {"sum": 6, "x": None}
    assert run("pass") is None


def test_client_process_reports_errors_output_and_deaths() -> None:
    proc = ClientProcess([], "print('a', end='')\nraise ValueError('bad value')")
    with pytest.raises(ClientCodeError, match="ValueError: bad value") as info:
        proc.wait(20)
    assert info.value.type_name == "ValueError" and info.value.output == "a"
    with pytest.raises(ClientCodeError, match="TypeError"):
        run("return object()")  # not JSON
    with pytest.raises(ClientCodeError, match="exited with 3"):
        run("import os; os._exit(3)")
    with pytest.raises(ClientCodeError, match="SyntaxError"):
        run("return (")
    with pytest.raises(TypeError, match="code must be a string"):
        ClientProcess([], b"return 1")  # type: ignore[arg-type]


def test_client_process_ready_release_and_kill() -> None:
    proc = ClientProcess([], "ready()\nwait_parent()\nreturn 'released'")
    proc.wait_ready(20)
    proc.release()
    assert proc.wait(20) == "released"
    stuck = ClientProcess([], "import time\ntime.sleep(60)")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="killed"):
        stuck.wait(0.5)
    assert time.monotonic() - started < 10
    with pytest.raises(TimeoutError, match="sent nothing"):
        ClientProcess([], "import time\ntime.sleep(60)").wait_ready(0.3)


def test_client_process_takes_turns_with_send_receive_and_release() -> None:
    proc = ClientProcess(
        [],
        """
total = 0
while True:
    value = wait_parent()
    if value is None:
        return total
    total += value
    send({"total": total})
""",
    )
    for value, expected in ((2, 2), (3, 5)):
        proc.release(value)
        assert proc.receive(10) == {"total": expected}
    assert proc.wait(10) == 5  # wait() closes stdin: wait_parent() returns None
    with pytest.raises(ClientCodeError, match="returned without sending"):
        proc.receive(1)
    failing = ClientProcess([], "raise OSError('no route')")
    with pytest.raises(ClientCodeError, match="OSError: no route"):
        failing.receive(10)
    failing.release(1)  # to a snippet that has ended: harmless


def test_client_process_receive_without_kill_keeps_the_child_for_later() -> None:
    proc = ClientProcess([], "value = wait_parent()\nsend(value)\nreturn 'done'")
    with pytest.raises(TimeoutError, match="sent nothing") as info:
        proc.receive(0.2, kill=False)
    assert "killed" not in str(info.value)
    proc.release(7)  # still running: it answers now
    assert proc.receive(20) == 7
    assert proc.wait(20) == "done"


def test_client_process_drops_the_hosts_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("https_proxy", "http://10.9.9.9:3128")
    code = "import os; return sorted(k for k in os.environ if 'proxy' in k.lower())"
    assert run(code) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"prefix": "has-dash"}, ValueError, "prefix"),
        ({"prefix": ""}, ValueError, "prefix"),
        ({"dns_timeout": 0}, ValueError, "dns_timeout"),
        ({"dns_timeout": 31}, ValueError, "dns_timeout"),
        ({"dns_timeout": 1.5}, TypeError, "dns_timeout"),
        ({"dns_timeout": True}, TypeError, "dns_timeout"),
    ],
)
def test_netlab_checks_its_arguments(kwargs: dict[str, object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        NetLab(**kwargs)  # type: ignore[arg-type]


def test_netlab_knobs_need_a_started_lab() -> None:
    lab = NetLab()
    for knob in (lab.pull_cable, lab.plug_cable, lab.blackhole, lab.break_dns, lab.reset):
        with pytest.raises(RuntimeError, match="not running"):
            knob()
    with pytest.raises(RuntimeError, match="not running"):
        lab.client_python("return 1")
    with pytest.raises(RuntimeError, match="not started"):
        _ = lab.store
    assert lab.namespaces[0].startswith(f"cmlab-{os.getpid()}-")
    lab.close()  # closing a lab never started is fine


def test_netlab_knob_values_are_checked_before_anything_changes() -> None:
    lab = NetLab()
    with pytest.raises(ValueError, match="mode"):
        lab.break_dns("sometimes")
    with pytest.raises(TypeError, match="on must be a bool"):
        lab.portal("yes")  # type: ignore[arg-type]


def test_unavailable_reason_is_a_sentence_or_none() -> None:
    reason = NetLab.unavailable_reason()
    if os.geteuid() == 0 and os.path.exists("/usr/sbin/ip"):
        assert reason is None
    else:
        assert isinstance(reason, str) and reason.startswith("NetLab needs")


def test_unavailable_reason_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from connmgr.testing import netns

    monkeypatch.setattr(netns.sys, "platform", "darwin")
    assert "Linux" in (NetLab.unavailable_reason() or "")
    monkeypatch.setattr(netns.sys, "platform", "linux")
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert "root" in (NetLab.unavailable_reason() or "")
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    assert "iproute2" in (NetLab.unavailable_reason() or "")
    with pytest.raises(RuntimeError, match="iproute2"):
        NetLab().start()  # start() says the same, and builds nothing
