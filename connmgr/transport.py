"""A requests transport adapter that enforces connect, read *and total* deadlines.

requests only knows per-socket-operation timeouts: a server that sends one
byte every 0.5 s, or stalls forever after the headers, never trips a 30 s read
timeout. :class:`TimeoutHTTPAdapter` adds the wall-clock deadline:

* every attempt is sent with ``(min(connect, remaining), min(read, remaining))``;
* the socket of the attempt is registered with the one :mod:`~connmgr.watchdog`
  thread; when the deadline passes, it shuts the socket down
  (``shutdown(SHUT_RDWR)`` wakes a ``recv`` blocked in another thread), so a
  drip, a stall before or in the middle of the body and a header drip all
  end at the deadline with :class:`~connmgr.errors.DeadlineExceededError`;
* with ``stream=False`` the adapter reads the body itself, under the watchdog
  (requests would otherwise read it after the adapter returned); with
  ``stream=True`` the watchdog stays armed until the response is closed or
  read to the end;
* a :class:`~connmgr.clock.CancelToken` shuts the socket down from the
  cancelling thread: the request ends within milliseconds with
  :class:`~connmgr.errors.RequestCancelledError`.

A socket the watchdog shut down never serves another request: its
connection is closed before it goes back to the pool.

The deadline and the token reach the adapter as requests' ``timeout=``
argument (an :class:`~connmgr.timeouts.AttemptContext`, which requests
hands through untouched, redirects included). With ``timeout=None`` the
adapter starts its own deadline from its config; a number or a
``(connect, read)`` pair sets those two and the config's total still holds.

Failures leave the adapter as the connmgr error tree, ``from`` the original:
the deadline and cancellation as their own errors, anything requests or
urllib3 raised through :func:`connmgr.errors.classify_error`, so a plain
``create_session()`` user gets a :class:`~connmgr.RequestTimeoutError` for a
read timeout, never requests' ``ConnectionError("Read timed out")``. The
connection notes when it starts writing the request: from then on every
failure has ``request_sent=True`` (the server may have it), whatever its type.
Cut-off heads and bodies, cut-off gzip/deflate streams and bodies over the
profile's ``max_body_bytes`` never pass as a success (the attempt and the
urllib3 classes that check all this are in :mod:`connmgr.attempt`).

Process hygiene: a forked child drops the pools of every adapter (it never
reads a socket its parent opened), and urllib3's loggers get connmgr's
redaction (its DEBUG lines carry full query strings).

Example::

    session = create_session(TimeoutConfig(connect=1, read=2, total=3))
    session.get("http://127.0.0.1:8000/drip")        # DeadlineExceededError after 3 s

    token = CancelToken()
    ctx = AttemptContext.start(TimeoutConfig.for_search(), cancel=token)
    session.get(url, timeout=ctx)                   # token.cancel() ends it at once

Limits: a TCP connect (and TLS handshake) is bounded by its connect timeout,
itself capped by the time left, but cannot be interrupted by a cancel; with a
SOCKS proxy the socket is not registered, so only the per-read timeout holds
there.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import urllib.parse
import weakref
from collections.abc import Generator
from typing import Any, Final, cast

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.models import REDIRECT_STATI
from urllib3.poolmanager import PoolManager
from urllib3.response import HTTPResponse
from urllib3.util.timeout import Timeout as Urllib3Timeout

from connmgr.attempt import (
    CURRENT,
    POOL_CLASSES,
    Attempt,
    LazyDeadline,
    WatchedResponse,
    error_before_sending,
)
from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock
from connmgr.errors import NetworkError, redact_text
from connmgr.timeouts import (
    MIN_ATTEMPT_TIMEOUT,
    AttemptContext,
    Deadline,
    NetworkConfig,
    TimeoutConfig,
    TimeoutPair,
    timeout_pair,
)

__all__ = [
    "AttemptContext",
    "DeadlineSession",
    "TimeoutHTTPAdapter",
    "create_session",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- urllib3's logs


class _RedactingFilter(logging.Filter):
    """Passes every record of urllib3's loggers through :func:`connmgr.errors.redact_text`.

    urllib3 logs each request at DEBUG with its full target, query string
    included (``"GET /x?token=... HTTP/1.1" 200``), and some warnings with a
    traceback that holds URLs. The message is rendered once, redacted (also
    with percent-encoding undone, for a URL inside a query value), and stored
    back (``args`` cleared); a traceback is rendered and redacted into
    ``exc_text``, which formatters print instead. Records are only built when
    a logger is enabled for their level, so this costs nothing otherwise.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if "%" in redacted:
            # A URL inside a query value (a redirect target, a callback) hides
            # its own secrets behind percent-encoding: look at it decoded too.
            decoded = urllib.parse.unquote(redacted)
            masked = redact_text(decoded)
            if masked != decoded:
                redacted = masked
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(_FORMATTER.formatException(record.exc_info))
        return True


