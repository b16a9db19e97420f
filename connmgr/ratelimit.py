"""Client-side rate limiting: a fair GCRA limiter, per-origin limits, header parsing.

Four pieces, each usable alone:

- :class:`RateLimiter` paces requests with the Generic Cell Rate Algorithm
  (GCRA): one "theoretical arrival time" per limiter, so memory does not grow
  with the number of requests. Waiting callers are served first come, first
  served; waits are cancellable, bounded by a timeout decided up front, and run
  on an injected :class:`~connmgr.clock.Clock`.
- :class:`AdaptiveRateLimiter` adds what the server says: ``Retry-After`` and
  quota headers pause or spread requests, and a 429 without usable headers cuts
  the rate, which then recovers toward the last rate that did not throttle.
- :class:`OriginRateLimits` gives every origin (``scheme://host:port``, see
  :func:`origin_of`) its own limiter, with a default and per-host overrides.
- :func:`parse_rate_limit_headers` reads every common dialect (``Retry-After``,
  ``X-RateLimit-*``, ``X-Rate-Limit-*``, the IETF ``RateLimit-*`` fields and the
  structured ``RateLimit`` / ``RateLimit-Policy``) into a :class:`RateLimitInfo`,
  and never raises.

Example::

    limits = OriginRateLimits(default=RateLimit(max_requests=10, time_window=1.0))
    limiter = limits.for_origin(origin_of(url))
    if not limiter.wait(timeout=5.0, cancel=token):
        raise RateLimitError(retry_after=limiter.get_wait_time())
    response = session.get(url)
    limiter.record_response(response.status_code, parse_rate_limit_headers(response.headers))

See ``docs/rate-limiting.md`` for the algorithm, the dialects and the adaptive rule.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import email.utils
import logging
import math
import re
import string
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict

from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock, SystemClock, interruptible_sleep

__all__ = [
    "AdaptivePolicy",
    "AdaptiveRate",
    "AdaptiveRateLimiter",
    "LimiterStatus",
    "OriginRateLimits",
    "RateLimit",
    "RateLimitInfo",
    "RateLimitParser",
    "RateLimiter",
    "origin_of",
    "parse_rate_limit_headers",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# Retry-After
# ---------------------------------------------------------------------------

# RFC 9110 delta-seconds is 1*DIGIT; a sign and a fraction are tolerated because
# servers in the wild send them ("1.5", "-1"), and reading them is harmless.
_DELTA_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _cancelled(token: CancelToken) -> Exception:
    # Function-level: connmgr.errors imports this module's header parsers. Once
    # they live in a leaf module of their own this import moves to the top.
    from connmgr.errors import RequestCancelledError

    return RequestCancelledError.from_token(token)


def parse_retry_after(value: str, *, now: float | None = None) -> float | None:
    """Read a ``Retry-After`` value as seconds to wait from ``now``.

    Both forms of RFC 9110 §10.2.3 are understood: delta-seconds (``"120"``) and
    an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``). ``now`` is wall-clock
    epoch seconds (default ``time.time()``); it is only used for the date form.
    A negative result (a date in the past, ``"-3"``) is ``0.0``. Anything that is
    neither form (empty, garbage, NaN, infinity, a date without a year) gives
    ``None`` and a debug log line. Never raises.

    The result is not capped: callers bound it by their own policy (the state
    machine caps ``resume_at`` at ``max_retry_after``; :func:`parse_rate_limit_headers`
    ignores values over a year).

    Example::

        >>> parse_retry_after("120")
        120.0
        >>> parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=30.0)
        30.0
        >>> parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=90.0)
        0.0
        >>> parse_retry_after("soon") is None
        True
    """
    try:
        text = value.strip()
    except AttributeError:
        logger.debug("Retry-After: not a string: %r", value)
        return None
    if not text:
        logger.debug("Retry-After: empty value")
        return None
    if _DELTA_RE.fullmatch(text):
        seconds = float(text)
        if not math.isfinite(seconds):
            logger.debug("Retry-After: not a finite number: %r", text[:64])
            return None
        return max(0.0, seconds)
    epoch = _http_date_epoch(text)
    if epoch is None:
        logger.debug("Retry-After: neither delta-seconds nor an HTTP-date: %r", text[:64])
        return None
    current = time.time() if now is None else now
    delta = epoch - current
    if not math.isfinite(delta):
        logger.debug("Retry-After: not a finite delay: %r", text[:64])
        return None
    return max(0.0, delta)


def _http_date_epoch(text: str) -> float | None:
    """Epoch seconds of an HTTP-date (any of the three RFC 9110 forms), or ``None``."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        # parsedate_to_datetime returns a naive datetime for "-0000" and for the
        # asctime form: RFC 9110 dates are always UTC.
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        return when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


# ---------------------------------------------------------------------------
# Structured Field Values (RFC 9651), only as much as the RateLimit fields need
# ---------------------------------------------------------------------------

_Bare: TypeAlias = int | float | str | bytes | bool
_Params: TypeAlias = dict[str, _Bare]
_Member: TypeAlias = tuple[_Bare | list[tuple[_Bare, _Params]], _Params]


class _SFError(ValueError):
    """A structured field value that does not parse; the field is then ignored."""


_TOKEN_FIRST: Final = frozenset(string.ascii_letters + "*")
_TCHAR: Final = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~:/")
_KEY_FIRST: Final = frozenset(string.ascii_lowercase + "*")
_KEY_CHAR: Final = frozenset(string.ascii_lowercase + string.digits + "_-.*")
_BASE64: Final = frozenset(string.ascii_letters + string.digits + "+/=")


