"""Timeouts: per-operation profiles and the deadline that bounds a whole request.

Three numbers describe how long connmgr waits (all in seconds):

``connect``
    to open the TCP connection (and finish the TLS handshake);
``read``
    between two pieces of data from the server (requests' read timeout);
``total``
    the wall-clock budget of the whole logical request: every attempt,
    the retry waits, the rate-limit waits, reading the body (with
    ``stream=True``: until the response is closed or fully read). ``None``
    means no limit.

The read timeout alone cannot bound a request: a server that sends one byte
every 0.5 s never trips it. ``total`` is what holds; it is enforced by
:mod:`connmgr.transport`. ``total`` is *not* required to be at least
``connect`` or ``read``: every attempt is sent with
``(min(connect, remaining), min(read, remaining))``, so a short total simply
wins (see :func:`attempt_timeouts`).

Each profile also bounds the body: ``max_body_bytes`` is the largest
decoded body the transport reads (``None``: no limit); a larger one raises
a ``NetworkError`` of kind ``"too_large"``, never retried.

Operations (``"search"``, ``"download"``, ...) pick a :class:`TimeoutConfig`
from a :class:`TimeoutProfiles` mapping; the timeouts come from the original
plan:

=========== ======= ===== ===== ==============
profile     connect read  total max_body_bytes
=========== ======= ===== ===== ==============
default     5       30    60    64 MiB
search      5       45    90    64 MiB
quick       5       10    20    64 MiB
download    5       60    300   None
=========== ======= ===== ===== ==============

Every number of seconds is at most :data:`MAX_TIMEOUT` (what the platform
can wait); more is refused with a ``ValueError`` naming the field.

Example::

    profiles = TimeoutProfiles.from_dict({"search": {"read": 50, "total": 100}})
    profiles["search"]                  # TimeoutConfig(connect=5.0, read=50.0, total=100.0)
    deadline = Deadline(profiles["search"].total)
    attempt_timeouts(profiles["search"], deadline)   # (5.0, 50.0) at first, shrinking later
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Any, Final, TypeVar, cast, overload

from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock
from connmgr.frozen import explain_frozen

__all__ = [
    "MAX_TIMEOUT",
    "MIN_ATTEMPT_TIMEOUT",
    "AttemptContext",
    "Deadline",
    "NetworkConfig",
    "TimeoutConfig",
    "TimeoutPair",
    "TimeoutProfiles",
    "UnknownOperationError",
    "attempt_timeouts",
    "timeout_pair",
]

_T = TypeVar("_T")
_MISSING: Final[Any] = object()

#: The smallest connect/read timeout handed to urllib3: it treats 0 as
#: "fail at once" (read) or non-blocking (connect), never as "a little time".
MIN_ATTEMPT_TIMEOUT: Final = 0.001


#: The longest timeout connmgr accepts, in seconds: 1e9 (about 31.7 years), or
#: ``threading.TIMEOUT_MAX`` where that is smaller (about 49.7 days on Windows).
#: The platform refuses more: ``socket.settimeout`` raises ``OverflowError``
#: above about 9.2e9 s (the monotonic clock plus the timeout must fit in 64-bit
#: nanoseconds), and so does every ``threading`` wait above ``TIMEOUT_MAX``.
#: A connect/read/total beyond it is refused with a ``ValueError`` naming the
#: field, rather than accepted and failing on every request.
MAX_TIMEOUT: Final = min(1e9, threading.TIMEOUT_MAX)


def _shown(value: object) -> str:
    """``repr(value)``, cut short (``10**400`` has 401 digits)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


#: The default ``max_body_bytes``: 64 MiB. Answers to searches and API calls
#: are kilobytes to a few megabytes; 64 MiB is far above any of them, small
#: enough for a desktop app to hold (twice, while requests joins the pieces),
#: and it stops a decompression bomb (1 MB of gzip can decode to 1 GiB) long
#: before memory suffers. Downloads have no limit: stream them to a file.
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024


