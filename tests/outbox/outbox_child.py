"""A child process for the crash tests: queue entries, then die by SIGKILL at a chosen point.

Usage: ``python outbox_child.py MODE PATH BASE_URL PROBE_PORT COUNT``

Modes:

- ``after-submit``: submit COUNT entries, kill itself right after the last commit;
- ``thread-refused``: start the background thread, submit, wait until the head has
  been tried (the server is down: refused), then kill itself;
- ``in-flight``: submit, drain; the parent kills it while a request is in flight;
- ``before-send``: submit, drain, kill itself after the entry is marked sending,
  before the request leaves;
- ``after-answer``: submit, drain, kill itself after the server answered 2xx,
  before the outbox deletes the delivered row;
- ``submit-forever``: submit one entry after another, printing each id once
  ``submit()`` returned, until the parent kills it;
- ``deliver``: open the file (``BASE_URL`` as ``base_url=``), ``drain(timeout=15)``,
  print ``{"drained": bool, "pending": int, "failed": int}``.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.outbox import Outbox
from connmgr.outbox.store import Store
from connmgr.retry import RetryConfig


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    mode, path, base_url, probe_port, count = sys.argv[1:6]
    monitor = NetworkMonitor([TcpProbe("127.0.0.1", int(probe_port))], timeout=1.0)
    manager = ConnectionManager(
        None if mode == "deliver" else base_url,
        monitor=monitor,
        retry=RetryConfig(max_retries=0),
        watch_network=False,
    )
    if mode == "deliver":
        box = Outbox(path, manager, base_url=base_url)
        drained = box.drain(timeout=15)
        print(json.dumps({"drained": drained, "pending": len(box.pending()),
                          "failed": len(box.failed())}), flush=True)  # fmt: skip
        box.close()
        return
    box = Outbox(path, manager)
    if mode == "submit-forever":
        number = 0
        while True:  # the parent kills this process at a moment of its choosing
            entry_id = box.submit("POST", "/items", json={"n": number})
            print(entry_id, flush=True)
            number += 1
    if mode == "thread-refused":
        box.start()
    for number in range(int(count)):
        box.submit("POST", "/items", json={"n": number})
    print("queued", flush=True)
    if mode == "after-submit":
        die()
    if mode == "thread-refused":
        while not box.pending()[0].attempts:
            box.drain(timeout=0.05)
        die()
    if mode == "before-send":
        original = Store.mark_sending

        def mark_then_die(self: Store, entry_id: int, *, now: float, delete=()):  # type: ignore[no-untyped-def]
            original(self, entry_id, now=now, delete=delete)
            die()

        Store.mark_sending = mark_then_die  # type: ignore[method-assign]
    if mode == "after-answer":
        # A delivered entry's row goes with the next write: die at that write instead.
        original_mark = Store.mark_sending
        original_delete = Store.delete_many

        def mark_unless_deleting(self: Store, entry_id: int, *, now: float, delete=()):  # type: ignore[no-untyped-def]
            if delete:
                die()
            return original_mark(self, entry_id, now=now, delete=delete)

        def die_before_delete(self: Store, entry_ids) -> None:  # type: ignore[no-untyped-def]
            if entry_ids:
                die()
            original_delete(self, entry_ids)

        Store.mark_sending = mark_unless_deleting  # type: ignore[method-assign]
        Store.delete_many = die_before_delete  # type: ignore[method-assign]
    box.drain(timeout=60)
    print("drain returned", flush=True)  # the parent treats this as a failure


if __name__ == "__main__":
    main()
