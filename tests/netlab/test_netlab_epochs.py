"""Network epochs in a real network: no socket of the old network carries a request on the new one.

The store (a FaultServer) records each request's client address, one per TCP
connection, so "a new connection" is counted at the server, not inferred from
the client's word.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from netlab_helpers import LabSession

from connmgr.testing.netlab import NetLab

pytestmark = pytest.mark.netlab


@pytest.fixture(scope="module")
def module_session(module_lab: NetLab) -> Iterator[LabSession]:
    opened = LabSession(module_lab)
    yield opened
    opened.close()


@pytest.fixture
def session(lab: NetLab, module_session: LabSession) -> LabSession:
    """The module's session (one child for all its tests), online on the reset lab."""
    module_session.settle()
    return module_session


def connections(lab: NetLab, tag: str) -> list[tuple[str, int]]:
    """The client address of each request to ``/ok?tag=TAG``, oldest first.

    Tags, not positions in the log: a request given up on a stranded socket can
    still arrive later (the kernel retransmits it), even in another test.
    """
    recorded = lab.store.requests_to("/ok")
    return [tuple(r.client) for r in recorded if r.params.get("tag") == tag]  # type: ignore[misc]


def get(lab: NetLab, session: LabSession, tag: str, **fields: Any) -> dict[str, Any]:
    """A GET of ``/ok?tag=TAG`` through the session's manager; its reply."""
    return session.do("get", url=lab.store_url(f"/ok?tag={tag}"), **fields)


def two_requests_on_one_connection(lab: NetLab, session: LabSession) -> tuple[str, int]:
    # A late OS hint from the test before (an IPv6 address appearing about a second
    # after a link came up) starts an epoch that rightly drops the pool: then the
    # pair is taken again, within one epoch.
    for round_ in range(5):
        epoch = session.do("check")["epoch"]
        tags = (f"before-{round_}-1", f"before-{round_}-2")
        for tag in tags:
            reply = get(lab, session, tag)
            assert reply.get("code") == 200, reply
        if session.do("check")["epoch"] != epoch:
            continue
        (first,), (second,) = connections(lab, tags[0]), connections(lab, tags[1])
        # Keep-alive works, so a reused socket after the change would show as this address.
        assert first == second
        return first
    raise AssertionError("the network never held still for two requests")


@pytest.mark.parametrize(
    "pull",
    [lambda lab: lab.pull_cable(), lambda lab: lab.pull_cable(carrier_only=True)],
    ids=["interface down", "carrier lost"],
)
def test_after_offline_and_online_the_next_request_opens_a_new_connection(
    lab: NetLab, session: LabSession, pull: Callable[[NetLab], None]
) -> None:
    old = two_requests_on_one_connection(lab, session)
    epoch = session.do("check")["epoch"]
    mark = session.mark()
    pull(lab)
    session.status_after(mark, "offline")
    lab.plug_cable()
    # After a lost carrier the return can take the kernel a second (an ARP retry):
    # not what this test is about, so it probes until online.
    session.online_again()
    got = get(lab, session, "after")
    assert got.get("code") == 200 and got["epoch"] > epoch, (got, session.log[mark:])
    # The old TCP connection survived the short pull (same address, no reset),
    # so only the epoch keeps it from being reused.
    # One arrival, or two when a later OS hint (IPv6's address, about 1 s after the
    # link came up) ended the attempt in flight and it went again: never the old one.
    after = connections(lab, "after")
    assert after and old not in after, (old, after)


def test_after_switching_networks_the_next_request_opens_a_new_connection(
    lab: NetLab, session: LabSession
) -> None:
    old = two_requests_on_one_connection(lab, session)
    epoch = session.do("check")["epoch"]
    mark = session.mark()
    lab.switch_network()
    session.until(lambda m: m["kind"] == "epoch" and m["cause"] == "os_event", 5.0, since=mark)
    # The first report may have seen no link up yet (offline): wait for the way back.
    session.online_again()
    # Sent once the manager has handled the epoch: a request racing its handler can
    # still take the old socket (and then waits for its read timeout, as in-flight ones do).
    got = get(lab, session, "after", after_new_epoch=True)
    # A stale socket would hang until the 5 s read timeout: this one went at once.
    assert got.get("code") == 200 and got["took"] < 1.5 and got["epoch"] > epoch, got
    after = connections(lab, "after")
    assert after and old not in after, (old, after)
    assert {a[0] for a in after} == {lab.network.client_address} == {"10.200.2.2"}, after


RESENT_AFTER_THE_RETRY_DELAY = (
    "the attempt on the old network is ended at the new epoch, but its resend waits the "
    "first retry delay (RetryConfig's default 0.5 s plus up to 0.25 s jitter) instead of "
    "going again at once"
)


def test_a_get_in_flight_when_the_network_switches_fails_over_at_once(lab: NetLab) -> None:
    session = LabSession(lab, timeouts={"connect": 2.0, "read": 3.0, "total": 8.0})
    try:
        # The store holds the request 0.3 s before answering: the answer is on its
        # way to the old network's address when the client moves.
        session.do("get_in_background", url=lab.store_url("/ok?delay=0.3&tag=in-flight"))
        deadline = time.monotonic() + 5.0
        while lab.store.hits("/ok") == 0:
            assert time.monotonic() < deadline, "the request never reached the store"
            time.sleep(0.005)
        switched_at = time.monotonic()
        lab.switch_network()
        reply = session.until(lambda m: m.get("reply") == "background", 12.0)
    finally:
        session.close()
    ended = reply["at"] - switched_at
    sent = [r.at for r in lab.store.requests_to("/ok") if r.params.get("tag") == "in-flight"]
    resent = sent[-1] - switched_at if len(sent) > 1 else float("nan")
    # Shown with pytest -rP; the xfail reason below carries the same numbers.
    print(f"in-flight GET resent {resent:.2f} s and ended {ended:.2f} s after the switch: {reply}")
    # The GET ends in a 200 resent from the new network...
    assert reply.get("code") == 200, reply
    first, *rest = connections(lab, "in-flight")
    assert first[0] == "10.200.1.2" and rest and rest[-1][0] == "10.200.2.2", (first, rest)
    # ...without waiting out its 3 s read timeout on the stranded socket (that alone
    # would end it 3.3 s or more after the switch).
    assert ended < 2.0, f"resent {resent:.2f} s and ended {ended:.2f} s after the switch"
    if resent >= 0.3:
        pytest.xfail(f"{RESENT_AFTER_THE_RETRY_DELAY}: resent {resent:.2f} s after the switch")
