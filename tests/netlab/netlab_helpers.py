"""A long-lived connmgr session inside NetLab's client, driven command by command from the test.

One child process runs a :class:`~connmgr.NetworkMonitor` started with
``start()`` (its watcher and netlink OS events) and a
:class:`~connmgr.ConnectionManager` on it, just as an application on that
laptop would. Everything it sees comes back as messages, each time-stamped
with ``time.monotonic()`` in the child (the same clock as the test's: a
network namespace does not have a clock of its own):

* ``{"kind": "status", "status", "online", "reason", "epoch", "at"}`` for every
  ``network_changed``;
* ``{"kind": "epoch", "epoch", "cause", "reason", "status", "at"}`` for every
  ``network_epoch_changed``;
* ``{"kind": "reply", "reply": COMMAND, ...}`` answering a command.

The test turns a knob, then waits for what it expects with :meth:`LabSession.until`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connmgr.testing.netlab import ClientCodeError, ClientProcess, NetLab

__all__ = ["Checker", "LabSession", "Message"]

Message = dict[str, Any]

# args: {"check": url, "tcp": [ip, port], "timeout": s, "timeouts": {...}, "join": s}
SESSION = """
import threading, time
import connmgr
from connmgr import signals

lock = threading.Lock()

def emit(**value):
    value["at"] = time.monotonic()
    with lock:  # send() from the watcher, netlink and request threads: one line each
        send(value)

probes = [connmgr.HttpProbe(args["check"]), connmgr.TcpProbe(*args["tcp"])]
# interval=30 and offline_interval=30: polling cannot explain anything seen within seconds.
monitor = connmgr.NetworkMonitor(
    probes, interval=30.0, offline_interval=30.0, timeout=args["timeout"]
)

def on_status(sender, **kw):
    emit(kind="status", status=kw["status"].value, online=kw["online"],
         reason=kw["reason"], epoch=kw["epoch"])

def on_epoch(sender, **kw):
    emit(kind="epoch", epoch=kw["epoch"], cause=kw["cause"].value, reason=kw["reason"],
         status=kw["status"].value)

signals.network_changed.connect(on_status, sender=monitor)
signals.network_epoch_changed.connect(on_epoch, sender=monitor)
manager = connmgr.ConnectionManager(monitor=monitor, timeouts={"default": args["timeouts"]})
monitor.start()
emit(kind="started", online=monitor.wait_until_online(10), source=monitor.os_events_source)

def get(url):
    started = time.monotonic()
    try:
        out = {"code": manager.get(url).status_code}
    except connmgr.NetworkError as exc:
        out = {"error": type(exc).__name__, "user_message": exc.user_message,
               "sent": exc.request_sent, "message": str(exc)}
    out["took"] = time.monotonic() - started
    snap = manager.snapshot(url)
    out.update(label=snap.label, epoch=snap.epoch, worst_label=manager.snapshot().label)
    return out

background = []
while True:
    command = wait_parent()
    if command is None:
        break
    what = command["do"]
    if what == "check":
        status = monitor.check()
        emit(kind="reply", reply=what, status=status.value, reason=monitor.reason,
             epoch=monitor.epoch)
    elif what == "get":
        if command.get("after_new_epoch"):
            # The test saw the epoch event, but the manager's own receiver of it (which
            # drops the pools) may not have run yet: wait for the pools to be gone.
            until = time.monotonic() + 2.0
            while any(len(a.poolmanager.pools) for a in manager.session.adapters.values()):
                if time.monotonic() > until:
                    raise AssertionError("the manager kept its pools after a new epoch")
                time.sleep(0.001)
        emit(kind="reply", reply=what, **get(command["url"]))
    elif what == "get_in_background":
        def run(url=command["url"]):
            emit(kind="reply", reply="background", **get(url))
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        background.append(thread)
        emit(kind="reply", reply=what)
    else:
        raise ValueError(f"unknown command {what!r}")
for thread in background:
    thread.join(args["join"])
