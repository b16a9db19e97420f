"""One quota for many hosts: GCRA as one atomic Lua script in Redis, on Redis's clock.

Every grant is a single ``EVALSHA`` of :data:`TAKE_SCRIPT`: the script reads
the key's hash, runs the same rules as :mod:`connmgr.quota.gcra` (kept in
step by a test that runs both on the same inputs), writes the hash back and
answers, all inside Redis, so no two clients can both take the last slot.
The clock is Redis's ``TIME``: hosts whose clocks disagree still agree on
the quota. A key's hash expires after ``ttl`` seconds without use.

Why a script of our own rather than a limiter library's Redis backend:
PyrateLimiter's Redis bucket and the ``limits`` package's Redis storage count
requests in windows (a sliding log, fixed or sliding-window counters); none
carries this GCRA's rule that a burst is paid back, and the rule must be the
same in every store so that switching stores changes who shares, not how
requests are paced. The script is short enough to mirror the Python rules
line by line.

The client is redis-py (extra ``quota``) with small socket timeouts and no
retries of its own: a dead Redis costs at most ``socket_timeout`` once per
``retry_interval`` (:mod:`connmgr.quota.shared`), then requests are limited
locally until it answers again.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from connmgr.quota.base import Answer, Feedback, Pace, QuotaStoreError
from connmgr.quota.shared import SharedStore

if TYPE_CHECKING:
    import redis

__all__ = ["FEEDBACK_SCRIPT", "PUBLISH_SCRIPT", "TAKE_SCRIPT", "RedisStore"]

# Lua numbers leave a script as integers (Redis truncates them): every float the
# scripts return or store goes through %.17g, and "-inf" ("never") reads back as nil.
_LUA_PRELUDE: Final = r"""
local NEVER = -math.huge
local EPS = 1e-9
local function num(x, default)
  -- HMGET gives false for a missing field; "-inf" does not parse: both are the default.
  if not x then return default end
  local n = tonumber(x)
  if n == nil then return default end
  return n
end
local function fmt(x) return string.format('%.17g', x) end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

#: KEYS[1]: the key's hash. ARGV: interval, burst, window, measure, fresh (0/1),
#: take (0/1), ttl (ms). Returns {wait, paused, version} as strings.
TAKE_SCRIPT: Final = (
    _LUA_PRELUDE
    + r"""
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local window, measure = tonumber(ARGV[3]), tonumber(ARGV[4])
local fresh, take = ARGV[5] == '1', ARGV[6] == '1'
local now = clock()
local f = redis.call('HMGET', KEYS[1], 'tat', 'last', 'eo', 'ec', 'pu', 'iv', 'sc', 'ss', 'st', 'v',
  'seen')
local tat, last = num(f[1], NEVER), num(f[2], NEVER)
local eo, ec = num(f[3], 0) == 1, num(f[4], 0)
local pu, iv = num(f[5], NEVER), num(f[6], nil)
local sc, ss, st = num(f[7], 0), num(f[8], NEVER), num(f[9], NEVER)
local version, seen = num(f[10], 0), num(f[11], NEVER)

-- a clock that stepped back moves the state with it
if now < seen then
  local shift = now - seen
  tat, last, pu, ss, st = tat + shift, last + shift, pu + shift, ss + shift, st + shift
end

-- settle: keep the debt in requests when the interval changed
if iv == nil then
  iv = interval
elseif math.abs(interval - iv) > 1e-12 * iv then
  if iv > 0 then
    local base = math.max(now, pu)
    if tat > base then tat = base + (tat - base) * (interval / iv) end
    eo = false
  end
  iv = interval
end

local conformant
if now < pu - EPS then
  conformant = false
elseif now >= tat - EPS then
  conformant = true
else
  conformant = fresh and eo and ec < burst
end

local wait
if take and conformant then
  if now >= tat - EPS then
    if fresh and now - last >= window - EPS then
      eo = burst > 1
      ec = 1
    else
      eo = false
      ec = 0
    end
    tat = math.max(now, pu) + interval
  else
    ec = ec + 1
    tat = now + ec * interval
    if ec >= burst then eo = false end
  end
  last = now
  if now - ss < measure / 128 then
    sc = sc + 1
  else
    local c = 0
    if sc ~= 0 then c = sc * math.exp(-math.max(0, now - ss) / measure) end
    if c < 0.01 then st = now end
    sc = c + 1
    ss = now
  end
  wait = 0
elseif (not take) and fresh and conformant then
  wait = 0
else
  wait = math.max(tat, pu, now) - now
end

redis.call('HSET', KEYS[1], 'tat', fmt(tat), 'last', fmt(last), 'eo', eo and 1 or 0, 'ec', ec,
  'pu', fmt(pu), 'iv', fmt(iv), 'sc', fmt(sc), 'ss', fmt(ss), 'st', fmt(st), 'seen', fmt(now))
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {fmt(wait), fmt(math.max(0, pu - now)), tostring(version)}
"""
)

