"""Rate-limit headers: ``Retry-After`` and every common quota dialect, read into one value.

:func:`parse_rate_limit_headers` reads ``Retry-After``, ``X-RateLimit-*``,
``X-Rate-Limit-*``, the IETF ``RateLimit-*`` fields and the structured
``RateLimit`` / ``RateLimit-Policy`` into a :class:`RateLimitInfo`, and never
raises. :func:`parse_retry_after` is the ``Retry-After`` reader on its own,
:class:`RateLimitParser` the original plan's dict-returning form.

A leaf: this module imports nothing of connmgr, so the error classifier and the
limiters can both build on it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import email.utils
import logging
import math
import re
import string
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from connmgr.frozen import explain_frozen

__all__ = [
    "MAX_SANE_COUNT",
    "MAX_SANE_DELAY",
    "HeaderSource",
    "RateLimitInfo",
    "RateLimitParser",
    "parse_rate_limit_headers",
    "parse_retry_after",
]

# The logger keeps the package's name: the docs tell users to raise `connmgr.ratelimit`.
logger = logging.getLogger("connmgr.ratelimit")

# ---------------------------------------------------------------------------
# Retry-After
# ---------------------------------------------------------------------------

# RFC 9110 delta-seconds is 1*DIGIT; a sign and a fraction are tolerated because
# servers in the wild send them ("1.5", "-1"), and reading them is harmless.
_DELTA_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


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


@explain_frozen
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
        # Still the server's word: "not for a very long time". Kept (as a year), so
        # that the caller's max_retry_after turns it into a long pause, never a retry.
        logger.debug("Retry-After: %r is over a year away; read as a year", value[:64])
        return MAX_SANE_DELAY
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
    if isinstance(headers, Mapping) and not any(
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
