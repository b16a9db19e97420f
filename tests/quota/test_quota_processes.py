"""Real processes sharing one quota: no window over the limit, and the quota is used.

Each child runs ``OriginRateLimits(default=RateLimit(5, 1.0), store=...).for_origin(o).wait()``
in a loop and reports its grant times (``time.time()`` right after ``wait()``
returns, read from outside the limiter, as an independent check would).
"""

from __future__ import annotations

import bisect
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHILD = """
import json, sys, time
from connmgr.quota import RedisStore, SQLiteStore
from connmgr.ratelimit import OriginRateLimits, RateLimit
kind, where = sys.argv[1], sys.argv[2]
store = SQLiteStore(where) if kind == "sqlite" else RedisStore(where)
limiter = OriginRateLimits(default=RateLimit(5, 1.0), store=store).for_origin("https://api.example")
print("ready", flush=True)
start, stop = map(float, sys.stdin.readline().split())
time.sleep(max(0.0, start - time.time()))
grants = []
while time.time() < stop:
    if limiter.wait(timeout=max(0.0, stop - time.time())):
        grants.append(time.time())
print(json.dumps({"grants": grants, "available": store.available}))
"""

RUN = 2.8


def run_children(kind: str, where: str, processes: int) -> list[float]:
    """Start the children, wait until each has imported and built its limiter, then run them."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, kind, where],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    start = time.time() + 0.05
    grants: list[float] = []
    for child in children:
        assert child.stdin is not None
        child.stdin.write(f"{start!r} {start + RUN!r}\n")
        child.stdin.flush()
    for child in children:
        out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        report = json.loads(out)
        assert report["available"], "the store failed over to local limiting"
        grants += report["grants"]
    return sorted(grants)


def most_in_window(times: list[float], window: float) -> int:
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


def check_shared(grants: list[float]) -> None:
    assert grants, "no grant at all"
    after_first = [t for t in grants if t >= grants[0] + 1.0]
    assert most_in_window(after_first, 0.99) <= 5, after_first
    combined = len(grants) / RUN
    assert combined >= 4.0, combined


@pytest.mark.slow
@pytest.mark.parametrize("processes", [2, 4])
def test_processes_share_one_quota_in_sqlite(tmp_path: Path, processes: int) -> None:
    check_shared(run_children("sqlite", str(tmp_path / "quota.sqlite3"), processes))


@pytest.mark.slow
@pytest.mark.parametrize("processes", [2, 4])
def test_processes_share_one_quota_in_redis(redis_url: str, processes: int) -> None:
    check_shared(run_children("redis", redis_url, processes))