def _byte_count(name: str, value: object) -> int | None:
    """Validate a size in bytes: a positive integer, or ``None`` for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"{name} must be a positive integer number of bytes or None, got {_shown(value)}"
        )
    return value


def _seconds(
    name: str, value: object, *, allow_none: bool = False, allow_zero: bool = False
) -> float | None:
    """Validate a duration: a finite number of seconds up to :data:`MAX_TIMEOUT`.

    Positive (``>= 0`` when ``allow_zero``), or ``None`` if allowed. ``name``
    is the field as the user wrote it (``"read"`` or ``"profiles.search.read"``)
    so the error points at the right place. The bounds are compared before
    any conversion, so a huge integer gives a ``ValueError``, not an
    ``OverflowError``.
    """
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} must be a positive number of seconds, got None")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a positive number of seconds, got {_shown(value)}")
    low_ok = value >= 0 if allow_zero else value > 0
    if not low_ok or not value <= MAX_TIMEOUT:  # NaN fails both comparisons
        low = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"{name} must be a finite number of seconds {low} and at most "
            f"{MAX_TIMEOUT:g} (the longest the platform can wait), got {_shown(value)}"
        )
    return float(value)


_FIELDS: Final = "connect, read, total, max_body_bytes"


@explain_frozen
@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutConfig:
    """Connect, read and total timeouts (seconds) and a body size limit for one kind of operation.

    ``connect`` and ``read`` are positive finite numbers up to
    :data:`MAX_TIMEOUT`; ``total`` is one too, or ``None`` for no overall
    limit. Integers are accepted and stored as floats; booleans, strings, NaN,
    infinities, zero, negatives and values above :data:`MAX_TIMEOUT` raise a
    :class:`ValueError` that names the field. ``total`` may be smaller than
    ``connect`` or ``read``: it is a cap on the whole request, applied on top.
    ``max_body_bytes`` (a positive int, or ``None`` for no limit) is the
    largest decoded body the transport reads (:data:`DEFAULT_MAX_BODY_BYTES`,
    and ``None`` for :meth:`for_download`).

    Changed copies come from :func:`dataclasses.replace`.

    Example::

        TimeoutConfig()                          # 5 / 30 / 60
        TimeoutConfig.for_search()               # 5 / 45 / 90
        TimeoutConfig(connect=2, read=10, total=None)
        dataclasses.replace(TimeoutConfig(), read=15.0)
        TimeoutConfig(read=-1)                   # ValueError: read must be a positive ...
    """

    connect: float = 5.0
    read: float = 30.0
    total: float | None = 60.0
    max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        # Stored as floats so equal configs compare and print the same.
        object.__setattr__(self, "connect", _seconds("connect", self.connect))
        object.__setattr__(self, "read", _seconds("read", self.read))
        object.__setattr__(self, "total", _seconds("total", self.total, allow_none=True))
        _byte_count("max_body_bytes", self.max_body_bytes)

    @classmethod
    def for_search(cls) -> TimeoutConfig:
        """Search operations: 5 s connect, 45 s read, 90 s total."""
        return cls(connect=5.0, read=45.0, total=90.0)

    @classmethod
    def for_quick_check(cls) -> TimeoutConfig:
        """Quick checks: 5 s connect, 10 s read, 20 s total."""
        return cls(connect=5.0, read=10.0, total=20.0)

    @classmethod
    def for_download(cls) -> TimeoutConfig:
        """File downloads: 5 s connect, 60 s read, 300 s total, no body size limit."""
        return cls(connect=5.0, read=60.0, total=300.0, max_body_bytes=None)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, base: TimeoutConfig | None = None, path: str = ""
    ) -> TimeoutConfig:
        """Build a config from a parsed settings mapping, over ``base``.

        Keys missing from ``data`` keep ``base``'s values (the class defaults
        when ``base`` is ``None``). Unknown keys and bad values raise
        :class:`ValueError` naming ``path`` + the key, e.g.
        ``"profiles.search.reed"``.

        Example::

            TimeoutConfig.from_dict({"read": 50}, base=TimeoutConfig.for_search())
            # TimeoutConfig(connect=5.0, read=50.0, total=90.0)
        """
        prefix = f"{path}." if path else ""
        if not isinstance(cast(object, data), Mapping):
            where = path or "timeout config"
            raise ValueError(f"{where} must be a mapping of {_FIELDS}, got {_shown(data)}")
        known = {f.name for f in fields(cls)}
        changes: dict[str, float | int | None] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(
                    f"{prefix}{key} is not a timeout field (expected one of: {_FIELDS})"
                )
            if key == "max_body_bytes":
                changes[key] = _byte_count(f"{prefix}{key}", value)
            else:
                changes[key] = _seconds(f"{prefix}{key}", value, allow_none=key == "total")
        return replace(base if base is not None else cls(), **cast(Any, changes))

    def to_dict(self) -> dict[str, float | int | None]:
        """The fields as a plain dict (the shape :meth:`from_dict` reads)."""
        return {
            "connect": self.connect,
            "read": self.read,
            "total": self.total,
            "max_body_bytes": self.max_body_bytes,
        }

    def as_tuple(self) -> tuple[float, float]:
        """``(connect, read)``, the shape requests' ``timeout=`` takes."""
        return (self.connect, self.read)


