"""A command-line script built on connmgr: search a flaky store for a while, then report.

It embeds its own store (a loopback FaultServer: nothing leaves 127.0.0.1),
which answers 30% of searches with 503 for the first half of the run and then
rate-limits with 429 and ``Retry-After``. One ConnectionManager does the
searches; its signals print each state change and retry as it happens; every
failure is shown in the error's own plain words; the run ends by itself after
``--seconds``, cancelling a search that is still waiting.

    python examples/cli_script.py --seconds 3

Exit code 0 when every search ended with an answer or a connmgr error (that is,
nothing escaped the error tree), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from connmgr import (
    CancelToken,
    ConnectionManager,
    HttpProbe,
    NetworkError,
    NetworkMonitor,
    RequestCancelledError,
    RetryConfig,
    signals,
)
from connmgr.testing import FaultServer

QUERIES = ("deep house 124 bpm", "aphex twin", "boards of canada", "disco edits", "amapiano")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="how long to run (default %(default)s)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 3600:
        parser.error("--seconds must be more than 0 and at most 3600")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()

    def say(text: str) -> None:
        sys.stdout.write(f"[{time.monotonic() - started:5.2f}s] {text}\n")
        sys.stdout.flush()

    # Receivers are held weakly by blinker: these local functions live as long as main().
    def on_state(sender: Any, *, origin: str, old: Any, new: Any, reason: str, **_: Any) -> None:
        say(f"state {old.value} -> {new.value}: {reason}")

    retries: Counter[int] = Counter()

    def on_retry(sender: Any, *, request_id: int, delay: float, error: Any, **_: Any) -> None:
        retries[request_id] += 1
        say(f"  retry {retries[request_id]}/3 in {delay:.2f} s: {error.user_message}")

    with FaultServer() as store:
        store.alias("/api/search", "/random?rate=0.3&status=503&seed=3")
        # The network monitor probes the store's own health URL: an app that talks to
        # one server can check that server instead of the public internet.
        monitor = NetworkMonitor(probes=[HttpProbe(store.url_for("/generate_204"))], timeout=1.0)
        retry = RetryConfig(max_retries=3, base_delay=0.05, max_delay=0.4, jitter_range=0.02)
        manager = ConnectionManager(store.url, retry=retry, monitor=monitor)
        cancel = CancelToken()
        # The run ends on time even if a search is waiting for a retry or a pause.
        timer = threading.Timer(args.seconds, cancel.cancel, args=("time is up",))
        timer.daemon = True
        timer.start()
        outcomes: Counter[str] = Counter()
        with (
            manager,
            signals.state_changed.connected_to(on_state, sender=manager),
            signals.retry_scheduled.connected_to(on_retry, sender=manager),
        ):
            number = 0
            limiting = False
            while not cancel.cancelled:
                if not limiting and time.monotonic() - started >= args.seconds / 2:
                    limiting = True
                    store.alias("/api/search", "/limited?rate=2&burst=2&headers=1")
                    say("the store starts rate limiting (2 searches a second)")
                query = QUERIES[number % len(QUERIES)]
                number += 1
                began = time.perf_counter()
                try:
                    response = manager.get(
                        "/api/search", params={"q": query}, operation="search", cancel=cancel
                    )
                except RequestCancelledError:
                    outcomes["cancelled"] += 1
                    say(f"{query!r}: cancelled, the run is over")
                except NetworkError as exc:
                    outcomes["failed"] += 1
                    say(f"{query!r}: {exc.user_message} {exc.suggestion}")
                except Exception as exc:  # outside connmgr's tree: a bug worth showing
                    outcomes["escaped"] += 1
                    say(f"{query!r}: unexpected {type(exc).__name__}: {exc}")
                else:
                    outcomes["answered"] += 1
                    took = (time.perf_counter() - began) * 1000
                    say(f"{query!r}: {response.status_code} in {took:.0f} ms")
            timer.cancel()
            stats = manager.stats()
        sys.stdout.write(
            f"{number} searches in {time.monotonic() - started:.1f} s: "
            f"{outcomes['answered']} answered, {outcomes['failed']} failed, "
            f"{outcomes['cancelled']} cancelled; {stats.attempts} attempts sent, "
            f"{stats.retries} retries\n"
        )
    return 0 if outcomes["escaped"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