class _SFParser:
    """A small recursive-descent parser for RFC 9651 Lists and Dictionaries.

    Lenient in one way only: parameter and dictionary keys are lower-cased
    before they are checked, because ``R=50`` is a plain mistake, not an attack.
    """

    __slots__ = ("i", "s")

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def _peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def _ows(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def _sp(self) -> None:
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1

    def _more(self) -> bool:
        """Consume the comma after an item; ``False`` at the end of the field."""
        self._ows()
        if self.i >= len(self.s):
            return False
        if self.s[self.i] != ",":
            raise _SFError(f"expected ',' at {self.i}")
        self.i += 1
        self._ows()
        if self.i >= len(self.s):
            raise _SFError("trailing comma")
        return True

    def parse_list(self) -> list[_Member]:
        self._sp()
        members: list[_Member] = []
        while self.i < len(self.s):
            members.append(self._member())
            if not self._more():
                break
        return members

    def parse_dict(self) -> dict[str, _Member]:
        self._sp()
        result: dict[str, _Member] = {}
        while self.i < len(self.s):
            key = self._key()
            if self._peek() == "=":
                self.i += 1
                result[key] = self._member()
            else:
                result[key] = (True, self._params())
            if not self._more():
                break
        return result

    def _member(self) -> _Member:
        if self._peek() == "(":
            self.i += 1
            inner: list[tuple[_Bare, _Params]] = []
            while True:
                self._sp()
                if self._peek() == ")":
                    self.i += 1
                    return inner, self._params()
                inner.append((self._bare(), self._params()))
                if self._peek() not in (" ", ")"):
                    raise _SFError("bad inner list")
        return self._bare(), self._params()

    def _params(self) -> _Params:
        params: _Params = {}
        while self._peek() == ";":
            self.i += 1
            self._sp()
            key = self._key()
            value: _Bare = True
            if self._peek() == "=":
                self.i += 1
                value = self._bare()
            params[key] = value
        return params

    def _key(self) -> str:
        start = self.i
        if self._peek().lower() not in _KEY_FIRST or not self._peek():
            raise _SFError(f"bad key at {start}")
        while self.i < len(self.s) and self.s[self.i].lower() in _KEY_CHAR:
            self.i += 1
        return self.s[start : self.i].lower()

    def _bare(self) -> _Bare:
        c = self._peek()
        if c == "-" or c.isdigit():
            return self._number()
        if c == '"':
            return self._string()
        if c == ":":
            return self._bytes()
        if c == "?":
            value = self.s[self.i + 1 : self.i + 2]
            if value not in ("0", "1"):
                raise _SFError("bad boolean")
            self.i += 2
            return value == "1"
        if c == "@":
            self.i += 1
            number = self._number()
            if not isinstance(number, int):
                raise _SFError("bad date")
            return number
        if c and c in _TOKEN_FIRST:
            start = self.i
            self.i += 1
            while self.i < len(self.s) and self.s[self.i] in _TCHAR:
                self.i += 1
            return self.s[start : self.i]
        raise _SFError(f"unexpected {c!r} at {self.i}")

    def _number(self) -> int | float:
        m = re.compile(r"-?(\d{1,15})(?:\.(\d{1,3}))?").match(self.s, self.i)
        if m is None:
            raise _SFError("bad number")
        if m.group(2) is not None and len(m.group(1)) > 12:
            raise _SFError("decimal too long")
        after = m.end()
        if after < len(self.s) and (self.s[after].isdigit() or self.s[after] == "."):
            raise _SFError("number too long")
        self.i = after
        return float(m.group(0)) if m.group(2) is not None else int(m.group(0))

    def _string(self) -> str:
        self.i += 1
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "\\":
                if self._peek() not in ('"', "\\"):
                    raise _SFError("bad escape")
                out.append(self.s[self.i])
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif not (" " <= c <= "~"):
                raise _SFError("bad string character")
            else:
                out.append(c)
        raise _SFError("unterminated string")

    def _bytes(self) -> bytes:
        end = self.s.find(":", self.i + 1)
        if end < 0:
            raise _SFError("unterminated byte sequence")
        body = self.s[self.i + 1 : end]
        if not set(body) <= _BASE64:
            raise _SFError("bad byte sequence")
        self.i = end + 1
        return body.encode("ascii")


def _sf_list(value: str) -> list[_Member] | None:
    try:
        return _SFParser(value).parse_list()
    except _SFError as exc:
        logger.debug("rate-limit header: malformed structured list %r (%s)", value[:80], exc)
        return None


def _sf_dict(value: str) -> dict[str, _Member] | None:
    try:
        return _SFParser(value).parse_dict()
    except _SFError as exc:
        logger.debug("rate-limit header: malformed structured dict %r (%s)", value[:80], exc)
        return None


# ---------------------------------------------------------------------------
# Rate-limit headers
# ---------------------------------------------------------------------------

#: Values that would make a client wait longer than this are misreadings, not advice.
MAX_SANE_DELAY: Final = 366 * 24 * 3600.0
#: Larger counts are not quotas any server means; they are ignored.
MAX_SANE_COUNT: Final = 10**12
# An X-RateLimit-Reset at or above this is a Unix timestamp (2001-09-09), below it
# a delta: no API resets a quota more than 31 years from now.
_EPOCH_THRESHOLD: Final = 1e9
_EPOCH_MS_THRESHOLD: Final = 1e12

#: What :func:`parse_rate_limit_headers` reads: any mapping, or (name, value) pairs.
HeaderSource: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitInfo:
    """What a response's headers say about the client's quota.

    Every field is optional; ``None`` means the headers did not say (or said
    something malformed, which was logged at debug and ignored).

    - ``limit``: requests allowed in the quota window;
    - ``remaining``: requests left in the current window;
    - ``reset_after``: seconds from now until the window resets (``remaining``
      is refilled);
    - ``retry_after``: seconds from now before the next request (``Retry-After``);
    - ``window``: length of the quota window in seconds, when a policy says it;
    - ``policy``: the structured policy's name (``RateLimit: "name";r=..``);
    - ``dialect``: which header family was read: ``"ratelimit"`` (structured,
      draft-ietf-httpapi-ratelimit-headers-08 and later), ``"ratelimit-draft07"``
      (``RateLimit: limit=.., remaining=.., reset=..``), ``"ratelimit-fields"``
      (``RateLimit-Limit/-Remaining/-Reset``), ``"x-ratelimit"``,
      ``"x-rate-limit"``, or ``"retry-after"`` when only ``Retry-After`` was there.

    Example::

        >>> info = parse_rate_limit_headers(
        ...     {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"})
        >>> (info.remaining, info.reset_after, info.dialect)
        (0, 30.0, 'x-ratelimit')
        >>> info.exhausted
        True
    """

    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    retry_after: float | None = None
    window: float | None = None
    policy: str | None = None
    dialect: str = "retry-after"

    @property
    def exhausted(self) -> bool:
        """Whether the headers say no request is left in this window."""
        return self.remaining is not None and self.remaining <= 0

    @property
    def has_quota(self) -> bool:
        """Whether the headers carry quota information (``remaining``), not only a delay."""
        return self.remaining is not None


#: Every header name any dialect reads starts with one of these (lower-cased).
_RATE_LIMIT_PREFIXES: Final = ("retry-after", "ratelimit", "x-ratelimit", "x-rate-limit")
#: Every header name the parsers below read (lower case).
_RATE_LIMIT_NAMES: Final = frozenset(
    {"retry-after", "ratelimit", "ratelimit-policy"}
    | {
        prefix + suffix
        for prefix in ("ratelimit", "x-ratelimit", "x-rate-limit")
        for suffix in ("-limit", "-remaining", "-reset", "-reset-after", "-used")
    }
)


def _header_map(headers: object) -> dict[str, str]:
    """Lower-cased name -> value; repeated fields joined by ``", "`` (RFC 9110 §5.3)."""
    result: dict[str, str] = {}
    items: Iterable[Any]
    if isinstance(headers, Mapping) or callable(getattr(headers, "items", None)):
        items = headers.items()  # type: ignore[attr-defined]
    else:
        items = headers  # type: ignore[assignment]
    for pair in items:
        try:
            name, value = pair
        except (TypeError, ValueError):
            continue
        if not isinstance(name, str):
            continue
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str):
            continue
        key = name.strip().lower()
        result[key] = f"{result[key]}, {value}" if key in result else value
    return result


def _first_element(value: str) -> str:
    """The first comma-separated element without its ``;params``: ``"10, 10;w=1"`` -> ``"10"``."""
    return value.split(",", 1)[0].split(";", 1)[0].strip()


def _count(name: str, value: str | None) -> int | None:
    """A non-negative request count, or ``None`` (logged) when absent or not sane."""
    if value is None:
        return None
    text = _first_element(value)
    try:
        number = float(text)
    except ValueError:
        logger.debug("rate-limit header %s: not a number: %r", name, value[:64])
        return None
    if not math.isfinite(number) or number < 0 or number > MAX_SANE_COUNT:
        logger.debug("rate-limit header %s: ignored out-of-range value %r", name, value[:64])
        return None
    return math.floor(number)


def _reset_seconds(name: str, value: str | None, now: float, *, epoch_ok: bool) -> float | None:
    """Seconds until a reset, reading epochs (s or ms) and HTTP-dates; ``None`` if not sane."""
    if value is None:
        return None
    text = _first_element(value)
    try:
        number = float(text)
    except ValueError:
        epoch = _http_date_epoch(value.strip())
        if epoch is None:
            logger.debug("rate-limit header %s: not a number or date: %r", name, value[:64])
            return None
        number, epoch_ok = epoch, True
    else:
        if not math.isfinite(number):
            logger.debug("rate-limit header %s: not finite: %r", name, value[:64])
            return None
        if number < 0:
            logger.debug("rate-limit header %s: negative %r ignored", name, value[:64])
            return None
    if epoch_ok and number >= _EPOCH_MS_THRESHOLD:
        seconds = number / 1000.0 - now
    elif epoch_ok and number >= _EPOCH_THRESHOLD:
        seconds = number - now
    else:
        seconds = number
    if seconds > MAX_SANE_DELAY:
        logger.debug("rate-limit header %s: %r is over a year away; ignored", name, value[:64])
        return None
    return max(0.0, seconds)