#: The built-in profiles (the original plan's defaults).
_BUILTIN: Final[Mapping[str, TimeoutConfig]] = MappingProxyType(
    {
        "default": TimeoutConfig(),
        "search": TimeoutConfig.for_search(),
        "quick": TimeoutConfig.for_quick_check(),
        "download": TimeoutConfig.for_download(),
    }
)


class UnknownOperationError(KeyError, ValueError):
    """An operation name that has no timeout profile.

    Both a :class:`KeyError` (so :class:`TimeoutProfiles` behaves as a
    mapping) and a :class:`ValueError` (it is a bad argument). The message
    lists the known operations.
    """

    def __init__(self, operation: object, known: Iterator[str] | list[str]) -> None:
        self.operation = operation
        self.known = sorted(known)
        super().__init__(
            f"unknown operation {operation!r}; known operations: {', '.join(self.known)}"
        )

    def __str__(self) -> str:
        # KeyError.__str__ would quote the message like a key.
        return str(self.args[0])


def _check_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: an operation name must be a non-empty string, got {name!r}")
    return name


class TimeoutProfiles(Mapping[str, TimeoutConfig]):
    """An immutable mapping of operation name -> :class:`TimeoutConfig`.

    Always holds the four built-in profiles ``"default"``, ``"search"``,
    ``"quick"`` and ``"download"`` (the given ``profiles`` override or add to
    them). Unknown names: ``profiles["x"]`` and ``profiles.get("x")`` raise
    :class:`UnknownOperationError` (a ``KeyError`` and a ``ValueError``)
    listing the known names; ``profiles.get("x", fallback)`` returns the
    fallback; :meth:`resolve` falls back to ``"default"`` as the original
    plan's ``NetworkConfig.get_timeout`` does.

    Example::

        profiles = TimeoutProfiles.from_dict({
            "search": {"read": 50, "total": 100},             # partial: connect stays 5
            "upload": {"connect": 3, "read": 20, "total": 40},
        })
        profiles["search"].read      # 50.0
        profiles.get("upload")       # TimeoutConfig(connect=3.0, read=20.0, total=40.0)
        profiles.resolve("unknown")  # the "default" profile
        profiles.with_profile("export", TimeoutConfig(read=120, total=600))
    """

    __slots__ = ("_profiles",)

    def __init__(self, profiles: Mapping[str, TimeoutConfig] | None = None) -> None:
        merged = dict(_BUILTIN)
        for name, config in (profiles or {}).items():
            _check_name(name, "TimeoutProfiles")
            if not isinstance(config, TimeoutConfig):
                raise ValueError(
                    f"TimeoutProfiles[{name!r}] must be a TimeoutConfig, got {config!r}"
                )
            merged[name] = config
        self._profiles: Mapping[str, TimeoutConfig] = MappingProxyType(merged)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "profiles") -> TimeoutProfiles:
        """Load profiles from a parsed settings mapping (JSON, TOML, YAML ...).

        ``data`` maps operation names to mappings with any of ``connect``,
        ``read``, ``total`` and ``max_body_bytes`` (``null`` for those two
        means no limit), or to a :class:`TimeoutConfig`. Missing fields are
        taken from the built-in profile of the same name; for a new name, from
        the ``"default"`` profile (after ``data``'s own ``"default"`` entry is
        applied). Everything is validated; errors name the place, e.g.
        ``ValueError: profiles.search.reed is not a timeout field``; an entry
        that is not a mapping (``{"search": None}`` too) is refused.

        Example::

            TimeoutProfiles.from_dict(json.load(open("settings.json"))["timeouts"])
        """
        if not isinstance(cast(object, data), Mapping):
            raise ValueError(f"{path} must be a mapping of operation names, got {data!r}")
        for name in data:
            _check_name(name, path)
        default = _BUILTIN["default"]
        if "default" in data:
            default = _entry(data["default"], default, f"{path}.default")
        result: dict[str, TimeoutConfig] = {"default": default}
        for name, entry in data.items():
            if name == "default":
                continue
            base = _BUILTIN.get(name, default)
            result[name] = _entry(entry, base, f"{path}.{name}")
        return cls(result)

    def to_dict(self) -> dict[str, dict[str, float | int | None]]:
        """Every profile as plain data; ``from_dict(p.to_dict()) == p``."""
        return {name: config.to_dict() for name, config in self._profiles.items()}

    def __getitem__(self, operation: str) -> TimeoutConfig:
        try:
            return self._profiles[operation]
        except KeyError:
            raise UnknownOperationError(operation, list(self._profiles)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, operation: object) -> bool:
        return operation in self._profiles

    @overload
    def get(self, operation: str) -> TimeoutConfig: ...
    @overload
    def get(self, operation: str, default: TimeoutConfig | _T) -> TimeoutConfig | _T: ...
    def get(self, operation: str, default: Any = _MISSING) -> Any:
        """The profile for ``operation``.

        Without a fallback an unknown name raises :class:`UnknownOperationError`
        (a ``ValueError``) listing the known operations; with one, the fallback
        is returned, as for any mapping.
        """
        config = self._profiles.get(operation)
        if config is not None:
            return config
        if default is not _MISSING:
            return default
        raise UnknownOperationError(operation, list(self._profiles))

    def resolve(self, operation: str = "default") -> TimeoutConfig:
        """The profile for ``operation``, or the ``"default"`` profile if unknown."""
        return self._profiles.get(operation) or self._profiles["default"]

    def with_profile(self, name: str, config: TimeoutConfig) -> TimeoutProfiles:
        """A copy with ``name`` set to ``config`` (added or replaced)."""
        _check_name(name, "with_profile")
        return TimeoutProfiles({**self._profiles, name: config})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TimeoutProfiles):
            return dict(self._profiles) == dict(other._profiles)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._profiles.items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name!r}: {config!r}" for name, config in self._profiles.items())
        return f"TimeoutProfiles({{{inner}}})"


