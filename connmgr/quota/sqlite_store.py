"""One quota for the processes of one machine: a small SQLite table (stdlib ``sqlite3``).

Every operation is one short transaction: ``BEGIN IMMEDIATE`` (so two
processes never both read the old state), read the key's row, run the GCRA
decision (:mod:`connmgr.quota.gcra`) in Python, write the row, ``COMMIT``. The
database is in WAL mode (readers never block the writer) with
``synchronous=NORMAL`` (a quota's last milliseconds need not survive a power
cut). The clock is this machine's ``time.time()``, which every process on it
shares; do not put the file on a network share for several hosts (use
:class:`~connmgr.quota.RedisStore`).

A lock held longer than ``busy_timeout`` (default 2 s), a disk error, or a
file that cannot be opened makes the operation fail over to local limiting
(:mod:`connmgr.quota.shared`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from connmgr.quota import gcra
from connmgr.quota.base import Answer, Feedback, Pace, QuotaStoreError
from connmgr.quota.shared import SharedStore

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")

_COLUMNS: Final = (
    "tat",
    "last",
    "epoch_open",
    "epoch_count",
    "paused_until",
    "interval",
    "sent_count",
    "sent_stamp",
    "sent_start",
    "seen",
)
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS connmgr_quota (
    key TEXT PRIMARY KEY,
    tat REAL, last REAL, epoch_open INTEGER NOT NULL DEFAULT 0,
    epoch_count INTEGER NOT NULL DEFAULT 0, paused_until REAL, interval REAL,
    sent_count REAL NOT NULL DEFAULT 0, sent_stamp REAL, sent_start REAL, seen REAL,
    version INTEGER NOT NULL DEFAULT 0, feedback TEXT
)
"""
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)}, version FROM connmgr_quota WHERE key = ?"
_UPSERT: Final = (
    f"INSERT INTO connmgr_quota (key, {', '.join(_COLUMNS)}) "
    f"VALUES (?, {', '.join('?' for _ in _COLUMNS)}) "
    f"ON CONFLICT(key) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _COLUMNS)}"
)


def _time(value: float | None) -> float:
    # "Never" is stored as NULL: SQL has no infinity.
    return -math.inf if value is None else value


def _stored(value: float) -> float | None:
    return None if math.isinf(value) else value


def _cell(row: tuple[object, ...] | None) -> tuple[gcra.Cell, int]:
    if row is None:
        return gcra.Cell(), 0
    tat, last, eopen, ecount, paused, interval, count, stamp, start, seen, version = row
    cell = gcra.Cell(
        tat=_time(tat),  # type: ignore[arg-type]
        last=_time(last),  # type: ignore[arg-type]
        epoch_open=bool(eopen),
        epoch_count=int(ecount),  # type: ignore[call-overload]
        paused_until=_time(paused),  # type: ignore[arg-type]
        interval=interval,  # type: ignore[arg-type]
        sent=gcra.Meter(float(count), _time(stamp), _time(start)),  # type: ignore[arg-type]
        seen=_time(seen),  # type: ignore[arg-type]
    )
    return cell, int(version)  # type: ignore[call-overload]


def _row(key: str, cell: gcra.Cell) -> tuple[object, ...]:
    return (
        key,
        _stored(cell.tat),
        _stored(cell.last),
        int(cell.epoch_open),
        cell.epoch_count,
        _stored(cell.paused_until),
        cell.interval,
        cell.sent.count,
        _stored(cell.sent.stamp),
        _stored(cell.sent.start),
        _stored(cell.seen),
    )


