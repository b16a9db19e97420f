"""The outbox file: one SQLite database in WAL mode, its schema, and how it is opened.

Durability. ``insert`` commits with ``synchronous=FULL``: the WAL is fsynced
before it returns, so a submitted entry survives a power cut. Delivery updates
(``sending``, a rescheduled retry, a final state) commit with
``synchronous=NORMAL``: written to the WAL before the call returns, so they
survive the process being killed, and only a power cut can undo the last ones,
whose entries are then sent again with the same ``Idempotency-Key``.

One owner. The database is opened in ``locking_mode=EXCLUSIVE`` and its write
lock is taken at once, so a second opener (thread or process) gets
:class:`~connmgr.outbox.errors.OutboxLockedError` instead of delivering the same
entries twice. The operating system drops the lock when the owner dies.

Damage. A file that is not a SQLite database, or fails ``PRAGMA quick_check``,
is renamed ``<name>.corrupt-<UTC time>`` (with its ``-wal``), an error is
logged, and a fresh database is started in its place. A file with a newer
schema version (``PRAGMA user_version``) or another application's id is
refused with :class:`~connmgr.outbox.errors.OutboxSchemaError`, untouched.

Schema (version 1)::

    entries(id INTEGER PRIMARY KEY AUTOINCREMENT,   -- submission order
            method, base, ref,                      -- where (base NULL: ref absolute)
            headers, params, body, operation,       -- what (JSON, JSON, BLOB, str)
            idempotency_key UNIQUE,                 -- sent on every attempt
            state,                                  -- queued|sending|failed|expired
            attempts, created_at, expires_at, next_attempt_at, updated_at,
            last_error, last_status, last_reached)  -- why the last attempt did not deliver

Times are wall-clock seconds (the clock survives a restart). Delivered
entries are deleted; failed and expired ones are kept with their reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from connmgr.outbox.errors import (
    OutboxClosedError,
    OutboxFullError,
    OutboxLockedError,
    OutboxSchemaError,
    OutboxStorageError,
)
from connmgr.outbox.request import StoredRequest

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Store"]

logger = logging.getLogger("connmgr.outbox")

#: This schema's version, stored in ``PRAGMA user_version``.
SCHEMA_VERSION: Final = 1
#: ``PRAGMA application_id`` of an outbox file (``"cmob"``): another app's database is refused.
APPLICATION_ID: Final = 0x636D6F62

_MAGIC = b"SQLite format 3\x00"
_CORRUPT = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
_FULL = frozenset({"SQLITE_FULL"})

#: Each migration takes the schema from its index to the next version.
_MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE entries (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        method          TEXT    NOT NULL,
        base            TEXT,
        ref             TEXT    NOT NULL,
        headers         TEXT    NOT NULL,
        params          TEXT,
        body            BLOB,
        operation       TEXT    NOT NULL,
        idempotency_key TEXT    NOT NULL UNIQUE,
        state           TEXT    NOT NULL
                        CHECK (state IN ('queued', 'sending', 'failed', 'expired')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      REAL    NOT NULL,
        expires_at      REAL    NOT NULL,
        next_attempt_at REAL    NOT NULL,
        updated_at      REAL    NOT NULL,
        last_error      TEXT,
        last_status     INTEGER,
        last_reached    INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX entries_open ON entries (id) WHERE state IN ('queued', 'sending');
    """,
)

#: The columns the delivery loop scans (no headers or bodies).
_HEAD_COLUMNS = "id, method, base, ref, state, next_attempt_at, expires_at"
_REQUEST_COLUMNS = (
    "id, method, base, ref, headers, params, body, operation, idempotency_key, attempts"
)
_ENTRY_COLUMNS = (
    "id, method, base, ref, state, attempts, created_at, expires_at, next_attempt_at, "
    "last_error, last_status, idempotency_key"
)