def _entry(entry: object, base: TimeoutConfig, path: str) -> TimeoutConfig:
    if isinstance(entry, TimeoutConfig):
        return entry
    if not isinstance(entry, Mapping):
        # None included: an entry left empty in a settings file is a mistake to
        # point at, not a silent "use the built-in values".
        raise ValueError(f"{path} must be a mapping of {_FIELDS}, got {_shown(entry)}")
    return TimeoutConfig.from_dict(entry, base=base, path=path)


class _ProfilesHolder:
    """The process-wide default profiles behind :class:`NetworkConfig`.

    One instance, replaced as a whole (never mutated), so readers need no
    lock: reading an attribute is atomic. Writers take the lock so that
    ``set`` can hand back what it replaced.
    """

    __slots__ = ("_lock", "profiles")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.profiles = TimeoutProfiles()

    def swap(self, profiles: TimeoutProfiles) -> TimeoutProfiles:
        if not isinstance(profiles, TimeoutProfiles):
            raise ValueError(f"profiles must be a TimeoutProfiles, got {profiles!r}")
        with self._lock:
            previous, self.profiles = self.profiles, profiles
        return previous


_DEFAULTS: Final = _ProfilesHolder()


class NetworkConfig:
    """The original plan's static entry point to the timeout profiles.

    It keeps no configuration of its own: every call reads the process-wide
    default :class:`TimeoutProfiles`, which :meth:`set_profiles` replaces
    (thread-safe; e.g. once at start-up from the settings file) and
    :meth:`use_profiles` replaces for the length of a ``with`` block (tests).
    Prefer passing a :class:`TimeoutProfiles` to the components that need one;
    this class exists so code written against the plan keeps working.

    Example::

        NetworkConfig.get_timeout("search")      # TimeoutConfig(connect=5.0, read=45.0, total=90.0)
        NetworkConfig.get_timeout("nonsense")    # the default profile, as in the plan
        NetworkConfig.set_profiles(TimeoutProfiles.from_dict(settings["timeouts"]))
        with NetworkConfig.use_profiles(TimeoutProfiles.from_dict({"quick": {"total": 1}})):
            ...
    """

    __slots__ = ()

    @staticmethod
    def get_timeout(operation_type: str = "default") -> TimeoutConfig:
        """The profile for ``operation_type`` ("default", "search", "quick",
        "download" or a configured name); an unknown name gets the default
        profile."""
        return _DEFAULTS.profiles.resolve(operation_type)

    @staticmethod
    def get_profiles() -> TimeoutProfiles:
        """The current process-wide profiles."""
        return _DEFAULTS.profiles

    @staticmethod
    def set_profiles(profiles: TimeoutProfiles) -> TimeoutProfiles:
        """Replace the process-wide profiles; returns the previous ones."""
        return _DEFAULTS.swap(profiles)

    @staticmethod
    @contextlib.contextmanager
    def use_profiles(profiles: TimeoutProfiles) -> Iterator[TimeoutProfiles]:
        """Use ``profiles`` process-wide inside a ``with`` block, then restore.

        The replacement is visible to every thread while the block runs.
        """
        previous = _DEFAULTS.swap(profiles)
        try:
            yield profiles
        finally:
            _DEFAULTS.swap(previous)


