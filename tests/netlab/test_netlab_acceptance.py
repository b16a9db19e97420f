"""connmgr's public API in a real network: the monitor and the manager run inside NetLab's client.

Each scenario runs in a child process in the client namespace, so probes use the
lab's DNS and routes, exactly as an application on that laptop would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from netlab_helpers import Checker

from connmgr import NetworkStatus
from connmgr.testing.netlab import NetLab

pytestmark = pytest.mark.netlab

CHECK_IP = NetLab.hosts["connectivity.test"]
Check = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def checker(module_lab: NetLab) -> Iterator[Checker]:
    started = Checker(module_lab)
    yield started
    started.close()


@pytest.fixture
def check(lab: NetLab, checker: Checker) -> Callable[..., dict[str, Any]]:
    """``check(*probes, timeout=1.0)``: one fresh monitor's verdict, inside the client."""

    def run(*probes: list[Any], timeout: float = 1.0) -> dict[str, Any]:
        return checker.check(list(probes), timeout)

    return run


def http(lab: NetLab) -> list[Any]:
    return ["http", lab.check_url]


TCP = ["tcp", CHECK_IP, 80]


def test_a_working_network_is_online(lab: NetLab, check: Check) -> None:
    answer = check(http(lab), TCP, ["dns", "store.test"])
    assert answer["status"] == NetworkStatus.ONLINE.value, answer["results"]


def test_a_pulled_cable_is_offline(lab: NetLab, check: Check) -> None:
    lab.pull_cable()
    answer = check(http(lab), TCP)
    assert answer["status"] == NetworkStatus.OFFLINE.value, answer["results"]
    assert any("unreachable" in line for line in answer["results"]), answer["results"]


def test_a_blackholed_uplink_is_offline_within_the_probe_timeout(lab: NetLab, check: Check) -> None:
    lab.blackhole()
    answer = check(http(lab), TCP, timeout=0.5)
    assert answer["status"] == NetworkStatus.OFFLINE.value, answer["results"]
    assert lab.store.hits() == 0


@pytest.mark.parametrize("redirect", [False, True], ids=["page", "redirect"])
def test_a_captive_portal_is_captive_portal(lab: NetLab, check: Check, redirect: bool) -> None:
    lab.portal(True, redirect=redirect)
    # The TCP probe connects (portals let TCP through); the HTTP check sees the portal.
    answer = check(http(lab), TCP)
    assert answer["status"] == NetworkStatus.CAPTIVE_PORTAL.value, answer["results"]
    assert lab.portal_hits >= 1


@pytest.mark.parametrize("failure", ["dns broken", "http port refused", "http blackholed"])
def test_tcp_working_while_every_http_check_fails_is_limited(
    lab: NetLab, check: Check, failure: str
) -> None:
    if failure == "dns broken":
        lab.break_dns()
        probe = http(lab)
    elif failure == "http port refused":
        probe = ["http", f"http://{CHECK_IP}:81/generate_204"]  # nothing listens on 81
    else:
        lab.blackhole("connectivity.test")
        probe = http(lab)
    # The TCP probe goes to the store's address, which answers in every case.
    answer = check(probe, ["tcp", NetLab.hosts["store.test"], 80], timeout=0.5)
    assert answer["status"] == NetworkStatus.LIMITED.value, answer["results"]
    if failure == "dns broken":
        assert answer["reason"] == "name lookup (DNS) failing", answer
    else:
        assert "every HTTP check failed" in answer["reason"], answer


def test_only_tcp_and_dns_probes_that_succeed_are_online(lab: NetLab, check: Check) -> None:
    # Without an HTTP probe nothing can validate more than a connect: ONLINE, as documented.
    answer = check(TCP, ["dns", "store.test"])
    assert answer["status"] == NetworkStatus.ONLINE.value, answer["results"]


def test_the_monitor_follows_the_client_to_a_second_network(lab: NetLab) -> None:
    proc = lab.start_client(
        """
from connmgr import HttpProbe, NetworkMonitor
monitor = NetworkMonitor([HttpProbe(args)], timeout=1.0)
before = monitor.check().value
ready()
wait_parent()
return [before, monitor.check().value]
""",
        lab.check_url,
    )
    proc.wait_ready(15)
    lab.switch_network()
    assert proc.wait(15) == ["online", "online"]
    # Both checks reached the same check server, from the two networks' addresses.
    assert lab.network.client_address == "10.200.2.2"


def test_the_manager_fails_fast_and_sends_nothing_once_the_cable_is_out(lab: NetLab) -> None:
    proc = lab.start_client(
        """
import time
import connmgr
monitor = connmgr.NetworkMonitor([connmgr.HttpProbe(args["check"])], timeout=1.0)
with connmgr.ConnectionManager(monitor=monitor) as manager:
    # No keep-alive: a pooled socket would outlive the cable (that is the epochs' work).
    first = manager.get(args["url"], headers={"Connection": "close"}).status_code
    ready()
    wait_parent()
    outcomes = []
    for _ in range(2):
        started = time.monotonic()
        try:
            manager.get(args["url"])
            outcomes.append("sent")
        except connmgr.NetworkError as exc:
            outcomes.append([type(exc).__name__, exc.request_sent, time.monotonic() - started])
    return {"first": first, "then": outcomes, "status": monitor.status.value}
""",
        {"check": lab.check_url, "url": lab.store_url("/ok")},
    )
    proc.wait_ready(15)
    assert lab.store.hits("/ok") == 1
    lab.pull_cable()
    answer = proc.wait(15)
    assert answer["first"] == 200
    assert answer["status"] == "offline"
    # The first fails to connect and re-probes; the second is refused before sending,
    # from what the monitor already knows.
    (first_error, first_sent, first_took), (second_error, second_sent, second_took) = answer["then"]
    assert [first_error, first_sent, second_error, second_sent] == [
        "OfflineError",
        False,
        "OfflineError",
        False,
    ], answer
    assert first_took < 5.0 and second_took < 0.5, answer
    assert lab.store.hits("/ok") == 1


def test_a_running_monitor_sees_the_cable_go(netlab: NetLab) -> None:
    # The example of docs/testing.md, on the plugin's own `netlab` fixture.
    proc = netlab.start_client(
        """
from connmgr import HttpProbe, NetworkMonitor
monitor = NetworkMonitor([HttpProbe(args)], timeout=1.0)
before = monitor.check().value
ready()
wait_parent()
return [before, monitor.check().value]
""",
        netlab.check_url,
    )
    proc.wait_ready(10)
    netlab.pull_cable()
    proc.release()
    assert proc.wait(10) == ["online", "offline"]