_FORMATTER: Final = logging.Formatter()
_REDACT_URLLIB3: Final = _RedactingFilter()


def _redact_urllib3_logs() -> None:
    """Install the filter on ``urllib3`` and each ``urllib3.*`` logger (idempotent).

    A logger's filters do not apply to its children's records, so each
    existing child gets it too (urllib3 creates them at import; the SOCKS one
    when first used, which is why proxy managers call this as well).
    """
    names = ["urllib3"]
    known = list(logging.Logger.manager.loggerDict)  # a copy: other threads may add loggers
    names += [name for name in known if name.startswith("urllib3.")]
    for name in names:
        target = logging.getLogger(name)
        if _REDACT_URLLIB3 not in target.filters:
            target.addFilter(_REDACT_URLLIB3)


# --------------------------------------------------------------------------- fork


#: Every live adapter, so that a forked child can drop their pools.
_ADAPTERS: Final[weakref.WeakSet[TimeoutHTTPAdapter]] = weakref.WeakSet()


def _renew_queue_locks(pool_queue: queue.Queue[Any]) -> None:
    pool_queue.mutex = threading.Lock()
    pool_queue.not_empty = threading.Condition(pool_queue.mutex)
    pool_queue.not_full = threading.Condition(pool_queue.mutex)
    pool_queue.all_tasks_done = threading.Condition(pool_queue.mutex)


def _drop_pools(manager: PoolManager) -> None:
    """Empty ``manager`` in a forked child: its sockets are the parent's.

    Closing a socket in the child closes only the child's descriptor (no
    shutdown, no TLS close_notify is written), so the parent's connections
    are untouched, and the child opens its own from then on. The locks are
    renewed first: one held by another thread of the parent at the fork
    would never be released in the child.
    """
    manager.pools.lock = threading.RLock()
    for key in manager.pools.keys():  # noqa: SIM118  (the container refuses iteration)
        pool_queue = getattr(manager.pools[key], "pool", None)
        if isinstance(pool_queue, queue.Queue):
            _renew_queue_locks(pool_queue)
    manager.clear()


def _after_fork_in_child() -> None:
    """Drop every adapter's pools: a child never uses a socket its parent opened."""
    for adapter in list(_ADAPTERS):
        try:
            for manager in [adapter.poolmanager, *adapter.proxy_manager.values()]:
                _drop_pools(manager)
        except Exception:
            # The child must start in any case; a pool left alone is then
            # dropped wholesale, unclosed, so it can never be read from.
            logger.exception("connmgr could not close an inherited connection pool")
            connections, maxsize, block, pool_kwargs = adapter.pool_arguments
            adapter.proxy_manager = {}
            adapter.init_poolmanager(connections, maxsize, block, **pool_kwargs)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# --------------------------------------------------------------------------- public API


class TimeoutHTTPAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that holds connect, read and total deadlines.

    ``timeout_config`` (default: ``NetworkConfig.get_timeout()``) gives the
    connect and read timeouts and the total deadline of a request sent with
    ``timeout=None``. Per call, ``timeout=`` may be an :class:`AttemptContext`
    (a deadline shared by several attempts, and a cancel token), a number or
    a ``(connect, read)`` pair (the config's total still holds), or a urllib3
    ``Timeout``. Other arguments go to ``HTTPAdapter`` (``max_retries``,
    ``pool_maxsize``, ...); leave retries to connmgr's retry engine, since
    urllib3's own retries cannot see the deadline between tries.

    Mounted on any ``requests.Session``, each redirect hop gets a fresh
    deadline when ``timeout=None``; sessions from :func:`create_session` start
    one deadline for the whole chain.

    Example::

        session = requests.Session()
        adapter = TimeoutHTTPAdapter(TimeoutConfig(connect=2, read=10, total=15))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.get(url)                       # at most ~15 s, however the server behaves
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "timeout_config", "clock"]

    def __init__(
        self,
        timeout_config: TimeoutConfig | None = None,
        *args: Any,
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        if timeout_config is None:
            timeout_config = NetworkConfig.get_timeout()
        elif not isinstance(timeout_config, TimeoutConfig):
            raise ValueError(f"timeout_config must be a TimeoutConfig, got {timeout_config!r}")
        self.timeout_config = timeout_config
        self.clock = clock
        #: Attempts under way, so a network change can end those of the old network.
        self._live: weakref.WeakSet[Attempt] = weakref.WeakSet()
        super().__init__(*args, **kwargs)

    def abandon_old_network(
        self, *, methods: frozenset[str] | None = None, all_sockets: bool = False
    ) -> int:
        """End the attempts under way (of ``methods``) whose socket the network left behind.

        A socket is left behind when its local address is no longer this host's
        (a Wi-Fi switch, a VPN going down): it would wait for an answer that can
        never come until its read timeout. Each such attempt fails at once as a
        transient ``ConnectionFailedError`` (kind ``"network_changed"``), which the
        caller retries. A socket whose address is still here keeps its answer (an
        OS hint that only added an address must not end healthy requests).
        ``all_sockets=True`` ends every attempt (after a sleep, when sockets are
        likely dead whatever their address). Returns how many were ended.
        """
        ended = 0
        local: dict[str, bool] = {}
        for attempt in list(self._live):
            if attempt.done or (methods is not None and attempt.request.method not in methods):
                continue
            if not all_sockets and _still_here(attempt.sock, local):
                continue
            attempt.abandon_old_network()
            ended += 1
        return ended

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """Set up urllib3's pool manager with connection classes the watchdog can reach.

        Also where the adapter joins the set whose pools a forked child drops
        (an unpickled adapter comes here too), and where urllib3's loggers get
        connmgr's redaction.
        """
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOL_CLASSES)
        #: What the pool manager was made with (to make a fresh one).
        self.pool_arguments = (connections, maxsize, block, pool_kwargs)
        _ADAPTERS.add(self)
        _redact_urllib3_logs()

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """As ``HTTPAdapter``'s, with the watched connection classes (not for SOCKS)."""
        _redact_urllib3_logs()
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(POOL_CLASSES)
        return manager

    def send(  # noqa: PLR0917  (HTTPAdapter.send's signature)
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | TimeoutPair | Urllib3Timeout | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Send one attempt under the deadline; see the class docstring.

        Failures leave as the connmgr error tree (:func:`~connmgr.classify_error`),
        which still subclasses requests' exceptions: a read timeout is a
        :class:`~connmgr.RequestTimeoutError` (a ``requests.Timeout``) even where
        requests itself would raise ``ConnectionError("Read timed out")``.
        """
        attempt, pair = self._begin(request, timeout)
        try:
            return self._send(attempt, request, stream, pair, verify, cert, proxies)
        except NetworkError:
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # The one boundary where requests/urllib3 failures become connmgr errors.
            raise attempt.classified(exc) from exc

    def _begin(
        self,
        request: requests.PreparedRequest,
        timeout: float | TimeoutPair | Urllib3Timeout | None,
    ) -> tuple[Attempt, TimeoutPair]:
        """The attempt (armed on the watchdog) and its ``(connect, read)``.

        Raises the deadline or cancel error, with nothing sent, when the
        context given is already spent.
        """
        cancel: CancelToken | None = None
        connect: float | None
        read: float | None
        deadline: Deadline | LazyDeadline
        if isinstance(timeout, AttemptContext):
            config = timeout.config
            deadline, cancel = timeout.deadline, timeout.cancel
            connect, read = timeout
            remaining = deadline.remaining()
            if (cancel is not None and cancel.cancelled) or (
                remaining is not None and remaining <= 0
            ):
                error = error_before_sending(deadline, cancel, request)
                if error is not None:
                    raise error
        else:
            config = self.timeout_config
            remaining = config.total
            # Started now; the Deadline object is only built if needed.
            clock = self.clock if self.clock is not None else SYSTEM_CLOCK
            deadline = (remaining, clock.now(), clock)
            if timeout is None:
                connect, read = config.connect, config.read
            elif isinstance(timeout, Urllib3Timeout):
                connect, read = _from_urllib3(timeout, config)
            else:
                connect, read = timeout_pair(timeout)
        if remaining is not None:
            # Cap both by the time left (floored: urllib3 treats 0 as "fail now").
            cap = remaining if remaining > MIN_ATTEMPT_TIMEOUT else MIN_ATTEMPT_TIMEOUT
            if connect is None or connect > cap:
                connect = cap
            if read is None or read > cap:
                read = cap
        attempt = Attempt(deadline, remaining, cancel, request, config.max_body_bytes)
        self._live.add(attempt)
        return attempt, (connect, read)

    def _send(  # noqa: PLR0917
        self,
        attempt: Attempt,
        request: requests.PreparedRequest,
        stream: bool,
        pair: TimeoutPair,
        verify: bool | str,
        cert: Any,
        proxies: Any,
    ) -> requests.Response:
        previous, CURRENT.attempt = CURRENT.attempt, attempt
        try:
            response = super().send(
                request,
                stream=stream,
                timeout=cast(Any, pair),  # Any: the stubs' timeout type is narrower
                verify=verify,
                cert=cert,
                proxies=proxies,
            )
        except Exception as exc:
            attempt.finish()
            error = attempt.error_for(exc, "before the response headers arrived")
            if error is not None:
                raise error from exc
            raise
        except BaseException:
            attempt.finish()
            raise
        finally:
            CURRENT.attempt = previous
        if attempt.reason is not None:
            # Killed while the headers arrived: a shutdown mid-headers can even
            # parse as a complete (truncated) response. Never hand that out.
            response.close()
            attempt.finish()
            error = attempt.error_for(None, "before the response headers arrived")
            if error is not None:
                raise error

        response._connmgr_attempt = attempt  # type: ignore[attr-defined]  # for redirects
        raw = response.raw
        watched = attempt.conn is not None and type(raw) is HTTPResponse
        if watched:
            # Armed until the body is read out or the response closed; every
            # read checks the deadline, the size limit and the body's integrity.
            raw.__class__ = WatchedResponse
            cast(WatchedResponse, raw)._connmgr_attempt = attempt
            attempt.finish_on_release = True
        if stream:
            if not watched:
                attempt.finish()  # nothing of ours to watch (e.g. a mocked response)
            return response
        # Read the body now, under the watchdog (requests would read it after
        # we return); the pool taking the connection back at its end finishes
        # the attempt. requests' own .content is then cached.
        try:
            response.content  # noqa: B018
        except Exception as exc:
            error = attempt.error_for(exc, "while reading the response body")
            if error is not None:
                raise error from exc
            raise
        finally:
            attempt.finish()
        return response


def _still_here(sock: object, seen: dict[str, bool]) -> bool:
    """Whether ``sock``'s local address is still one of this host's (``True`` if unknown)."""
    try:
        address = sock.getsockname()[0]  # type: ignore[attr-defined]
    except (AttributeError, OSError, IndexError, TypeError):
        return True  # not connected yet, or closed: nothing to leave behind
    if not isinstance(address, str):
        return True
    if address not in seen:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.bind((address, 0))  # EADDRNOTAVAIL once the address is gone
            seen[address] = True
        except OSError:
            seen[address] = False
    return seen[address]


def _from_urllib3(timeout: Urllib3Timeout, config: TimeoutConfig) -> TimeoutPair:
    connect = timeout.connect_timeout
    read = timeout.read_timeout
    return (
        config.connect if not isinstance(connect, int | float) and connect is not None else connect,
        config.read if not isinstance(read, int | float) and read is not None else read,
    )


class DeadlineSession(requests.Session):
    """A ``requests.Session`` whose requests each run under one deadline.

    Created by :func:`create_session`: a :class:`TimeoutHTTPAdapter` mounted
    for http and https, and redirects followed under the deadline the first
    hop started (``timeout_config.total`` for the whole chain, not per hop).
    A call's own number or ``(connect, read)`` sets the per-attempt timeouts.

    Example::

        with DeadlineSession(TimeoutConfig.for_quick_check()) as s:
            s.get(url)                     # <= 20 s in all
            s.get(url, timeout=(1, 5))     # 1 s connect, 5 s reads, still <= 20 s in all
    """

    def __init__(
        self, timeout_config: TimeoutConfig | None = None, *, clock: Clock | None = None
    ) -> None:
        super().__init__()
        adapter = TimeoutHTTPAdapter(timeout_config, clock=clock)
        self.timeout_config = adapter.timeout_config
        self.clock = clock
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def resolve_redirects(
        self, resp: requests.Response, req: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> Generator[requests.Response]:
        """Follow redirects under the deadline the first response was sent with."""
        # The usual case, no redirect: requests' generator will yield nothing.
        if resp.status_code not in REDIRECT_STATI or not resp.is_redirect:
            return super().resolve_redirects(resp, req, *args, **kwargs)  # type: ignore[no-any-return]
        attempt = getattr(resp, "_connmgr_attempt", None)
        timeout = kwargs.get("timeout")
        if attempt is not None and not isinstance(timeout, (AttemptContext, Urllib3Timeout)):
            deadline = attempt.deadline
            adapter = resp.connection
            config = (
                adapter.timeout_config
                if isinstance(adapter, TimeoutHTTPAdapter)
                else self.timeout_config
            )
            kwargs["timeout"] = AttemptContext(config, deadline, timeout=timeout)
        redirects: Generator[requests.Response] = super().resolve_redirects(
            resp, req, *args, **kwargs
        )
        return redirects


def create_session(
    timeout_config: TimeoutConfig | None = None, *, clock: Clock | None = None
) -> requests.Session:
    """A session whose every request holds connect, read and total deadlines.

    ``timeout_config`` defaults to ``NetworkConfig.get_timeout()`` (5/30/60).
    The original plan's function; the session is a :class:`DeadlineSession`.

    Example::

        session = create_session(TimeoutConfig.for_search())
        session.get("https://api.example.com/search", params={"q": "techno"})
    """
    return DeadlineSession(timeout_config, clock=clock)