class Deadline:
    """A point in time by which a whole logical request must be done.

    Started when constructed, on an injected :class:`~connmgr.clock.Clock`
    (``SYSTEM_CLOCK`` by default; a :class:`~connmgr.testing.FakeClock` in
    tests). ``total=None`` never expires; ``total=0`` is already expired.

    Example::

        clock = FakeClock()
        d = Deadline(2.0, clock=clock)
        d.remaining()          # 2.0
        clock.advance(0.5)
        d.remaining(), d.elapsed(), d.expired     # (1.5, 0.5, False)
        clock.advance(5)
        d.remaining(), d.expired                  # (0.0, True)
    """

    __slots__ = ("_clock", "_expires_at", "_started_at", "_total")

    def __init__(
        self,
        total: float | None,
        *,
        clock: Clock | None = None,
        started_at: float | None = None,
    ) -> None:
        # A float that a TimeoutConfig already validated passes at once.
        if total is not None and not (type(total) is float and 0.0 <= total <= MAX_TIMEOUT):
            total = _seconds("Deadline total", total, allow_zero=True)
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._total = total
        if started_at is None:
            started_at = self._clock.now()
        self._started_at = started_at
        self._expires_at = None if total is None else started_at + total

    @property
    def clock(self) -> Clock:
        """The clock this deadline runs on."""
        return self._clock

    @property
    def total(self) -> float | None:
        """The budget in seconds, ``None`` when unlimited."""
        return self._total

    @property
    def started_at(self) -> float:
        """When the deadline was started, on its clock."""
        return self._started_at

    @property
    def expires_at(self) -> float | None:
        """When it expires, on its clock; ``None`` when unlimited."""
        return self._expires_at

    def remaining(self) -> float | None:
        """Seconds left (never negative); ``None`` when unlimited."""
        if self._expires_at is None:
            return None
        left = self._expires_at - self._clock.now()
        return left if left > 0.0 else 0.0

    @property
    def expired(self) -> bool:
        """Whether no time is left."""
        return self._expires_at is not None and self._clock.now() >= self._expires_at

    def elapsed(self) -> float:
        """Seconds since the deadline was started."""
        return self._clock.now() - self._started_at

    def fits(self, seconds: float) -> bool:
        """Whether waiting ``seconds`` would still end before the deadline."""
        left = self.remaining()
        return left is None or seconds < left

    def raise_if_expired(self, *, url: str | None = None, operation: str | None = None) -> None:
        """Raise :class:`connmgr.errors.DeadlineExceededError` if expired."""
        if self.expired:
            from connmgr.errors import DeadlineExceededError

            raise DeadlineExceededError(
                f"the deadline of {self._total:g} s passed after {self.elapsed():.3f} s",
                url=url,
                operation=operation,
                timeout=self._total,
            )

    def __repr__(self) -> str:
        if self._total is None:
            return "Deadline(total=None)"
        return f"Deadline(total={self._total:g}, remaining={self.remaining():.3f})"


def attempt_timeouts(config: TimeoutConfig, deadline: Deadline | None) -> tuple[float, float]:
    """The ``(connect, read)`` timeouts for one attempt (pure).

    Each is capped by the time the deadline has left, and never below
    :data:`MIN_ATTEMPT_TIMEOUT` (urllib3 treats 0 as "fail at once").

    Example::

        attempt_timeouts(TimeoutConfig(), Deadline(None))      # (5.0, 30.0)
        attempt_timeouts(TimeoutConfig(), deadline_with_2s_left)   # (2.0, 2.0)
    """
    remaining = deadline.remaining() if deadline is not None else None
    if remaining is None:
        return (config.connect, config.read)
    cap = remaining if remaining > MIN_ATTEMPT_TIMEOUT else MIN_ATTEMPT_TIMEOUT
    return (min(config.connect, cap), min(config.read, cap))


