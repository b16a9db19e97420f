"""What a running monitor and manager conclude in a real network, knob by knob.

Each test runs one :class:`~netlab_helpers.LabSession`: a monitor started with
``start()`` (interval 30 s, so polling explains nothing seen within seconds) and
a ConnectionManager on it, in a child process inside NetLab's client namespace.
The monitor probes ``http://connectivity.test/generate_204`` and a TCP connect
to the store's IP address.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from netlab_helpers import LabSession

from connmgr.testing.netlab import NetLab

pytestmark = pytest.mark.netlab

DNS_FAILING = "name lookup (DNS) failing"


@pytest.fixture
def session(lab: NetLab) -> Iterator[LabSession]:
    opened = LabSession(lab)
    yield opened
    opened.close()


def test_every_network_status_is_seen_by_a_running_monitor(
    lab: NetLab, session: LabSession
) -> None:
    assert session.started["online"] is True, session.log
    assert session.started["source"] == "netlink"
    # The first verdict may be announced just after wait_until_online() returned.
    session.status_after(0, "online")
    assert session.statuses() == ["online"], session.log

    # Pull the cable: the OS says no link is up, which is proof of offline.
    mark = session.mark()
    lab.pull_cable()
    offline = session.status_after(mark, "offline")
    assert offline["online"] is False
    mark = session.mark()
    lab.plug_cable()
    session.status_after(mark, "online")

    # Names fail while the store's IP address connects: LIMITED, and it says why.
    lab.break_dns()
    reply = session.do("check")
    assert (reply["status"], reply["reason"]) == ("limited", DNS_FAILING), reply
    limited = session.until(lambda m: m["kind"] == "status" and m["status"] == "limited", 1)
    assert limited["reason"] == DNS_FAILING and limited["online"] is False
    lab.fix_dns()
    assert session.do("check")["status"] == "online"

    # A middlebox swallows the connectivity check while TCP to the store works: LIMITED.
    lab.blackhole("connectivity.test")
    reply = session.do("check")
    assert reply["status"] == "limited", reply
    assert "every HTTP check failed" in reply["reason"], reply
    lab.unblackhole()
    assert session.do("check")["status"] == "online"

    # A captive portal: one word everywhere, and nothing is sent.
    lab.portal(True)
    assert session.do("check")["status"] == "captive_portal"
    hits = lab.store.hits()
    got = session.do("get", url=lab.store_url("/ok"))
    assert got["error"] == "CaptivePortalError", got
    assert "sign in" in got["user_message"].lower(), got
    assert got["sent"] is False and got["took"] < 0.5, got
    assert got["label"] == got["worst_label"] == "Sign in to the network", got
    assert lab.store.hits() == hits

    lab.portal(False)
    assert session.do("check")["status"] == "online"
    got = session.do("get", url=lab.store_url("/ok"))
    assert got["code"] == 200 and got["label"] == "Online", got

    # Every change was announced once, in order, each in a new epoch.
    assert session.statuses() == [
        "online",
        "offline",
        "online",
        "limited",
        "online",
        "limited",
        "online",
        "captive_portal",
        "online",
    ]
    epochs = [m["epoch"] for m in session.log if m["kind"] == "status"]
    assert epochs == sorted(set(epochs)), epochs


def _pull_interface(lab: NetLab) -> None:
    lab.pull_cable()


def _lose_carrier(lab: NetLab) -> None:
    lab.pull_cable(carrier_only=True)


@pytest.mark.parametrize(
    "pull", [_pull_interface, _lose_carrier], ids=["interface down", "carrier lost"]
)
def test_a_pulled_link_is_noticed_within_200_ms_and_its_return_within_1_s(
    lab: NetLab, session: LabSession, pull: Callable[[NetLab], None]
) -> None:
    assert session.started["source"] == "netlink", session.started
    took: list[tuple[float, float]] = []
    for _ in range(2):
        mark = session.mark()
        pulled_at = time.monotonic()  # before the `ip` command: its own start-up counts too
        pull(lab)
        offline = session.status_after(mark, "offline", 5.0)
        mark = session.mark()
        plugged_at = time.monotonic()
        lab.plug_cable()
        online = session.status_after(mark, "online", 5.0)
        took.append((offline["at"] - pulled_at, online["at"] - plugged_at))
        # Noticed from the OS's word, not from a probe that happened to run.
        assert offline["reason"].startswith("no network link is up"), offline
    shown = ", ".join(f"{off * 1000:.0f}/{on * 1000:.0f} ms" for off, on in took)
    print(f"offline/online noticed after {shown}")  # shown with pytest -rP
    assert max(off for off, _ in took) <= 0.2, f"offline/online after {shown}"
    assert max(on for _, on in took) <= 1.0, f"offline/online after {shown}"