#: KEYS[1]: the hash. ARGV: seconds (0 with ARGV[2] == 'clear' ends the pause), mode, ttl (ms).
_PAUSE_SCRIPT: Final = (
    _LUA_PRELUDE
    + r"""
local now = clock()
if ARGV[2] == 'clear' then
  redis.call('HSET', KEYS[1], 'pu', fmt(NEVER))
else
  local f = redis.call('HMGET', KEYS[1], 'pu', 'last')
  local pu, last = num(f[1], NEVER), num(f[2], NEVER)
  local resume = now + tonumber(ARGV[1])
  if resume > pu and resume > now then
    redis.call('HSET', KEYS[1], 'pu', fmt(resume), 'last', fmt(math.max(last, resume)), 'eo', 0)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
)

#: KEYS[1]: the hash. ARGV: measure. Returns the grant meter's rate as a string.
_SENT_SCRIPT: Final = (
    _LUA_PRELUDE
    + r"""
local now, measure = clock(), tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'sc', 'ss', 'st')
local sc, ss, st = num(f[1], 0), num(f[2], NEVER), num(f[3], NEVER)
if sc == 0 then return '0' end
local c = sc * math.exp(-math.max(0, now - ss) / measure)
if c == 0 then return '0' end
local span = math.max(0.1 * measure, now - st)
return fmt(c / (measure * (1 - math.exp(-span / measure))))
"""
)

#: KEYS[1]: the hash. Returns {version, now, plateau, start, hold, t0, dec, hrate, huntil}.
FEEDBACK_SCRIPT: Final = (
    _LUA_PRELUDE
    + r"""
local f = redis.call('HMGET', KEYS[1], 'v', 'fb', 'fp', 'fs', 'fh', 'ft', 'fd', 'fr', 'fu')
local out = {f[1] or '0', fmt(clock()), f[2] or '0'}
for i = 3, 9 do out[i + 1] = f[i] or '' end
return out
"""
)

#: KEYS[1]: the hash. ARGV: has (0/1), plateau, start, hold, since_throttle,
#: since_decrease, header_rate, header_left, ttl (ms); '' for none. Returns the new version.
PUBLISH_SCRIPT: Final = (
    _LUA_PRELUDE
    + r"""
local now = clock()
local function ago(x) if x == '' then return '' end return fmt(now - tonumber(x)) end
local function ahead(x) if x == '' then return '' end return fmt(now + tonumber(x)) end
local version = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'fb', ARGV[1], 'fp', ARGV[2], 'fs', ARGV[3], 'fh', ARGV[4],
  'ft', ago(ARGV[5]), 'fd', ago(ARGV[6]), 'fr', ARGV[7], 'fu', ahead(ARGV[8]))