#: requests' ``timeout=`` as ``(connect, read)``; ``None`` means no timeout.
TimeoutPair = tuple[float | None, float | None]


class AttemptContext(tuple[float | None, float | None]):
    """The per-request deadline and cancel token, passed as requests' ``timeout=``.

    requests hands ``timeout`` to the adapter untouched (through redirects
    too), so this is how a caller gives
    :class:`~connmgr.transport.TimeoutHTTPAdapter` a deadline
    that spans several attempts, and a cancel token. It *is* the tuple
    ``(connect, read)`` (from ``timeout`` if given, else from ``config``), so it
    type-checks as requests' ``timeout`` and a plain ``HTTPAdapter`` uses those
    two values. Immutable; compares by identity.

    Example::

        ctx = AttemptContext(TimeoutConfig.for_search(), Deadline(90.0), cancel=token)
        session.get(url, timeout=ctx)          # one attempt; retries reuse ctx
        ctx = AttemptContext.start(TimeoutConfig(), timeout=(1, 2))   # deadline from config.total
    """

    config: TimeoutConfig
    deadline: Deadline
    cancel: CancelToken | None

    def __new__(
        cls,
        config: TimeoutConfig,
        deadline: Deadline,
        cancel: CancelToken | None = None,
        *,
        timeout: float | TimeoutPair | None = None,
    ) -> AttemptContext:
        if not isinstance(config, TimeoutConfig):
            raise ValueError(f"AttemptContext config must be a TimeoutConfig, got {config!r}")
        if not isinstance(deadline, Deadline):
            raise ValueError(f"AttemptContext deadline must be a Deadline, got {deadline!r}")
        if cancel is not None and not isinstance(cancel, CancelToken):
            raise ValueError(f"AttemptContext cancel must be a CancelToken, got {cancel!r}")
        pair = config.as_tuple() if timeout is None else timeout_pair(timeout)
        self = super().__new__(cls, pair)
        attrs = self.__dict__  # (__setattr__ refuses: immutable)
        attrs["config"] = config
        attrs["deadline"] = deadline
        attrs["cancel"] = cancel
        return self

    @classmethod
    def start(
        cls,
        config: TimeoutConfig | None = None,
        *,
        cancel: CancelToken | None = None,
        clock: Clock | None = None,
        timeout: float | TimeoutPair | None = None,
    ) -> AttemptContext:
        """Start a :class:`Deadline` of ``config.total`` now and wrap it.

        ``config`` defaults to ``NetworkConfig.get_timeout()``.
        """
        config = config if config is not None else NetworkConfig.get_timeout()
        return cls(config, Deadline(config.total, clock=clock), cancel, timeout=timeout)

    @property
    def connect(self) -> float | None:
        """The connect timeout of each attempt (before the deadline's cap)."""
        return self[0]

    @property
    def read(self) -> float | None:
        """The read timeout of each attempt (before the deadline's cap)."""
        return self[1]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("AttemptContext is immutable")

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return object.__hash__(self)

    def __repr__(self) -> str:
        return (
            f"AttemptContext(connect={self[0]!r}, read={self[1]!r}, "
            f"deadline={self.deadline!r}, cancel={self.cancel!r})"
        )


def timeout_pair(timeout: object) -> TimeoutPair:
    """A requests-style timeout (a number, or a ``(connect, read)`` pair) as a pair.

    Each value is ``None`` (no timeout) or a positive number of seconds up to
    :data:`MAX_TIMEOUT`; anything else raises :class:`ValueError` naming it.

    Example::

        timeout_pair(3)            # (3.0, 3.0)
        timeout_pair((1, None))    # (1.0, None)
    """
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            raise ValueError(f"timeout must be a number or a (connect, read) pair, got {timeout!r}")
        connect, read = timeout
        return (
            _seconds("connect timeout", connect, allow_none=True),
            _seconds("read timeout", read, allow_none=True),
        )
    value = _seconds("timeout", timeout, allow_none=True)
    return (value, value)