def _retry_after_header(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    seconds = parse_retry_after(value, now=now)
    if seconds is not None and seconds > MAX_SANE_DELAY:
        logger.debug("Retry-After: %r is over a year away; ignored", value[:64])
        return None
    return seconds


def _sf_int(value: _Bare | None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_SANE_COUNT else None


def _structured(h: Mapping[str, str]) -> RateLimitInfo | None:
    """``RateLimit: "name";r=..;t=..`` with ``RateLimit-Policy: "name";q=..;w=..`` (draft 08+)."""
    raw = h.get("ratelimit")
    if raw is None:
        return None
    members = _sf_list(raw)
    if not members:
        return None
    policies: dict[str, _Params] = {}
    raw_policy = h.get("ratelimit-policy")
    if raw_policy is not None:
        for item, params in _sf_list(raw_policy) or []:
            if isinstance(item, str):
                policies[item] = params
    best: tuple[float, str, int, int | None] | None = None
    for item, params in members:
        if not isinstance(item, str):
            continue
        r = _sf_int(params.get("r"))
        if r is None:
            logger.debug("RateLimit: item %r without a usable r; ignored", item)
            continue
        t = _sf_int(params.get("t"))
        if t is not None and t > MAX_SANE_DELAY:
            t = None
        # The most restrictive service limit wins: none left, then the fewest per second.
        if r == 0:
            key = -1.0 - (t or 0)
        elif t:
            key = r / t
        else:
            key = float(r)
        if best is None or key < best[0]:
            best = (key, item, r, t)
    if best is None:
        return None
    _, name, remaining, reset = best
    policy = policies.get(name, {})
    limit = _sf_int(policy.get("q"))
    window = _sf_int(policy.get("w"))
    return RateLimitInfo(
        limit=limit,
        remaining=remaining,
        reset_after=float(reset) if reset is not None else None,
        window=float(window) if window else None,
        policy=name,
        dialect="ratelimit",
    )


def _draft07(h: Mapping[str, str]) -> RateLimitInfo | None:
    """``RateLimit: limit=100, remaining=50, reset=30`` (draft 07)."""
    raw = h.get("ratelimit")
    if raw is None or "remaining" not in raw.lower():
        return None
    members = _sf_dict(raw)
    if not members:
        return None

    def number(key: str) -> int | None:
        member = members.get(key)
        if member is None or isinstance(member[0], list):
            return None
        return _sf_int(member[0])

    remaining = number("remaining")
    if remaining is None:
        return None
    reset = number("reset")
    return RateLimitInfo(
        limit=number("limit"),
        remaining=remaining,
        reset_after=float(reset) if reset is not None and reset <= MAX_SANE_DELAY else None,
        dialect="ratelimit-draft07",
    )


def _window_of(limit_value: str, limit: int | None) -> float | None:
    """``RateLimit-Limit: 10, 10;w=1, 50;w=60`` -> the window of the policy equal to the limit."""
    members = _sf_list(limit_value) if ";" in limit_value else None
    for item, params in members or []:
        w = _sf_int(params.get("w"))
        if item == limit and w:
            return float(w)
    return None


def _fields(h: Mapping[str, str], prefix: str, dialect: str, now: float) -> RateLimitInfo | None:
    """``{prefix}-Limit/-Remaining/-Reset`` (+ ``-Reset-After``, ``-Used``) in one family."""
    limit_raw = h.get(prefix + "-limit")
    remaining_raw = h.get(prefix + "-remaining")
    reset_raw = h.get(prefix + "-reset")
    after_raw = h.get(prefix + "-reset-after")
    used_raw = h.get(prefix + "-used")
    if limit_raw is None and remaining_raw is None and reset_raw is None and after_raw is None:
        return None
    limit = _count(prefix + "-limit", limit_raw)
    remaining = _count(prefix + "-remaining", remaining_raw)
    if remaining is None and limit is not None and used_raw is not None:
        used = _count(prefix + "-used", used_raw)
        remaining = max(0, limit - used) if used is not None else None
    # Discord-style Reset-After is always a delta and more precise; prefer it.
    reset = _reset_seconds(prefix + "-reset-after", after_raw, now, epoch_ok=False)
    if reset is None:
        reset = _reset_seconds(prefix + "-reset", reset_raw, now, epoch_ok=True)
    window = _window_of(limit_raw, limit) if limit_raw is not None else None
    if limit is None and remaining is None and reset is None:
        return None
    return RateLimitInfo(
        limit=limit, remaining=remaining, reset_after=reset, window=window, dialect=dialect
    )


def parse_rate_limit_headers(
    headers: HeaderSource, now: float | None = None
) -> RateLimitInfo | None:
    """Read a response's rate-limit headers, in any common dialect, or ``None``.

    ``headers`` is any mapping (``requests``' case-insensitive dict, a plain dict
    with any capitalisation) or an iterable of ``(name, value)`` pairs. ``now``
    is wall-clock epoch seconds (default ``time.time()``), used to turn reset
    timestamps and HTTP-dates into seconds from now.

    Dialects, newest first (the first that yields a usable value wins;
    ``Retry-After`` is read alongside any of them):

    - ``RateLimit: "default";r=50;t=30`` with ``RateLimit-Policy: "default";q=100;w=60``
      (draft-ietf-httpapi-ratelimit-headers-08 and later); with several
      policies the most restrictive service limit is taken;
    - ``RateLimit: limit=100, remaining=50, reset=30`` (draft 07);
    - ``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset`` (drafts up to 06);
    - ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (+ ``-Reset-After``, ``-Used``);
    - ``X-Rate-Limit-Limit`` / ``-Remaining`` / ``-Reset``;
    - ``Retry-After`` as delta-seconds or an HTTP-date.

    A reset value is read as a Unix timestamp when it is plainly one (at least
    10^9, i.e. after 2001; 10^12 and above as milliseconds), else as seconds
    from now; a timestamp in the past gives 0. Malformed, negative or absurd
    values (a count above 10^12, a delay over a year) are ignored with a debug
    log line. Never raises.

    Example::

        >>> parse_rate_limit_headers({"Retry-After": "7"}).retry_after
        7.0
        >>> info = parse_rate_limit_headers({"X-RateLimit-Reset": "1700000060"}, now=1700000000)
        >>> info.reset_after
        60.0
        >>> info = parse_rate_limit_headers(
        ...     {"RateLimit": '"default";r=50;t=30', "RateLimit-Policy": '"default";q=100;w=60'})
        >>> (info.limit, info.remaining, info.reset_after, info.window)
        (100, 50, 30.0, 60.0)
    """
    # The common case, which every response pays for: no header of ours.
    if type(headers) is CaseInsensitiveDict:
        # requests' headers keep their lower-cased names as keys of _store: one set test.
        if headers._store.keys().isdisjoint(_RATE_LIMIT_NAMES):  # type: ignore[attr-defined]
            return None
    elif isinstance(headers, Mapping) and not any(
        isinstance(name, str) and name.lower().startswith(_RATE_LIMIT_PREFIXES) for name in headers
    ):
        return None
    try:
        h = _header_map(headers)
    except Exception:  # a broken mapping must not break a response path
        logger.debug("rate-limit headers: unreadable headers object %r", type(headers))
        return None
    if not h:
        return None
    current = time.time() if now is None else now
    try:
        retry_after = _retry_after_header(h.get("retry-after"), current)
        quota = (
            _structured(h)
            or _draft07(h)
            or _fields(h, "ratelimit", "ratelimit-fields", current)
            or _fields(h, "x-ratelimit", "x-ratelimit", current)
            or _fields(h, "x-rate-limit", "x-rate-limit", current)
        )
    except Exception:  # defence in depth: the contract is "never raises"
        logger.debug("rate-limit headers: unexpected parse failure", exc_info=True)
        return None
    if quota is None:
        return RateLimitInfo(retry_after=retry_after) if retry_after is not None else None
    if retry_after is not None:
        quota = dataclasses.replace(quota, retry_after=retry_after)
    return quota


class RateLimitParser:
    """The plan's parser: rate-limit headers as a dict (every dialect, correctly).

    :meth:`parse_headers` returns ``{"remaining": int, "reset": float,
    "retry_after": float, "limit": int}`` with only the keys the headers gave,
    or ``None``. ``reset`` and ``retry_after`` are seconds from now (the plan
    passed raw header text to ``int()``, which broke on HTTP-dates and read
    epoch resets as delays of decades).

    Example::

        info = RateLimitParser.parse_headers(response)
        if info and info.get("remaining") == 0:
            wait(info.get("reset", 1.0))
    """

    @staticmethod
    def parse_headers(response: Any, now: float | None = None) -> dict[str, float | int] | None:
        """Parse ``response.headers`` (or a headers mapping) into the plan's dict form."""
        headers = getattr(response, "headers", response)
        info = parse_rate_limit_headers(headers, now=now)
        if info is None:
            return None
        result: dict[str, float | int] = {}
        if info.remaining is not None:
            result["remaining"] = info.remaining
        if info.reset_after is not None:
            result["reset"] = info.reset_after
        if info.retry_after is not None:
            result["retry_after"] = info.retry_after
        if info.limit is not None:
            result["limit"] = info.limit
        return result or None


# ---------------------------------------------------------------------------
# Origins
# ---------------------------------------------------------------------------

_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def origin_of(url: str) -> str:
    """The origin ``scheme://host:port`` of ``url``: the key of per-origin state.

    The scheme and host are lower-cased, the default port is filled in, user
    info (credentials) is dropped, IPv6 hosts keep their brackets. Raises
    ``ValueError`` for a URL without a scheme or host, or with a bad port.

    Example::

        >>> origin_of("HTTPS://User:secret@API.Example.com/search?q=x")
        'https://api.example.com:443'
        >>> origin_of("http://[::1]:8080/x")
        'http://[::1]:8080'
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname  # lower-cased, without user info or brackets
    if not scheme or not host:
        raise ValueError("not an absolute URL with a host (scheme://host/...)")
    port = parts.port  # raises ValueError for a bad port
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}" if port is not None else f"{scheme}://{host}"


# ---------------------------------------------------------------------------
# The limiter
# ---------------------------------------------------------------------------

# Float slack for "is it time yet": a sleep of exactly (slot - now) must not need a
# second, 1e-16 s sleep to get past rounding.
_EPS: Final = 1e-9


def _check_number(name: str, value: object, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or (positive and number <= 0) or number < 0:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def _check_burst(burst: object) -> int | None:
    if burst is None:
        return None
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(f"burst must be an int >= 1 or None, got {burst!r}")
    return burst


class _Waiter:
    """One blocked caller in the FIFO queue: a wake event, nothing per request."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()


class _RateMeter:
    """Events per second over roughly the last ``tau`` seconds, in O(1).

    An exponentially decaying count, divided by the decayed length of the
    time it has been counting: a steady rate ``r`` reads ``r`` from the first
    events on, instead of creeping up over ``tau`` (which would make the first
    throttle of a run underestimate the server by the meter's age).
    """

    __slots__ = ("_count", "_stamp", "_start", "_step", "_tau")

    def __init__(self, tau: float) -> None:
        self._tau = tau
        # Events closer than this to the last decay are counted as if they came then:
        # the rate reads at most 1% low, and a busy origin pays one exp() per step, not
        # one per request.
        self._step = tau / 128
        self._count = 0.0
        self._stamp = -math.inf
        self._start = -math.inf

    def add(self, now: float) -> None:
        if now - self._stamp < self._step:
            self._count += 1.0
            return
        count = self._decayed(now)
        if count < 0.01:
            self._start = now
        self._count = count + 1.0
        self._stamp = now

    def _decayed(self, now: float) -> float:
        if self._count == 0.0:
            return 0.0
        return self._count * math.exp(-max(0.0, now - self._stamp) / self._tau)

    def rate(self, now: float) -> float:
        count = self._decayed(now)
        if count == 0.0:
            return 0.0
        # A tenth of tau at least: two events a microsecond apart are not a rate.
        span = max(0.1 * self._tau, now - self._start)
        return count / (self._tau * -math.expm1(-span / self._tau))


@dataclass(frozen=True, slots=True)
class LimiterStatus:
    """A cheap snapshot of a limiter for the state machine and the UI.

    - ``wait``: seconds a caller arriving now would wait (0 = it would go at once);
    - ``resume_at``: the limiter clock's time of that slot, ``None`` when ``wait`` is 0;
    - ``rate`` / ``configured_rate``: effective and configured requests per second;
    - ``waiting``: callers blocked in :meth:`RateLimiter.wait` right now;
    - ``paused_until``: end of a pause the server asked for (``Retry-After``,
      quota exhausted), ``None`` when there is none;
    - ``reason``: why a caller would wait or the rate is below the configured
      one: ``"paused"`` (the server said wait), ``"adaptive"`` (slowed after
      429s), ``"headers"`` (spreading the remaining quota), ``"reduced"``
      (:meth:`RateLimiter.set_rate_factor` below 1, e.g. the degraded state),
      else ``"pacing"`` (the client's own limit) when it would wait, or ``"ready"``.

    Example::

        >>> LimiterStatus(wait=12.2, resume_at=1012.2, rate=0.5, configured_rate=10.0,
        ...               waiting=3, paused_until=1012.2, reason="paused").describe()
        'Rate limited by the server — resuming in 13 s'
    """

    wait: float
    resume_at: float | None
    rate: float
    configured_rate: float
    waiting: int
    paused_until: float | None
    reason: str

    @property
    def would_wait(self) -> bool:
        """Whether a caller arriving now would have to wait."""
        return self.wait > 0.0

    def describe(self) -> str:
        """One plain-words line for a status bar."""
        if self.wait <= 0.0:
            return "Ready"
        seconds = math.ceil(self.wait)
        if self.reason == "paused":
            return f"Rate limited by the server — resuming in {seconds} s"
        if self.wait < 1.0:
            return f"Pacing requests ({self.rate:.3g}/s)"
        if self.reason in ("adaptive", "headers"):
            return f"Slowing down for the server ({self.rate:.3g}/s) — next request in {seconds} s"
        return f"Rate limited — next request in {seconds} s"


class RateLimiter:
    """A thread-safe, fair rate limiter: ``max_requests`` per ``time_window`` seconds.

    The algorithm is GCRA (the Generic Cell Rate Algorithm, a token bucket
    written as one timestamp): requests are spaced at least
    ``time_window / max_requests`` seconds apart, and after a whole
    ``time_window`` with no request (nobody waiting) up to ``burst`` may go
    back to back; the burst is then paid for before pacing resumes, so any
    ``time_window``-long window holds at most ``max_requests`` grants at a
    constant rate. ``burst=None`` means ``max_requests`` (the original plan's
    window: ``max_requests`` at once, then no more until the window has
    passed); ``burst=1`` spaces every request evenly.

    Memory is O(1): a few floats, plus one small entry per *blocked thread*
    (never per request). Waiting callers are served first come, first served:
    a slot is only handed to the head of the queue, and a caller that gives up
    (timeout, cancel) leaves the queue, so nobody behind it pays for its slot.

    The plan's methods keep their meaning: :meth:`acquire` never blocks,
    :meth:`wait_if_needed` blocks until a slot is granted, :meth:`get_wait_time`
    says how long a caller would wait now. :meth:`wait` adds a timeout decided
    up front (``False`` at once when the slot would come too late) and a
    :class:`~connmgr.clock.CancelToken`.

    Example::

        limiter = RateLimiter(max_requests=10, time_window=1.0)
        for url in urls:
            limiter.wait_if_needed()          # at most 10 a second, fairly shared
            session.get(url)

        if not limiter.acquire():             # never blocks
            status_bar.show(f"busy, try again in {limiter.get_wait_time():.1f} s")
    """

    def __init__(
        self,
        max_requests: float = 10,
        time_window: float = 1.0,
        *,
        burst: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._max_requests = _check_number("max_requests", max_requests)
        self._time_window = _check_number("time_window", time_window)
        self._burst_setting = _check_burst(burst)
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        # The hot path (every request reads the time twice here): skip SystemClock.now's frame.
        self._now = time.monotonic if type(self._clock) is SystemClock else self._clock.now
        self._lock = threading.Lock()
        self._factor = 1.0
        # GCRA state. _tat: the theoretical arrival time, when the next paced
        # request is due. _last: the last grant. _epoch_*: the current burst.
        self._tat = -math.inf
        self._last = -math.inf
        self._epoch_open = False
        self._epoch_count = 0
        self._paused_until = -math.inf
        self._queue: deque[_Waiter] = deque()
        self._sent = _RateMeter(1.0)
        self._interval = 0.0
        self._burst = 1
        self._rate = 0.0
        self._reason: str | None = None
        with self._lock:
            self._update_rate_locked(self._clock.now())

    # -- configuration -----------------------------------------------------

    @property
    def max_requests(self) -> float:
        """Configured requests per :attr:`time_window` (an int when given as one)."""
        m = self._max_requests
        return int(m) if m.is_integer() else m

    @property
    def time_window(self) -> float:
        """Configured window in seconds."""
        return self._time_window

    @property
    def burst(self) -> int:
        """Requests that may currently go back to back after an idle window."""
        return self._burst

    @property
    def configured_rate(self) -> float:
        """``max_requests / time_window``: the ceiling the effective rate never exceeds."""
        return self._max_requests / self._time_window

    @property
    def rate(self) -> float:
        """The effective rate in requests per second (after factor and server feedback)."""
        with self._lock:
            self._refresh_locked(self._clock.now())
            return self._rate

    @property
    def rate_factor(self) -> float:
        """The factor set by :meth:`set_rate_factor` (1.0 by default)."""
        return self._factor

    @property
    def clock(self) -> Clock:
        """The clock this limiter reads and waits on."""
        return self._clock

    def set_rate(self, max_requests: float, time_window: float | None = None) -> None:
        """Change the configured rate at runtime; waiting callers are rescheduled.

        The debt already owed (how far ahead of the old pace the limiter is)
        is kept in requests, not seconds, so lowering the rate never lets a
        burst through and raising it takes effect at once.

        Example::

            limiter.set_rate(2, 1.0)     # from now on 2 requests a second
        """
        max_requests = _check_number("max_requests", max_requests)
        window = self._time_window if time_window is None else time_window
        window = _check_number("time_window", window)
        with self._lock:
            self._max_requests = max_requests
            self._time_window = window
            self._update_rate_locked(self._clock.now())

    def set_rate_factor(self, factor: float) -> None:
        """Scale the configured rate by ``factor`` in (0, 1] (the degraded state uses 0.5).

        Example::

            limiter.set_rate_factor(0.5)   # degraded: half the configured rate
            limiter.set_rate_factor(1.0)   # online again
        """
        value = _check_number("factor", factor)
        if value > 1.0:
            raise ValueError(f"factor must be in (0, 1], got {factor!r}")
        with self._lock:
            self._factor = value
            self._update_rate_locked(self._clock.now())

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (e.g. the server sent ``Retry-After``).

        Pauses only ever extend: a shorter pause than the current one is
        ignored. After a pause requests are paced (no burst) for one window.
        """
        seconds = _check_number("seconds", seconds, positive=False)
        with self._lock:
            now = self._clock.now()
            self._pause_until_locked(now + seconds, now)
            self._update_rate_locked(now)

    # -- hooks for subclasses ------------------------------------------------

    def _target_rate_locked(self, now: float) -> tuple[float, str | None]:
        """The rate to pace at and why it is below the configured one (``None``: it is not)."""
        rate = self.configured_rate * self._factor
        return rate, ("reduced" if self._factor < 1.0 else None)

    def _next_change_locked(self, now: float) -> float:
        """When the target rate will next change on its own (so sleepers re-check then)."""
        return math.inf

    def _refresh_locked(self, now: float) -> None:
        """Bring time-dependent state up to date (subclasses recompute the rate)."""

    # -- GCRA core (callers hold the lock) -------------------------------------

    def _update_rate_locked(self, now: float) -> None:
        rate, why = self._target_rate_locked(now)
        rate = max(rate, 1e-9)
        interval = 1.0 / rate
        if why is None:
            window_count = math.floor(rate * self._time_window + 1e-9)
            setting = self._burst_setting if self._burst_setting is not None else window_count
            burst = max(1, min(setting, window_count))
        else:
            # Slowed down for a reason (server feedback, degraded): no bursts.
            burst = 1
        old = self._interval
        self._rate = rate
        self._burst = burst
        self._reason = why
        if old and abs(interval - old) > 1e-12 * old:
            # Keep the debt in requests: (tat - base) seconds at the old pace is
            # (tat - base) / old requests, owed at the new pace.
            base = max(now, self._paused_until)
            if self._tat > base:
                self._tat = base + (self._tat - base) * (interval / old)
            self._epoch_open = False
            self._interval = interval
            self._wake_all_locked()
        else:
            self._interval = interval
            if self._epoch_count >= burst:
                self._epoch_open = False

    def _pause_until_locked(self, until: float, now: float) -> None:
        if until <= self._paused_until or until <= now:
            return
        self._paused_until = until
        # No burst right after a pause: pace for one window after it ends.
        self._last = max(self._last, until)
        self._epoch_open = False
        self._wake_all_locked()

    def _conformant_locked(self, now: float, fresh: bool) -> bool:
        if now < self._paused_until - _EPS:
            return False
        if now >= self._tat - _EPS:
            return True
        return fresh and self._epoch_open and self._epoch_count < self._burst

    def _grant_locked(self, now: float, fresh: bool) -> None:
        if now >= self._tat - _EPS:
            idle = now - self._last >= self._time_window - _EPS
            if fresh and idle and not self._queue:
                self._epoch_open = self._burst > 1
                self._epoch_count = 1
            else:
                self._epoch_open = False
                self._epoch_count = 0
            self._tat = max(now, self._paused_until) + self._interval
        else:
            # A burst grant: count the whole burst as if it went now, so pacing
            # resumes only once every burst request is a full interval behind.
            self._epoch_count += 1
            self._tat = now + self._epoch_count * self._interval
            if self._epoch_count >= self._burst:
                self._epoch_open = False
        self._last = now
        self._sent.add(now)

    def _slot_locked(self, now: float, position: int) -> float:
        """When the caller at ``position`` in the queue (0 = head) would be served."""
        head = max(self._tat, self._paused_until, now)
        return head + position * self._interval

    def _wake_all_locked(self) -> None:
        for waiter in self._queue:
            waiter.event.set()

    def _wait_time_locked(self, now: float) -> float:
        if not self._queue and self._conformant_locked(now, fresh=True):
            return 0.0
        return max(0.0, self._slot_locked(now, len(self._queue)) - now)

    # -- the plan's API ------------------------------------------------------------

    def acquire(self) -> bool:
        """Take a slot if one is free now; never blocks.

        Returns ``False`` when the rate is used up, or when other callers are
        already waiting (they were first). :meth:`get_wait_time` says how long
        until a slot frees up.
        """
        with self._lock:
            now = self._now()
            self._refresh_locked(now)
            if self._queue or not self._conformant_locked(now, fresh=True):
                return False
            self._grant_locked(now, fresh=True)
            return True

    def wait_if_needed(self) -> None:
        """Block until a slot is granted (first come, first served)."""
        self.wait()

    def get_wait_time(self) -> float:
        """Seconds a caller arriving now would wait for its slot (0.0 if none).

        Counts the callers already waiting ahead of it. Cheap (a lock and a
        few float operations), so a UI can poll it.
        """
        with self._lock:
            now = self._clock.now()
            self._refresh_locked(now)
            return self._wait_time_locked(now)

    # -- waiting -------------------------------------------------------------

    def wait(self, timeout: float | None = None, cancel: CancelToken | None = None) -> bool:
        """Wait for a slot, first come first served; ``True`` once granted.

        With a ``timeout`` the answer is decided up front: if the slot would
        come later than ``timeout`` seconds from now, ``False`` is returned at
        once, without waiting and without taking a place in the queue. If the
        slot moves later while waiting (the server asked for a pause, the rate
        dropped) so that it no longer fits, ``False`` is returned as soon as
        that is known. ``timeout=0`` is a non-blocking, queue-respecting try.

        A cancelled ``cancel`` token raises
        :class:`~connmgr.errors.RequestCancelledError` (at once if it already
        is, else within the clock's wake-up latency). A caller that leaves,
        by timeout or cancel, frees its place: callers behind it move up.

        Example::

            if not limiter.wait(timeout=deadline.remaining(), cancel=token):
                raise RateLimitError(retry_after=limiter.get_wait_time())
        """
        if timeout is not None and not (type(timeout) is float and timeout >= 0.0):
            if isinstance(timeout, bool) or math.isnan(timeout):
                raise ValueError(f"timeout must be a number of seconds or None, got {timeout!r}")
            timeout = max(0.0, float(timeout))
        if cancel is not None and cancel.cancelled:
            raise _cancelled(cancel)
        clock = self._clock
        with self._lock:
            now = self._now()
            self._refresh_locked(now)
            if not self._queue and self._conformant_locked(now, fresh=True):
                self._grant_locked(now, fresh=True)
                return True
            deadline = math.inf if timeout is None else now + timeout
            if self._slot_locked(now, len(self._queue)) > deadline + _EPS:
                return False
            me = _Waiter()
            self._queue.append(me)
        granted = False
        try:
            while True:
                with self._lock:
                    now = clock.now()
                    self._refresh_locked(now)
                    position = self._queue.index(me)
                    if position == 0 and self._conformant_locked(now, fresh=False):
                        self._queue.popleft()
                        self._grant_locked(now, fresh=False)
                        if self._queue:
                            self._queue[0].event.set()
                        granted = True
                        return True
                    slot = self._slot_locked(now, position)
                    if slot > deadline + _EPS:
                        return False
                    me.event.clear()
                    until = min(slot, self._next_change_locked(now))
                    # Not the head yet but already due: the head is late to wake;
                    # its grant will wake us. The bound only guards against a lost wake.
                    delay = until - now if until > now + _EPS else 0.05
                interruptible_sleep(clock, delay, cancel=cancel, wake=me.event)
                if cancel is not None and cancel.cancelled:
                    raise _cancelled(cancel)
        finally:
            if not granted:
                with self._lock:
                    self._leave_locked(me)

    def _leave_locked(self, waiter: _Waiter) -> None:
        try:
            self._queue.remove(waiter)
        except ValueError:
            return
        # Everyone behind moves up a place: wake them to re-plan their sleep.
        self._wake_all_locked()

    # -- status ---------------------------------------------------------------

    @property
    def resume_at(self) -> float | None:
        """The clock time a caller arriving now would be served, ``None`` if at once."""
        with self._lock:
            now = self._clock.now()
            self._refresh_locked(now)
            wait = self._wait_time_locked(now)
            return now + wait if wait > 0 else None

    @property
    def paused_until(self) -> float | None:
        """End of a server-requested pause on the limiter's clock, ``None`` if not paused."""
        with self._lock:
            until = self._paused_until
            return until if until > self._clock.now() else None

    @property
    def waiting(self) -> int:
        """How many callers are blocked in :meth:`wait` now."""
        return len(self._queue)

    def status(self) -> LimiterStatus:
        """A :class:`LimiterStatus` snapshot (cheap: one lock, no allocation beyond it)."""
        with self._lock:
            now = self._clock.now()
            self._refresh_locked(now)
            wait = self._wait_time_locked(now)
            paused = self._paused_until > now
            if paused:
                reason = "paused"
            elif self._reason is not None:
                reason = self._reason
            else:
                reason = "pacing" if wait > 0 else "ready"
            return LimiterStatus(
                wait=wait,
                resume_at=now + wait if wait > 0 else None,
                rate=self._rate,
                configured_rate=self.configured_rate,
                waiting=len(self._queue),
                paused_until=self._paused_until if paused else None,
                reason=reason,
            )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_requests={self.max_requests!r}, "
            f"time_window={self._time_window!r}, burst={self._burst_setting!r}, "
            f"rate={self._rate:.4g}/s)"
        )


# ---------------------------------------------------------------------------
# Adaptive pacing
# ---------------------------------------------------------------------------


def _check_fraction(name: str, value: object, *, high: float = 1.0) -> float:
    number = _check_number(name, value)
    if number >= high:
        raise ValueError(f"{name} must be in (0, {high:g}), got {value!r}")
    return number


@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptivePolicy:
    """How an :class:`AdaptiveRateLimiter` reacts to throttling without usable headers.

    - ``beta``: on a 429 the rate drops to at most ``beta`` × the rate that was
      throttled (botocore uses 0.7);
    - ``min_rate``: never below this many requests per second (botocore: 0.5);
    - ``margin``: the plateau sits this fraction below the estimated server
      capacity, so holding it does not throttle;
    - ``recover_time``: time constant (s) of the climb back to the plateau;
      95% of the way after three of them;
    - ``hold``: seconds at the plateau before probing above it; doubled (up to
      ``max_hold``) each time the server throttles again near the same rate;
    - ``probe_rate``: while probing, the rate grows by this fraction of the
      plateau per second, until the configured rate is reached;
    - ``decrease_cooldown``: at most one decrease per this many seconds (the
      429s of requests already in flight say nothing new);
    - ``max_pause``: cap in seconds on a pause asked by ``Retry-After`` or a
      quota reset (design.md's ``max_retry_after``);
    - ``measure_window``: the sending and success rates are measured over
      roughly this many seconds (exponentially decaying).

    Example::

        policy = AdaptivePolicy(beta=0.5, hold=10.0)
        limits = OriginRateLimits(adaptive_policy=policy)
    """

    beta: float = 0.7
    min_rate: float = 0.5
    margin: float = 0.05
    recover_time: float = 1.0
    hold: float = 5.0
    max_hold: float = 120.0
    probe_rate: float = 0.02
    decrease_cooldown: float = 0.5
    max_pause: float = 300.0
    measure_window: float = 1.0

    def __post_init__(self) -> None:
        _check_fraction("beta", self.beta)
        _check_number("min_rate", self.min_rate)
        _check_fraction("margin", self.margin, high=0.5)
        _check_number("recover_time", self.recover_time)
        _check_number("hold", self.hold, positive=False)
        _check_number("max_hold", self.max_hold, positive=False)
        if self.max_hold < self.hold:
            raise ValueError(f"max_hold must be >= hold, got {self.max_hold!r} < {self.hold!r}")
        _check_number("probe_rate", self.probe_rate)
        _check_number("decrease_cooldown", self.decrease_cooldown, positive=False)
        _check_number("max_pause", self.max_pause)
        _check_number("measure_window", self.measure_window)


class AdaptiveRate:
    """The pure decision behind adaptive pacing: a rate as a function of time.

    No locks, no clock: callers pass ``now`` and the measured rates. After a
    throttle at rate ``w`` with measured success rate ``s``:

    1. estimate the server's capacity ``c = min(w, s)`` (while throttled, the
       successes per second are what the server actually lets through);
    2. set the plateau ``p = (1 - margin) × c`` and drop to ``beta × c``
       (floored at ``min_rate``), so a server-side bucket can refill;
    3. climb back exponentially toward ``p`` (``recover_time``), hold it for
       ``hold`` seconds, then probe above it: ``p × (1 + x + x³)`` with
       ``x = probe_rate × seconds probing`` (gentle first, faster later);
    4. a new throttle near the same plateau doubles ``hold``: a stable server
       limit is probed ever more rarely, so 429s become rare, not periodic.

    ``rate(now, ceiling)`` is ``None`` once probing reaches the ceiling
    (configured rate): the adaptive limit is then lifted.

    Example::

        >>> a = AdaptiveRate(AdaptivePolicy())
        >>> a.on_throttle(0.0, sending_rate=30.0, success_rate=25.0, ceiling=100.0)
        17.5
        >>> round(a.rate(3.0, 100.0), 2)      # 95% of the way back to 0.95 x 25
        23.44
    """

    __slots__ = ("_active", "_hold", "_last_decrease", "_plateau", "_policy", "_start", "_t0")

    def __init__(self, policy: AdaptivePolicy) -> None:
        self._policy = policy
        self._active = False
        self._plateau = 0.0
        self._start = 0.0
        self._t0 = -math.inf
        self._hold = policy.hold
        self._last_decrease = -math.inf

    @property
    def active(self) -> bool:
        """Whether a throttle currently limits the rate."""
        return self._active

    @property
    def plateau(self) -> float | None:
        """The rate the controller climbs back to (estimated capacity less the margin)."""
        return self._plateau if self._active else None

    def rate(self, now: float, ceiling: float) -> float | None:
        """The adaptive limit at ``now``, or ``None`` when it no longer binds."""
        if not self._active:
            return None
        p = self._policy
        dt = max(0.0, now - self._t0)
        settle = 3.0 * p.recover_time + self._hold
        if dt <= settle:
            rate = self._plateau - (self._plateau - self._start) * math.exp(-dt / p.recover_time)
        else:
            # Linear at first, so a stable limit is approached gently; the cubic
            # term makes a long quiet probe speed up, so a low estimate or a
            # raised server limit is found in tens of seconds, not minutes.
            x = p.probe_rate * (dt - settle)
            rate = self._plateau * (1.0 + x + x * x * x)
        if rate >= ceiling:
            self._active = False
            return None
        return max(p.min_rate, rate)

    def on_throttle(
        self, now: float, *, sending_rate: float, success_rate: float, ceiling: float
    ) -> float | None:
        """Record a throttle; return the new rate (``None``: ignored, within the cooldown)."""
        p = self._policy
        if now - self._last_decrease < p.decrease_cooldown:
            return None
        current = self.rate(now, ceiling)
        limit = ceiling if current is None else current
        throttled_at = min(limit, sending_rate) if sending_rate > 0 else limit
        capacity = success_rate if 0 < success_rate < throttled_at else throttled_at
        plateau = max(p.min_rate, (1.0 - p.margin) * capacity)
        if self._active and abs(plateau - self._plateau) <= 0.15 * self._plateau:
            self._hold = min(p.max_hold, max(p.hold, self._hold * 2.0))
        else:
            self._hold = p.hold
        self._plateau = min(plateau, ceiling)
        # Dip below the capacity so a server-side bucket can refill, then climb.
        self._start = max(p.min_rate, min(p.beta * capacity, self._plateau))
        self._t0 = now
        self._last_decrease = now
        self._active = True
        return self._start

    def reset(self) -> None:
        """Forget every throttle."""
        self._active = False
        self._hold = self._policy.hold
        self._last_decrease = -math.inf


class AdaptiveRateLimiter(RateLimiter):
    """A :class:`RateLimiter` that listens to the server (one per origin).

    After each response the manager calls :meth:`record_response`:

    - ``Retry-After`` on a 429/503 pauses every caller until then (it takes
      precedence over quota headers, as the IETF draft says);
    - quota headers with nothing left (``remaining == 0``) pause until the reset;
    - quota headers with some left spread them: at most ``remaining /
      reset_after`` requests a second until the reset;
    - a 429 without quota headers cuts the rate (see :class:`AdaptiveRate`),
      which recovers gradually on its own, never above the configured rate.

    With ``adaptive=False`` server feedback is ignored (a fixed-rate limiter
    that still supports :meth:`set_rate_factor`). Pauses are capped at
    ``policy.max_pause`` seconds.

    Example::

        limiter = AdaptiveRateLimiter(10, 1.0)
        limiter.wait()
        r = session.get(url)
        limiter.record_response(r.status_code, parse_rate_limit_headers(r.headers))
        limiter.status().describe()     # e.g. 'Rate limited by the server — resuming in 12 s'
    """

    def __init__(
        self,
        max_requests: float = 10,
        time_window: float = 1.0,
        *,
        burst: int | None = None,
        clock: Clock | None = None,
        adaptive: bool = True,
        policy: AdaptivePolicy | None = None,
    ) -> None:
        self.adaptive = bool(adaptive)
        self.policy = policy if policy is not None else AdaptivePolicy()
        self._controller = AdaptiveRate(self.policy)
        self._succeeded = _RateMeter(self.policy.measure_window)
        self._header_rate: float | None = None
        self._header_until = -math.inf
        self._next_refresh = -math.inf
        super().__init__(max_requests, time_window, burst=burst, clock=clock)
        self._sent = _RateMeter(self.policy.measure_window)

    # -- rate -------------------------------------------------------------------

    def _target_rate_locked(self, now: float) -> tuple[float, str | None]:
        ceiling, why = super()._target_rate_locked(now)
        rate = ceiling
        adaptive = self._controller.rate(now, ceiling)
        if adaptive is not None and adaptive < rate:
            rate, why = adaptive, "adaptive"
        if self._header_rate is not None:
            if now < self._header_until:
                if self._header_rate < rate:
                    rate, why = self._header_rate, "headers"
            else:
                self._header_rate = None
        return rate, why

    def _next_change_locked(self, now: float) -> float:
        change = math.inf
        if self._header_rate is not None and self._header_until > now:
            change = self._header_until
        if self._controller.active:
            # The adaptive rate moves continuously; re-plan sleeps a few times a second.
            change = min(change, now + 0.25)
        return change

    def _refresh_locked(self, now: float) -> None:
        # The adaptive curve and header windows change with time alone; recompute
        # at most every 50 ms so a hot path pays a comparison, not an exp().
        if now >= self._next_refresh:
            self._next_refresh = now + 0.05
            self._update_rate_locked(now)

    # -- feedback ---------------------------------------------------------------

    def record_response(self, status: int, info: RateLimitInfo | None = None) -> None:
        """Feed one response's status and parsed headers into the pacing.

        ``info`` is :func:`parse_rate_limit_headers` of the response's headers
        (``None`` when it had none). Cheap; call it for every response,
        successes included (they drive the recovery).
        """
        with self._lock:
            now = self._now()
            throttled = status == 429 or (
                status == 503 and info is not None and info.retry_after is not None
            )
            if not throttled:
                self._succeeded.add(now)
                if info is None and status != 429:
                    # Nothing to pace by (the common case): the success is counted for
                    # the adaptive estimate, and wait() applies any time-based recovery.
                    return
            if not self.adaptive:
                return
            pause: float | None = None
            if info is not None:
                if throttled and info.retry_after is not None:
                    pause = info.retry_after
                if info.has_quota:
                    if info.exhausted:
                        if pause is None and info.reset_after is not None:
                            pause = info.reset_after
                    elif info.reset_after is not None and info.reset_after > 0:
                        remaining = info.remaining or 0
                        spread = remaining / info.reset_after
                        # One request per max_pause at the slowest: a quota that
                        # resets in a day must not stall the next call for hours.
                        self._header_rate = max(spread, 1.0 / self.policy.max_pause)
                        self._header_until = now + info.reset_after
            if pause is not None and pause > 0:
                if pause > self.policy.max_pause:
                    logger.debug("pause of %.1f s capped at %.1f s", pause, self.policy.max_pause)
                    pause = self.policy.max_pause
                self._pause_until_locked(now + pause, now)
            # A 429 is explained when quota headers came with it and said how
            # long to wait; otherwise the rate was too high and must come down.
            explained = info is not None and info.has_quota and pause is not None
            if status == 429 and not explained:
                ceiling = self.configured_rate * self._factor
                new = self._controller.on_throttle(
                    now,
                    sending_rate=self._sent.rate(now),
                    success_rate=self._succeeded.rate(now),
                    ceiling=ceiling,
                )
                if new is not None:
                    logger.debug(
                        "throttled without quota headers: rate %.3g/s, plateau %.3g/s",
                        new,
                        self._controller.plateau or new,
                    )
            self._update_rate_locked(now)
            self._next_refresh = now + 0.05

    def reset_feedback(self) -> None:
        """Forget what the server said (pauses, header pacing, adaptive cuts)."""
        with self._lock:
            now = self._clock.now()
            self._controller.reset()
            self._header_rate = None
            self._paused_until = -math.inf
            self._update_rate_locked(now)
            self._wake_all_locked()


# ---------------------------------------------------------------------------
# Per-origin limits
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """A rate-limit setting: ``max_requests`` per ``time_window`` seconds, optional ``burst``.

    Example::

        RateLimit(max_requests=10, time_window=1.0)            # the default
        RateLimit(max_requests=300, time_window=60.0, burst=5)  # 5/s, 5 at once at most
    """

    max_requests: float = 10
    time_window: float = 1.0
    burst: int | None = None

    def __post_init__(self) -> None:
        _check_number("max_requests", self.max_requests)
        _check_number("time_window", self.time_window)
        _check_burst(self.burst)

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.max_requests / self.time_window


class OriginRateLimits:
    """One :class:`AdaptiveRateLimiter` per origin, created on first use.

    ``overrides`` maps an origin or URL (``"https://api.example.com"``, port
    filled in) or a bare host name (``"api.example.com"``, any scheme and port)
    to its :class:`RateLimit`; every other origin gets ``default``. Traffic to
    one origin never waits on another's limit. Thread-safe.

    Example::

        limits = OriginRateLimits(
            default=RateLimit(max_requests=10, time_window=1.0),
            overrides={"https://api.example.com": RateLimit(max_requests=2, time_window=1.0)},
        )
        limits.for_origin("https://api.example.com:443").wait()
        limits.for_origin(origin_of("http://other.example/x")).rate     # 10.0
    """

    def __init__(
        self,
        default: RateLimit | None = None,
        overrides: Mapping[str, RateLimit] | None = None,
        *,
        adaptive: bool = True,
        clock: Clock | None = None,
        adaptive_policy: AdaptivePolicy | None = None,
    ) -> None:
        self.default = default if default is not None else RateLimit()
        self.adaptive = adaptive
        self.adaptive_policy = adaptive_policy if adaptive_policy is not None else AdaptivePolicy()
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._lock = threading.Lock()
        self._by_origin: dict[str, RateLimit] = {}
        self._by_host: dict[str, RateLimit] = {}
        self._limiters: dict[str, AdaptiveRateLimiter] = {}
        for key, limit in (overrides or {}).items():
            self._set_override(key, limit)

    def _set_override(self, key: str, limit: RateLimit) -> None:
        if not isinstance(limit, RateLimit):
            raise ValueError(f"overrides[{key!r}] must be a RateLimit, got {limit!r}")
        if "://" in key:
            self._by_origin[origin_of(key)] = limit
        else:
            self._by_host[key.strip().lower().rstrip(".")] = limit

    def limit_for(self, origin: str) -> RateLimit:
        """The :class:`RateLimit` configured for ``origin`` (an origin or any URL)."""
        key = self._key(origin)
        found = self._by_origin.get(key)
        if found is None:
            host = urlsplit(key).hostname or ""
            found = self._by_host.get(host, self.default)
        return found

    @staticmethod
    def _key(origin: str) -> str:
        return origin_of(origin)

    def for_origin(self, origin: str) -> AdaptiveRateLimiter:
        """The limiter of ``origin`` (or of a URL's origin), created on first use."""
        limiter = self._limiters.get(origin)  # the manager passes normalised origins
        if limiter is not None:
            return limiter
        key = self._key(origin)
        limiter = self._limiters.get(key)
        if limiter is not None:
            return limiter
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limit = self.limit_for(key)
                limiter = AdaptiveRateLimiter(
                    limit.max_requests,
                    limit.time_window,
                    burst=limit.burst,
                    clock=self._clock,
                    adaptive=self.adaptive,
                    policy=self.adaptive_policy,
                )
                self._limiters[key] = limiter
            return limiter

    def configure(self, origin: str, limit: RateLimit) -> None:
        """Set or change an override at runtime; an existing limiter adopts the new rate.

        ``origin`` is an origin/URL or a bare host name, as in ``overrides``.
        A changed burst applies to limiters created afterwards.
        """
        with self._lock:
            self._set_override(origin, limit)
            existing = list(self._limiters.items())
        for key, limiter in existing:
            if self.limit_for(key) is limit:
                limiter.set_rate(limit.max_requests, limit.time_window)

    def origins(self) -> list[str]:
        """The origins that have a limiter so far."""
        with self._lock:
            return list(self._limiters)

    def status(self) -> dict[str, LimiterStatus]:
        """A status snapshot of every origin's limiter, for the UI."""
        with self._lock:
            limiters = list(self._limiters.items())
        return {origin: limiter.status() for origin, limiter in limiters}

    def __contains__(self, origin: object) -> bool:
        if not isinstance(origin, str):
            return False
        try:
            return self._key(origin) in self._limiters
        except ValueError:
            return False

    def __len__(self) -> int:
        return len(self._limiters)

    def __repr__(self) -> str:
        overrides = len(self._by_origin) + len(self._by_host)
        return (
            f"OriginRateLimits(default={self.default!r}, overrides={overrides}, "
            f"origins={len(self._limiters)}, adaptive={self.adaptive})"
        )