redis.call('PEXPIRE', KEYS[1], ARGV[9])
return version
"""
)


def _arg(value: float | None) -> str:
    """A number for a script argument; ``''`` for none or infinity."""
    if value is None or math.isinf(value):
        return ""
    return repr(float(value))


def _opt(text: bytes | str) -> float | None:
    value = text.decode() if isinstance(text, bytes) else text
    return float(value) if value else None


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (
        f":{parts.port}" if parts.port else ""
    )
    return urlunsplit(parts._replace(netloc=netloc))


class RedisStore(SharedStore):
    """A quota shared by every host that reaches one Redis server.

    ``url`` is a redis-py URL (``redis://[:password@]host:port/db``,
    ``rediss://`` for TLS, ``unix://``). ``prefix`` starts every key (use one
    per API key to keep quotas apart); ``socket_timeout`` bounds each round
    trip (default 0.1 s) and connecting; ``ttl`` is how long an idle key's
    state is kept (default one day). ``client`` may be given instead of
    ``url`` (a ``redis.Redis``; its own timeouts and retries then apply).

    About 100-300 µs a grant on loopback (one ``EVALSHA``).

    Example::

        store = RedisStore("redis://quota.internal:6379/0", prefix="myapp:key42:")
        limits = OriginRateLimits(default=RateLimit(5, 1.0), store=store)
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "connmgr:quota:",
        socket_timeout: float = 0.1,
        retry_interval: float = 5.0,
        ttl: float = 86400.0,
        client: redis.Redis | None = None,
    ) -> None:
        super().__init__(retry_interval=retry_interval)
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, got {url!r}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {prefix!r}")
        for name, value in (("socket_timeout", socket_timeout), ("ttl", ttl)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
            if not 0.0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        self._url = url
        self._prefix = prefix
        self._ttl_ms = str(max(1, round(ttl * 1000)))
        try:
            import redis as redis_py
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:  # pragma: no cover - the extra is missing
            raise ImportError("RedisStore needs redis-py: pip install 'connmgr[quota]'") from exc
        self._errors: tuple[type[BaseException], ...] = (redis_py.RedisError, OSError)
        if client is None:
            client = redis_py.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                # Failing over to local limiting is the retry: one timeout, not four.
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
            )
        self._client = client
        self._take = client.register_script(TAKE_SCRIPT)
        self._pause = client.register_script(_PAUSE_SCRIPT)
        self._sent = client.register_script(_SENT_SCRIPT)
        self._feedback = client.register_script(FEEDBACK_SCRIPT)
        self._publish = client.register_script(PUBLISH_SCRIPT)

    @property
    def client(self) -> redis.Redis:
        """The redis-py client (for a health check of your own, ``store.client.ping()``)."""
        return self._client

    def describe(self) -> str:
        """The URL, password redacted."""
        return _redacted(self._url)

    def close(self) -> None:
        """Close the client's connections; the next operation reconnects."""
        self._client.close()

    def _run(self, script: Any, key: str, *args: str) -> Any:
        try:
            return script(keys=[self._prefix + key], args=list(args))
        except self._errors as exc:
            raise QuotaStoreError(f"{self.describe()}: {exc}") from exc

    # -- raw operations ---------------------------------------------------------

    def raw_take(self, key: str, pace: Pace, *, fresh: bool, take: bool) -> Answer:
        """One ``EVALSHA`` of :data:`TAKE_SCRIPT`."""
        wait, paused, version = self._run(
            self._take,
            key,
            repr(pace.interval),
            str(pace.burst),
            repr(pace.window),
            repr(pace.measure),
            "1" if fresh else "0",
            "1" if take else "0",
            self._ttl_ms,
        )
        return Answer(float(wait), float(paused), int(version))

    def raw_pause(self, key: str, seconds: float) -> None:
        """Extend the key's pause, on Redis's clock."""
        self._run(self._pause, key, repr(float(seconds)), "pause", self._ttl_ms)

    def raw_clear_pause(self, key: str) -> None:
        """End the key's pause."""
        self._run(self._pause, key, "0", "clear", self._ttl_ms)

    def raw_sent_rate(self, key: str, pace: Pace) -> float:
        """The key's grant meter, every host's grants."""
        return float(self._run(self._sent, key, repr(pace.measure)))

    def raw_feedback(self, key: str) -> tuple[int, Feedback | None]:
        """The key's feedback and version."""
        version, now, has, *fields = self._run(self._feedback, key)
        if int(has) != 1:
            return int(version), None
        plateau, start, hold, t0, dec, rate, until = (_opt(f) for f in fields)
        times = {
            "plateau": plateau,
            "start": start,
            "hold": hold,
            "t0": t0,
            "dec": dec,
            "hrate": rate,
            "huntil": until,
        }
        return int(version), Feedback.from_times(times, float(now))

    def raw_publish(self, key: str, feedback: Feedback | None) -> int:
        """Store the key's feedback (times turned into Redis's clock) and bump its version."""
        if feedback is None:
            args = ["0", "", "", "", "", "", "", ""]
        else:
            args = [
                "1",
                _arg(feedback.plateau),
                _arg(feedback.start),
                _arg(feedback.hold),
                _arg(feedback.since_throttle),
                _arg(feedback.since_decrease),
                _arg(feedback.header_rate),
                _arg(feedback.header_left if feedback.header_rate is not None else None),
            ]
        return int(self._run(self._publish, key, *args, self._ttl_ms))
