"""Client-side rate limiting: a fair GCRA limiter, per-origin limits, header parsing.

(Being built: this first piece is :func:`parse_retry_after`, which the error and
retry modules import.)
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import logging
import math
import re
import time

__all__ = ["parse_retry_after"]

logger = logging.getLogger(__name__)

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
    machine caps ``resume_at`` at ``max_retry_after``).

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
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        logger.debug("Retry-After: neither delta-seconds nor an HTTP-date: %r", text[:64])
        return None
    try:
        # parsedate_to_datetime returns a naive datetime for "-0000": RFC 5322
        # says that means UTC with unknown origin, which is what HTTP-dates are.
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        epoch = when.timestamp()
    except (OverflowError, ValueError, OSError):
        logger.debug("Retry-After: date out of range: %r", text[:64])
        return None
    current = time.time() if now is None else now
    delta = epoch - current
    if not math.isfinite(delta):
        logger.debug("Retry-After: not a finite delay: %r", text[:64])
        return None
    return max(0.0, delta)
