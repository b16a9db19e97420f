"""Run a NetworkMonitor inside a network namespace and print its events as JSON lines.

Started by test_network_os_events.py as ``ip netns exec NS python netns_monitor_child.py
HOST PORT``; prints ``{"ready": ...}`` once the watcher runs, then one line per
``network_changed`` with the time (``time.monotonic()``, the same clock in every
namespace), and exits when its stdin closes.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

from connmgr import signals
from connmgr.network import NetworkMonitor, TcpProbe


class _Monotonic(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{time.monotonic():.3f} {record.threadName}: {record.getMessage()}"


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    # The monitor's log on stderr (shown when the test fails), stamped on the shared clock.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Monotonic())
    logging.getLogger("connmgr").addHandler(handler)
    logging.getLogger("connmgr").setLevel(logging.DEBUG)
    monitor = NetworkMonitor([TcpProbe(host, port)], interval=30.0, timeout=3.0)
    # Receivers run on the watcher's and the listener's threads: one line at a time.
    out = threading.Lock()

    def on_change(sender: object, **kwargs: object) -> None:
        status = kwargs["status"]
        line = {
            "t": time.monotonic(),
            "status": getattr(status, "value", str(status)),
            "reason": kwargs["reason"],
            "epoch": kwargs["epoch"],
        }
        with out:
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

    signals.network_changed.connect(on_change, sender=monitor, weak=False)
    monitor.start()
    print(json.dumps({"ready": True, "os_events": monitor.os_events_source}), flush=True)
    sys.stdin.read()
    monitor.stop()


if __name__ == "__main__":
    main()