class SQLiteStore(SharedStore):
    """A quota shared by the processes of one machine, in the SQLite file at ``path``.

    About 40-150 µs a grant on a local disk. ``busy_timeout`` is how long an
    operation waits for another process's transaction before it gives up and
    limits locally (a transaction takes well under a millisecond, but a
    descheduled process on a loaded machine can hold the lock for much longer:
    0.5 s was seen to run out with four processes while a test suite ran beside
    them, hence 2 s); ``retry_interval`` how long the store is then left alone.
    The file and its directory are created if missing.

    Example::

        store = SQLiteStore("~/.cache/myapp/quota.sqlite3")
        limits = OriginRateLimits(default=RateLimit(5, 1.0), store=store)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 2.0,
        retry_interval: float = 5.0,
    ) -> None:
        super().__init__(retry_interval=retry_interval)
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or a path, got {path!r}")
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, int | float):
            raise TypeError(f"busy_timeout must be a number of seconds, got {busy_timeout!r}")
        if not 0.0 < busy_timeout <= 30.0:
            raise ValueError(f"busy_timeout must be in (0, 30] s, got {busy_timeout!r}")
        self._path = Path(os.fspath(path)).expanduser()
        self._busy_timeout = float(busy_timeout)
        self._db_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def describe(self) -> str:
        """``sqlite:<path>``."""
        return f"sqlite:{self._path}"

    def close(self) -> None:
        """Close the connection; the next operation opens a new one."""
        with self._db_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- the connection ---------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross a fork: a child opens its own.
        if self._conn is None or self._pid != os.getpid():
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout,
                isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE
                check_same_thread=False,  # one connection, used under _db_lock
            )
            try:
                # Both are written once per file; reading first keeps a second process
                # from queueing for the write lock just to learn they are done.
                (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                known = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'connmgr_quota'"
                ).fetchone()
                if known is None:
                    conn.execute(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _write(self, key: str, change: Callable[[gcra.Cell, float], _T]) -> tuple[_T, int]:
        """Run ``change(cell, now)`` on the key's row in one immediate transaction."""
        with self._db_lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    cell, version = _cell(conn.execute(_SELECT, (key,)).fetchone())
                    result = change(cell, time.time())
                    conn.execute(_UPSERT, _row(key, cell))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError) as exc:
                self._drop_locked()
                raise QuotaStoreError(f"{self.describe()}: {exc}") from exc
            return result, version

    def _read(self, sql: str, key: str) -> tuple[tuple[object, ...] | None, float]:
        with self._db_lock:
            try:
                row = self._connection().execute(sql, (key,)).fetchone()
            except (sqlite3.Error, OSError) as exc:
                self._drop_locked()
                raise QuotaStoreError(f"{self.describe()}: {exc}") from exc
            return row, time.time()

    def _drop_locked(self) -> None:
        # After an error the connection may be mid-transaction: start afresh next time.
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    # -- raw operations ---------------------------------------------------------------

    def raw_take(self, key: str, pace: Pace, *, fresh: bool, take: bool) -> Answer:
        """Take or peek at a slot in one immediate transaction."""
        decide = gcra.take if take else gcra.peek

        def change(cell: gcra.Cell, now: float) -> tuple[float, float]:
            wait = decide(cell, pace, now, fresh=fresh)
            return wait, max(0.0, cell.paused_until - now)

        (wait, paused), version = self._write(key, change)
        return Answer(wait, paused, version)

    def raw_pause(self, key: str, seconds: float) -> None:
        """Extend the key's pause."""
        self._write(key, lambda cell, now: gcra.pause(cell, now + seconds, now))

    def raw_clear_pause(self, key: str) -> None:
        """End the key's pause."""
        self._write(key, lambda cell, now: gcra.clear_pause(cell))

    def raw_sent_rate(self, key: str, pace: Pace) -> float:
        """The key's grant meter."""
        row, now = self._read(
            "SELECT sent_count, sent_stamp, sent_start FROM connmgr_quota WHERE key = ?", key
        )
        if row is None:
            return 0.0
        count, stamp, start = row
        meter = gcra.Meter(float(count), _time(stamp), _time(start))  # type: ignore[arg-type]
        return meter.rate(now, tau=pace.measure)

    def raw_feedback(self, key: str) -> tuple[int, Feedback | None]:
        """The key's feedback and version."""
        row, now = self._read("SELECT version, feedback FROM connmgr_quota WHERE key = ?", key)
        if row is None:
            return 0, None
        version, text = row
        if not isinstance(text, str):
            return int(version), None  # type: ignore[call-overload]
        return int(version), Feedback.from_times(json.loads(text), now)  # type: ignore[call-overload]

    def raw_publish(self, key: str, feedback: Feedback | None) -> int:
        """Store the key's feedback and bump its version."""
        with self._db_lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    text = None if feedback is None else json.dumps(feedback.to_times(time.time()))
                    conn.execute(
                        "INSERT INTO connmgr_quota (key, version, feedback) VALUES (?, 1, ?) "
                        "ON CONFLICT(key) DO UPDATE SET version = version + 1, "
                        "feedback = excluded.feedback",
                        (key, text),
                    )
                    (version,) = conn.execute(
                        "SELECT version FROM connmgr_quota WHERE key = ?", (key,)
                    ).fetchone()
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError) as exc:
                self._drop_locked()
                raise QuotaStoreError(f"{self.describe()}: {exc}") from exc
            return int(version)
