"""The outbox file: WAL and one owner, damage moved aside, newer schemas refused, full disk."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
import subprocess

import pytest

from connmgr.outbox import Outbox, OutboxFullError, OutboxSchemaError, OutboxStorageError
from connmgr.outbox.store import APPLICATION_ID, SCHEMA_VERSION, Store


def test_the_file_is_wal_private_and_versioned(make_outbox, tmp_path):
    box = make_outbox()
    box.submit("POST", "/a", json=1)
    box.close()
    path = tmp_path / "outbox.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    finally:
        conn.close()


def test_the_directory_is_created(make_outbox, tmp_path):
    box = make_outbox(tmp_path / "deep" / "er" / "outbox.db")
    box.submit("POST", "/a")
    assert (tmp_path / "deep" / "er" / "outbox.db").exists()


@pytest.mark.parametrize("damage", ["all", "middle"])
def test_a_damaged_file_is_moved_aside_and_a_fresh_one_started(
    make_outbox, tmp_path, caplog, damage
):
    path = tmp_path / "outbox.db"
    box = make_outbox()
    for i in range(100):
        box.submit("POST", "/a", json={"pad": "x" * 500, "i": i})
    box.close()
    size = path.stat().st_size
    with path.open("r+b") as fh:
        if damage == "all":
            fh.write(os.urandom(size))
        else:
            fh.seek(4096 * 2)  # keep the header: damage the pages behind it
            fh.write(b"\xde\xad\xbe\xef" * 4096)
    with caplog.at_level(logging.ERROR, logger="connmgr.outbox"):
        again = make_outbox()
    aside = again.recovered_from
    assert aside is not None and os.path.basename(aside).startswith("outbox.db.corrupt-")
    assert os.path.exists(aside)
    assert any("damaged" in r.getMessage() and aside in r.getMessage() for r in caplog.records)
    assert again.pending() == []
    again.submit("POST", "/b")
    assert again.pending_count == 1


def test_a_newer_schema_is_refused_untouched(make_outbox, tmp_path, manager):
    path = tmp_path / "outbox.db"
    make_outbox().close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(OutboxSchemaError, match="newer") as info:
        Outbox(path, manager)
    assert isinstance(info.value, RuntimeError)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_another_applications_database_is_refused(tmp_path, manager):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE songs (title TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(OutboxSchemaError, match="another application"):
        Outbox(path, manager)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM songs").fetchone()[0] == 0
    conn.close()


def test_a_full_outbox_refuses_the_entry_and_keeps_the_rest(make_outbox, tmp_path):
    box = make_outbox(max_bytes=64 * 1024)
    stored = 0
    with pytest.raises(OutboxFullError, match="full") as info:
        for i in range(10_000):
            box.submit("POST", "/a", json={"i": i, "pad": "y" * 900})
            stored += 1
    assert isinstance(info.value, OSError)
    assert stored > 10
    assert box.pending_count == stored
    box.close()
    again = make_outbox()
    assert [e.id for e in again.pending()] == list(range(1, stored + 1))


def test_a_key_already_queued_is_refused(make_outbox, tmp_path):
    box = make_outbox()
    box.submit("POST", "/a", json=1, headers={"Idempotency-Key": "order-1"})
    with pytest.raises(ValueError, match="Idempotency-Key is already in the outbox"):
        box.submit("POST", "/a", json=1, headers={"Idempotency-Key": "order-1"})
    assert box.pending_count == 1 and len(box.pending()) == 1


def chattr(flag, *paths):
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    done = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr {flag} is not supported here: {done.stderr.decode().strip()}")


def test_a_file_that_cannot_be_written_refuses_the_entry(make_outbox, tmp_path):
    box = make_outbox()
    first = box.submit("POST", "/a", json=1)
    files = [tmp_path / "outbox.db", tmp_path / "outbox.db-wal"]
    # Immutable, even for root (who ignores file modes): every write now fails.
    chattr("+i", *files)
    try:
        with pytest.raises(OutboxStorageError, match="nothing was stored"):
            box.submit("POST", "/b", json=2)
        assert box.pending_count == 1
    finally:
        chattr("-i", *files)
    box.close()
    again = make_outbox()
    assert [e.id for e in again.pending()] == [first]


def test_store_close_is_idempotent(tmp_path):
    store = Store(tmp_path / "s.db")
    store.close()
    store.close()
