"""Crash safety with real SIGKILL: nothing is lost, and a repeat always carries the same key.

Each test runs a child process (``outbox_child.py``) that queues entries and is
killed at one point of the send path; a second process opens the same file with
``base_url=`` a live FaultServer and drains it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from connmgr.testing import FaultServer

CHILD = Path(__file__).with_name("outbox_child.py")
pytestmark = pytest.mark.slow


def run_child(mode, db, base_url, probe_port, count=5, *, wait=True):
    args = [sys.executable, str(CHILD), mode, str(db), base_url, str(probe_port), str(count)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return proc
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def deliver(db, base_url, probe_port):
    code, out, err = run_child("deliver", db, base_url, probe_port)
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])


def check_every_entry_once_or_with_its_key(server, count):
    keys_by_entry = defaultdict(set)
    for rec in server.requests_to("/items"):
        keys_by_entry[json.loads(rec.body)["n"]].add(rec.headers["Idempotency-Key"])
    assert sorted(keys_by_entry) == list(range(count))
    # A repeat (a crash between sending and recording) carries the entry's one key.
    assert all(len(keys) == 1 for keys in keys_by_entry.values()), keys_by_entry
    assert len(set().union(*keys_by_entry.values())) == count


@pytest.fixture
def live():
    with FaultServer() as s:
        s.alias("/items", "/status/201")
        yield s


@pytest.fixture
def dead_url():
    server = FaultServer().start()
    url = server.url
    server.close()  # nothing listens there now: connections are refused
    return url


def test_twenty_posts_queued_while_the_server_is_down_survive_sigkill(
    tmp_path, live, dead_url, probe_target
):
    db = tmp_path / "outbox.db"
    code, out, _ = run_child("after-submit", db, dead_url, probe_target.port, 20)
    assert code == -signal.SIGKILL and out.strip() == "queued"
    assert deliver(db, live.url, probe_target.port) == {"drained": True, "pending": 0, "failed": 0}
    recs = live.requests
    assert len(recs) == 20
    assert len({r.headers["Idempotency-Key"] for r in recs}) == 20
    assert [json.loads(r.body)["n"] for r in recs] == list(range(20))


def test_refused_attempts_before_the_kill_do_not_delay_the_next_process(
    tmp_path, live, dead_url, probe_target
):
    db = tmp_path / "outbox.db"
    code, _, err = run_child("thread-refused", db, dead_url, probe_target.port, 20)
    assert code == -signal.SIGKILL, err
    assert deliver(db, live.url, probe_target.port)["drained"] is True
    assert len(live.requests) == 20
    check_every_entry_once_or_with_its_key(live, 20)


def test_killed_while_the_request_is_in_flight(tmp_path, live, probe_target):
    live.alias("/items", "/stall-headers?seconds=30")
    db = tmp_path / "outbox.db"
    proc = run_child("in-flight", db, live.url, probe_target.port, 5, wait=False)
    try:
        deadline = time.monotonic() + 30
        while live.hits("/items") == 0:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    live.alias("/items", "/status/201")
    assert deliver(db, live.url, probe_target.port)["drained"] is True
    recs = live.requests_to("/items")
    assert len(recs) == 6  # the first one twice, with its one key
    check_every_entry_once_or_with_its_key(live, 5)


def test_killed_after_marking_sending_before_the_request_left(tmp_path, live, probe_target):
    db = tmp_path / "outbox.db"
    code, _, err = run_child("before-send", db, live.url, probe_target.port, 5)
    assert code == -signal.SIGKILL, err
    assert live.hits() == 0
    assert deliver(db, live.url, probe_target.port)["drained"] is True
    assert live.hits("/items") == 5
    check_every_entry_once_or_with_its_key(live, 5)


def test_killed_after_the_answer_before_it_was_recorded(tmp_path, live, probe_target):
    db = tmp_path / "outbox.db"
    code, _, err = run_child("after-answer", db, live.url, probe_target.port, 5)
    assert code == -signal.SIGKILL, err
    assert live.hits("/items") == 1
    assert deliver(db, live.url, probe_target.port)["drained"] is True
    assert live.hits("/items") == 6
    check_every_entry_once_or_with_its_key(live, 5)


@pytest.mark.parametrize("after", [1, 7, 40])
def test_killed_at_a_random_instant_while_submitting(tmp_path, live, probe_target, after):
    db = tmp_path / "outbox.db"
    proc = run_child("submit-forever", db, live.url, probe_target.port, 0, wait=False)
    try:
        assert proc.stdout is not None
        seen = [proc.stdout.readline() for _ in range(after)]
        assert seen[-1].strip() == str(after)
        # The child goes on submitting: the kill lands wherever it happens to be.
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    confirmed = int(out.split()[-1]) if out.strip() else after
    # Every submit() that returned is stored; at most the one in flight may be too.
    result = deliver(db, live.url, probe_target.port)
    assert result["drained"] is True
    stored = live.hits("/items")
    assert confirmed <= stored <= confirmed + 1
    check_every_entry_once_or_with_its_key(live, stored)