manager.close()
monitor.stop()
return None
"""


class LabSession:
    """The test's side of :data:`SESSION`: start it, send commands, wait for messages.

    Args:
        lab: the running lab.
        timeout: each probe's timeout in the child (seconds).
        timeouts: the manager's default timeout profile (``connect``, ``read``, ``total``).
    """

    def __init__(
        self, lab: NetLab, *, timeout: float = 0.5, timeouts: dict[str, float] | None = None
    ) -> None:
        self.log: list[Message] = []
        chosen = timeouts or {"connect": 2.0, "read": 5.0, "total": 10.0}
        self.proc: ClientProcess = lab.start_client(
            SESSION,
            {
                "check": lab.check_url,
                "tcp": [NetLab.hosts["store.test"], 80],
                "timeout": timeout,
                "timeouts": chosen,
                "join": chosen["total"] or 10.0,
            },
        )
        self.started = self.until(lambda m: m["kind"] == "started", 15.0)

    def mark(self) -> int:
        """A position in the log: :meth:`until` with ``since=`` looks only at what came later."""
        return len(self.log)

    def until(
        self, matches: Callable[[Message], bool], timeout: float, *, since: int = 0
    ) -> Message:
        """The first message from ``since`` on that ``matches``; waits up to ``timeout`` s."""
        for message in self.log[since:]:
            if matches(message):
                return message
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching message within {timeout} s; log: {self.log}")
            try:
                message: Message = self.proc.receive(left, kill=False)
            except TimeoutError:
                raise AssertionError(
                    f"no matching message within {timeout} s; log: {self.log}"
                ) from None
            self.log.append(message)
            if matches(message):
                return message

    def status_after(self, since: int, status: str, timeout: float = 5.0) -> Message:
        """The first ``network_changed`` to ``status`` after position ``since``."""
        return self.until(
            lambda m: m["kind"] == "status" and m["status"] == status, timeout, since=since
        )

    def do(self, command: str, timeout: float = 15.0, **fields: Any) -> Message:
        """Send a command (``check``, ``get``, ``get_in_background``); its reply.

        ``get`` takes ``url`` and, optionally, ``after_new_epoch=True``: wait (up to
        2 s) until the manager has dropped its pooled connections before sending.
        """
        since = self.mark()
        self.proc.release({"do": command, **fields})
        return self.until(
            lambda m: m["kind"] == "reply" and m["reply"] == command, timeout, since=since
        )

    def statuses(self, since: int = 0) -> list[str]:
        """Every status ``network_changed`` announced from position ``since`` on, in order."""
        return [m["status"] for m in self.log[since:] if m["kind"] == "status"]

    def online_again(self, timeout: float = 5.0) -> Message:
        """Probe until the monitor says online (not waiting on its own schedule); the reply.

        For tests about what comes after the return, not about how fast it is noticed.
        """
        deadline = time.monotonic() + timeout
        while True:
            reply = self.do("check")
            if reply["status"] == "online" or time.monotonic() > deadline:
                assert reply["status"] == "online", (reply, self.log[-10:])
                return reply

    def settle(self) -> None:
        """Back to a known start after another test: the monitor probes now and says online."""
        reply = self.do("check")
        assert reply["status"] == "online", (reply, self.log[-10:])

    def close(self, timeout: float = 15.0) -> None:
        """End the session (its background requests joined) and check it ended cleanly."""
        self.proc.release(None)
        self.proc.wait(timeout)
        # Messages sent after the last wait (a late event) are kept for the asserts.
        while True:
            try:
                message = self.proc.receive(0.01, kill=False)
            except (TimeoutError, ClientCodeError):
                return
            self.log.append(message)


# One monitor per command, checked once: {"probes": [["http", url] | ["tcp", host, port] |
# ["dns", name]], "timeout": s} -> {"status", "reason", "results"}.
CHECKER = """
from connmgr import DnsProbe, HttpProbe, NetworkMonitor, TcpProbe
kinds = {"http": HttpProbe, "tcp": TcpProbe, "dns": DnsProbe}
while True:
    command = wait_parent()
    if command is None:
        return None
    probes = [kinds[kind](*rest) for kind, *rest in command["probes"]]
    monitor = NetworkMonitor(probes, timeout=command["timeout"])
    status = monitor.check()
    send({"status": status.value, "reason": monitor.reason,
          "results": [str(r) for r in monitor.last_results]})
"""


class Checker:
    """A child in the client namespace that builds a fresh monitor per call and checks once.

    One process for many checks: starting Python and importing connmgr in a
    child costs far more than a check.
    """

    def __init__(self, lab: NetLab) -> None:
        self.proc: ClientProcess = lab.start_client(CHECKER)

    def check(self, probes: list[list[Any]], timeout: float) -> Message:
        """The status, reason and probe results of one ``check()`` with these probes."""
        self.proc.release({"probes": probes, "timeout": timeout})
        answer: Message = self.proc.receive(20.0)
        return answer

    def close(self) -> None:
        """End the child."""
        self.proc.release(None)
        self.proc.wait(10.0)