class Store:
    """The outbox's SQLite file; every method is thread-safe (one connection, one lock).

    Args:
        path: the database file (its directory is created if missing).
        max_bytes: the largest the database may grow; an insert past it raises
            :class:`~connmgr.outbox.errors.OutboxFullError` (``None``: no limit).
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        #: Where a damaged file was moved to when this store was opened, else ``None``.
        self.recovered_from: Path | None = None
        self._lock = threading.Lock()
        self._conn = self._open()
        self._durable = True  # the connection's synchronous mode (FULL) as opened

    # ------------------------------------------------------------------ opening

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            return self._connect()
        except _DamagedError as damage:
            self.recovered_from = self._move_aside(str(damage))
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        created = not self.path.exists() or self.path.stat().st_size == 0
        if not created:
            with self.path.open("rb") as fh:
                if fh.read(len(_MAGIC)) != _MAGIC:
                    raise _DamagedError("the file is not a SQLite database (bad header)")
        else:
            # The entries may hold private data: the file is the user's alone.
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._configure(conn)
            self._check_and_migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            name = getattr(exc, "sqlite_errorname", "")
            if name in _CORRUPT:
                raise _DamagedError(f"{name}: {exc}") from exc
            if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
                raise OutboxLockedError(
                    f"the outbox {self.path} is already open (by this process or another "
                    "one); one owner at a time"
                ) from exc
            raise OutboxStorageError(f"cannot open the outbox {self.path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        if created:
            _fsync_directory(self.path.parent)
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OutboxStorageError(f"the outbox {self.path} cannot use WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        # Take the write lock now and keep it (exclusive mode): a second owner fails here.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")

    def _check_and_migrate(self, conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
            raise OutboxSchemaError(
                f"{self.path} is a SQLite database of another application "
                f"(application_id {app_id:#x}, {tables} schema objects), not an outbox; "
                "refusing to touch it"
            )
        if version > SCHEMA_VERSION:
            raise OutboxSchemaError(
                f"the outbox {self.path} has schema version {version}, newer than this "
                f"connmgr understands ({SCHEMA_VERSION}); it was written by a newer release "
                "of the app: upgrade, or move the file away to start a fresh outbox"
            )
        check = conn.execute("PRAGMA quick_check").fetchall()
        if [tuple(row) for row in check] != [("ok",)]:
            raise _DamagedError("quick_check: " + "; ".join(str(r[0]) for r in check[:5]))
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for script in _MIGRATIONS[version:]:
                    for statement in script.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if self.max_bytes is not None:
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(1, self.max_bytes // page)}")

    def _move_aside(self, why: str) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        number = 1
        while aside.exists():
            number += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{number}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                # A stale WAL next to a fresh database would be replayed into it.
                os.replace(side, aside.with_name(aside.name + suffix))
        _fsync_directory(self.path.parent)
        logger.error(
            "the outbox %s is damaged (%s): moved it to %s and started a fresh one; "
            "the entries it held were not delivered",
            self.path,
            why,
            aside,
        )
        return aside

    # ------------------------------------------------------------------ writing

    @contextlib.contextmanager
    def _transaction(self, *, durable: bool, single: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction; ``single``: the body runs one statement, which SQLite
        makes its own transaction (no BEGIN/COMMIT round trips)."""
        with self._lock:
            conn = self._conn
            if conn is _CLOSED:
                raise OutboxClosedError(f"the outbox {self.path} is closed")
            if durable is not self._durable:
                conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            try:
                if single:
                    yield conn
                    return
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError as exc:
                if "idempotency_key" in str(exc):
                    raise ValueError(
                        "headers: an entry with this Idempotency-Key is already in the outbox"
                    ) from exc
                raise OutboxStorageError(f"the outbox {self.path} refused a write: {exc}") from exc
            except sqlite3.Error as exc:
                name = getattr(exc, "sqlite_errorname", "")
                if name in _FULL:
                    raise OutboxFullError(
                        f"the outbox {self.path} is full (disk full or max_bytes reached): "
                        "nothing was stored by this call"
                    ) from exc
                raise OutboxStorageError(
                    f"the outbox {self.path} could not be written ({name or exc}): "
                    "nothing was stored by this call"
                ) from exc

    def insert(self, request: StoredRequest, *, now: float, expires_at: float) -> int:
        """Store a new queued entry durably (fsynced); return its id."""
        with self._transaction(durable=True, single=True) as conn:
            cursor = conn.execute(
                "INSERT INTO entries (method, base, ref, headers, params, body, operation, "
                "idempotency_key, state, created_at, expires_at, next_attempt_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (
                    request.method,
                    request.base,
                    request.ref,
                    json.dumps(request.headers),
                    None if request.params is None else json.dumps(request.params),
                    request.body,
                    request.operation,
                    request.idempotency_key,
                    now,
                    expires_at,
                    now,
                    now,
                ),
            )
            entry_id = cursor.lastrowid
        assert entry_id is not None
        return entry_id

    def mark_sending(
        self, entry_id: int, *, now: float, delete: Sequence[int] = ()
    ) -> sqlite3.Row | None:
        """The entry is about to be sent: count the attempt first (a crash keeps it queued).

        Returns everything needed to send it (``attempts`` already counted), or
        ``None`` when it is no longer queued (discarded meanwhile): do not send.
        ``delete``: delivered entries to remove in the same transaction (one commit
        instead of two per entry when a queue drains).
        """
        with self._transaction(durable=False, single=not delete) as conn:
            if delete:
                marks = ", ".join("?" * len(delete))
                conn.execute(f"DELETE FROM entries WHERE id IN ({marks})", tuple(delete))
            cursor = conn.execute(
                "UPDATE entries SET state = 'sending', attempts = attempts + 1, "
                "updated_at = ? WHERE id = ? AND state = 'queued' RETURNING " + _REQUEST_COLUMNS,
                (now, entry_id),
            )
            cursor.row_factory = sqlite3.Row
            row: sqlite3.Row | None = cursor.fetchone()
            cursor.fetchall()  # RETURNING rows must be read before COMMIT
        return row

    def delete_many(self, entry_ids: Sequence[int]) -> None:
        """Remove entries (delivered ones)."""
        if not entry_ids:
            return
        marks = ", ".join("?" * len(entry_ids))
        with self._transaction(durable=False, single=True) as conn:
            conn.execute(f"DELETE FROM entries WHERE id IN ({marks})", tuple(entry_ids))

    def requeue(self, entry_id: int, *, now: float, expires_at: float) -> bool:
        """A failed or expired entry back to ``queued`` (same key, attempts from zero)."""
        with self._transaction(durable=True, single=True) as conn:
            return (
                conn.execute(
                    "UPDATE entries SET state = 'queued', attempts = 0, next_attempt_at = ?, "
                    "expires_at = ?, last_reached = 0, updated_at = ? "
                    "WHERE id = ? AND state IN ('failed', 'expired')",
                    (now, expires_at, now, entry_id),
                ).rowcount
                > 0
            )

    def discard(self, entry_id: int) -> str | None:
        """Delete an entry unless it is being sent; return the state it had, or ``None``."""
        with self._transaction(durable=False) as conn:
            row = conn.execute("SELECT state FROM entries WHERE id = ?", (entry_id,)).fetchone()
            if row is None or row[0] == "sending":
                return None
            conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
            return str(row[0])

    def finish(
        self, entry_id: int, state: str, *, reason: str, status: int | None, now: float
    ) -> None:
        """Put an entry in a final state (``failed`` or ``expired``), kept with its reason."""
        with self._transaction(durable=False, single=True) as conn:
            conn.execute(
                "UPDATE entries SET state = ?, last_error = ?, last_status = ?, updated_at = ? "
                "WHERE id = ?",
                (state, reason, status, now, entry_id),
            )

    def reschedule(
        self,
        entry_id: int,
        *,
        next_attempt_at: float,
        reason: str | None,
        status: int | None,
        reached: bool,
        now: float,
    ) -> None:
        """Back to ``queued`` until ``next_attempt_at``, with why the attempt did not deliver."""
        with self._transaction(durable=False, single=True) as conn:
            conn.execute(
                "UPDATE entries SET state = 'queued', next_attempt_at = ?, last_error = ?, "
                "last_status = ?, last_reached = ?, updated_at = ? WHERE id = ?",
                (next_attempt_at, reason, status, int(reached), now, entry_id),
            )

    def clamp_waits(self, *, latest: float) -> int:
        """Bring every queued entry's next attempt forward to ``latest`` at the latest."""
        with self._transaction(durable=False, single=True) as conn:
            return conn.execute(
                "UPDATE entries SET next_attempt_at = ? WHERE state = 'queued' "
                "AND next_attempt_at > ?",
                (latest, latest),
            ).rowcount

    def expire_due(self, *, now: float) -> list[sqlite3.Row]:
        """Move open entries whose TTL has passed to ``expired``; return them (after)."""
        with self._transaction(durable=False) as conn:
            due = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM entries WHERE state IN ('queued', 'sending') "
                    "AND expires_at <= ?",
                    (now,),
                )
            ]
            for entry_id in due:
                conn.execute(
                    "UPDATE entries SET state = 'expired', updated_at = ?, last_error = "
                    "'expired: not delivered within its time to live' || "
                    "CASE WHEN last_error IS NULL THEN '' ELSE ' (last: ' || last_error || ')' "
                    "END WHERE id = ?",
                    (now, entry_id),
                )
        return self.entries_by_id(due) if due else []

    def wake_unreached(self, *, now: float) -> int:
        """Make entries whose last attempt never left this machine due now; return how many.

        For a returning network or a restart: a server that was never reached
        saw no load, so there is no backoff to respect.
        """
        with self._transaction(durable=False, single=True) as conn:
            return conn.execute(
                "UPDATE entries SET next_attempt_at = ? WHERE state = 'queued' "
                "AND last_reached = 0 AND next_attempt_at > ?",
                (now, now),
            ).rowcount

    def recover_interrupted(self, *, now: float) -> int:
        """At open: entries left ``sending`` by a crash go back to ``queued``, due now."""
        with self._transaction(durable=False, single=True) as conn:
            return conn.execute(
                "UPDATE entries SET state = 'queued', next_attempt_at = ?, last_reached = 1, "
                "last_error = 'interrupted while sending (the app stopped); sent again with "
                "the same Idempotency-Key', updated_at = ? WHERE state = 'sending'",
                (now, now),
            ).rowcount

    # ------------------------------------------------------------------ reading

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            if self._conn is _CLOSED:
                raise OutboxClosedError(f"the outbox {self.path} is closed")
            cursor = self._conn.execute(sql, args)
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()

    def open_heads(self) -> list[sqlite3.Row]:
        """Open entries (queued, sending) in submission order, without headers or bodies."""
        return self._read(
            f"SELECT {_HEAD_COLUMNS} FROM entries WHERE state IN ('queued', 'sending') ORDER BY id"
        )

    def request_of(self, entry_id: int) -> sqlite3.Row | None:
        """Everything needed to send one entry."""
        rows = self._read(f"SELECT {_REQUEST_COLUMNS} FROM entries WHERE id = ?", (entry_id,))
        return rows[0] if rows else None

    def entries(self, states: Sequence[str]) -> list[sqlite3.Row]:
        """Entries in ``states``, in submission order (for ``pending()`` and ``failed()``)."""
        marks = ", ".join("?" * len(states))
        return self._read(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE state IN ({marks}) ORDER BY id",
            tuple(states),
        )

    def entries_by_id(self, ids: Sequence[int]) -> list[sqlite3.Row]:
        """The entries with these ids, in submission order."""
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        return self._read(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE id IN ({marks}) ORDER BY id", tuple(ids)
        )

    def count(self, states: Sequence[str]) -> int:
        """How many entries are in ``states``."""
        marks = ", ".join("?" * len(states))
        rows = self._read(f"SELECT count(*) FROM entries WHERE state IN ({marks})", tuple(states))
        return int(rows[0][0])

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Checkpoint the WAL into the database and close (idempotent)."""
        with self._lock:
            conn, self._conn = self._conn, _CLOSED
            if conn is _CLOSED:
                return
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                logger.warning("outbox %s: checkpoint at close failed", self.path, exc_info=True)
            finally:
                conn.close()


class _DamagedError(Exception):
    """The file is damaged (not a database, or a failed integrity check)."""


class _ClosedConnection:
    """Stands in for the connection after close(): every use raises."""

    def execute(self, *args: object) -> Any:
        raise sqlite3.ProgrammingError("the outbox store is closed")


_CLOSED: Any = _ClosedConnection()


def _fsync_directory(directory: Path) -> None:
    # A new or renamed file is durable only once its directory entry is.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        logger.debug("fsync of %s failed", directory, exc_info=True)
    finally:
        os.close(fd)
