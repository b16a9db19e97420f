"""Classification: anything requests, urllib3 or the socket layer raise -> the tree."""

from __future__ import annotations

import errno as _errno
import http.client
import re
import socket
import ssl
from typing import TYPE_CHECKING, Any, Final

import requests
import urllib3.exceptions as _u3

from connmgr.errors.redact import redact_url
from connmgr.errors.responses import error_from_response, error_from_status, quota_of
from connmgr.errors.tree import (
    ConnectionFailedError,
    DNSError,
    HTTPStatusError,
    InvalidRequestError,
    NetworkError,
    RequestTimeoutError,
    TLSError,
    _url_of,
)
from connmgr.errors.words import finite_or_none, one_line

if TYPE_CHECKING:
    from connmgr.ratelimit.headers import RateLimitInfo

__all__ = ["classify_error", "classify_response"]

# --------------------------------------------------------------------------- classification


_ADDRESS_RE: Final = re.compile(r"<([\w.]+(?:\([^)<>]*\))?) (?:object )?at 0x[0-9a-fA-F]+>")
_POOL_PREFIX_RE: Final = re.compile(r"^HTTPS?ConnectionPool\(host='[^']*', port=\d+\): ")
_POOL_HOST_RE: Final = re.compile(r"HTTP(S?)Connection(?:Pool)?\(host='([^']+)', port=(\d+)\)")
_TIMEOUT_VALUE_RE: Final = re.compile(r"(connect|read) timeout=([0-9.]+)")
_RETRY_STATUS_RE: Final = re.compile(r"too many (\d{3}) error responses")
_HTTP_ERROR_STATUS_RE: Final = re.compile(r"^(\d{3}) (?:Client|Server) Error")

_DNS_TEXTS: Final = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated",
    "failed to resolve",
    "getaddrinfo failed",
    "name resolution",
)
_TEMPORARY_DNS_ERRNOS: Final = frozenset(
    {getattr(socket, "EAI_AGAIN", -3), 11002}  # 11002: Windows WSATRY_AGAIN
)
_UNREACHABLE_ERRNOS: Final = frozenset(
    {
        _errno.ENETUNREACH,
        _errno.EHOSTUNREACH,
        _errno.ENETDOWN,
        getattr(_errno, "EHOSTDOWN", _errno.EHOSTUNREACH),
    }
)

_SUMMARIES: Final[dict[str, str]] = {
    "refused": "connection refused",
    "unreachable": "network unreachable",
    "reset": "connection reset or closed by the peer",
    "incomplete": "response body cut off",
    "decoding": "response body could not be decoded",
    "proxy": "proxy connection failed",
    "dns": "DNS lookup failed",
    "connect_timeout": "connect timed out",
    "read_timeout": "read timed out",
    "timeout": "timed out",
    "tls_certificate": "TLS certificate verification failed",
    "tls_expired": "TLS certificate has expired",
    "tls_hostname": "TLS certificate does not match the host",
    "tls": "TLS handshake failed",
    "invalid_url": "invalid URL",
    "missing_schema": "URL has no scheme",
    "invalid_schema": "unsupported URL scheme",
    "invalid_proxy": "invalid proxy URL",
    "invalid_header": "invalid header",
    "invalid_request": "invalid request",
    "redirect_loop": "too many redirects",
    "invalid_response": "response could not be parsed",
    "connection": "connection failed",
    "error": "request failed",
}


def _chain(exc: BaseException, limit: int = 24) -> list[BaseException]:
    """``exc`` and what it wraps, outermost first (args, ``reason``, causes).

    requests wraps urllib3 in ``args`` (``ConnectionError(MaxRetryError(...))``),
    urllib3 uses ``reason`` and ``raise ... from``, http.client and ssl use
    plain context: all of them are followed, each exception once.
    """
    seen: list[BaseException] = []
    queue: list[BaseException] = [exc]
    while queue and len(seen) < limit:
        current = queue.pop(0)
        if any(current is other for other in seen):
            continue
        seen.append(current)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            queue.append(reason)
        queue.extend(arg for arg in current.args if isinstance(arg, BaseException))
        if current.__cause__ is not None:
            queue.append(current.__cause__)
        if current.__context__ is not None and not current.__suppress_context__:
            queue.append(current.__context__)
    return seen


def _first(
    chain: list[BaseException], types: type[BaseException] | tuple[type[BaseException], ...]
) -> BaseException | None:
    for exc in chain:
        if isinstance(exc, types):
            return exc
    return None


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _text_of(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not break classification
        text = ""
    return _ADDRESS_RE.sub(r"<\1>", text)


def _describe(chain: list[BaseException]) -> str:
    """``details`` for an exception: the outer message, the root cause, the chain."""
    outer = chain[0]
    lines = [f"{_type_name(outer)}: {_text_of(outer)}".rstrip(": ")]
    if len(chain) > 1:
        root = chain[-1]
        lines.append(f"root cause: {_type_name(root)}: {_text_of(root)}".rstrip(": "))
        lines.append("chain: " + " <- ".join(_type_name(e) for e in chain))
    return "\n".join(lines)  # redacted once, by NetworkError.__init__


def _short_text(exc: BaseException) -> str:
    """The message of ``exc`` alone: urllib3's ``(conn, "msg")`` args and pool prefix dropped."""
    args = exc.args
    if not isinstance(exc, OSError) and len(args) > 1 and isinstance(args[-1], str):
        text = _ADDRESS_RE.sub(r"<\1>", args[-1])
    else:
        text = _text_of(exc)
    return _POOL_PREFIX_RE.sub("", text)


def _summary(kind: str, cause: BaseException, extra: str = "") -> str:
    text = _short_text(cause)
    described = f"{type(cause).__name__}: {text}" if text else type(cause).__name__
    head = _SUMMARIES.get(kind, "request failed") + extra
    return f"{head} ({described})"


def _host_hint(text: str) -> str | None:
    """``host[:port]`` from urllib3's ``HTTPConnectionPool(host='h', port=1)`` text."""
    found = _POOL_HOST_RE.search(text)
    if found is None:
        return None
    secure, host, port = found.group(1), found.group(2), found.group(3)
    if (secure and port == "443") or (not secure and port == "80"):
        return host
    return f"{host}:{port}"


def _timeout_value(text: str, phase: str) -> float | None:
    for found_phase, value in _TIMEOUT_VALUE_RE.findall(text):
        if found_phase == phase:
            return finite_or_none(value)
    return None


def _errnos(chain: list[BaseException]) -> set[int]:
    found: set[int] = set()
    for exc in chain:
        code = getattr(exc, "errno", None)
        if isinstance(code, int):
            found.add(code)
    return found


def _tls_kind(chain: list[BaseException], text: str) -> str:
    verify = _first(chain, ssl.SSLCertVerificationError)
    code = getattr(verify, "verify_code", None)
    # OpenSSL X509_V_ERR_HOSTNAME_MISMATCH = 62, X509_V_ERR_IP_ADDRESS_MISMATCH = 64,
    # X509_V_ERR_CERT_HAS_EXPIRED = 10.
    if code in (62, 64) or any(
        marker in text for marker in ("hostname mismatch", "ip address mismatch", "doesn't match")
    ):
        return "tls_hostname"
    if code == 10 or "certificate has expired" in text:
        return "tls_expired"
    if verify is not None or "certificate verify failed" in text:
        return "tls_certificate"
    return "tls"


def _invalid_kind(exc: BaseException) -> str:
    if isinstance(
        exc,
        requests.exceptions.InvalidProxyURL | _u3.ProxySchemeUnknown | _u3.ProxySchemeUnsupported,
    ):
        return "invalid_proxy"
    if isinstance(exc, requests.exceptions.MissingSchema):
        return "missing_schema"
    if isinstance(exc, requests.exceptions.InvalidSchema | _u3.URLSchemeUnknown):
        return "invalid_schema"
    if isinstance(
        exc,
        requests.exceptions.InvalidURL | requests.exceptions.URLRequired | _u3.LocationValueError,
    ):
        return "invalid_url"
    if isinstance(exc, requests.exceptions.InvalidHeader):
        return "invalid_header"
    return "invalid_request"


_INVALID_TYPES: Final = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
    requests.exceptions.InvalidJSONError,
    requests.exceptions.UnrewindableBodyError,
    requests.exceptions.StreamConsumedError,
    _u3.LocationValueError,
    _u3.ProxySchemeUnsupported,
    _u3.UnrewindableBodyError,
)
_TLS_EOF_TEXTS: Final = (
    "eof occurred in violation of protocol",
    "unexpected eof",
    "unexpected_eof_while_reading",
)
_RESET_TYPES: Final = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    http.client.RemoteDisconnected,
    _u3.ProtocolError,
)
_INCOMPLETE_TYPES: Final = (
    requests.exceptions.ChunkedEncodingError,
    http.client.IncompleteRead,  # urllib3's IncompleteRead and InvalidChunkLength too
)


def _from_exception(exc: BaseException) -> NetworkError:
    """The error for ``exc``, without context (url, attempts) or ``__cause__``."""
    chain = _chain(exc)
    raw_text = " | ".join(_text_of(e) for e in chain)
    text = raw_text.lower()
    details = _describe(chain)

    def make(
        cls: type[NetworkError],
        kind: str,
        *,
        cause: BaseException | None = None,
        extra: str = "",
        **kwargs: Any,
    ) -> NetworkError:
        message = _summary(kind, cause if cause is not None else chain[-1], extra)
        err = cls(message, details=details, kind=kind, **kwargs)
        # requests does not attach the request to a body-read failure; the
        # pool's host in urllib3's text still names the server for messages.
        err._host_hint = _host_hint(raw_text)
        return err

    # A status error with its response: decided by the status, like a Response.
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return error_from_response(
            exc.response, quota_of(exc.response.headers), details_prefix=details
        )

    if _first(chain, requests.exceptions.JSONDecodeError) is not None:
        return make(NetworkError, "invalid_response")
    # urllib3 raises InvalidHeader only while reading a response (two different
    # Content-Length values, say): the request was sent, whatever requests wraps it in.
    if _first(chain, _u3.InvalidHeader) is not None:
        return make(NetworkError, "invalid_response", request_sent=True)
    invalid = _first(chain, _INVALID_TYPES)
    if invalid is not None:
        return make(InvalidRequestError, _invalid_kind(invalid))
    redirects = _first(chain, requests.TooManyRedirects)
    if redirects is not None:
        return make(NetworkError, "redirect_loop", response=getattr(redirects, "response", None))

    # Timeouts first: urllib3 reports some TLS-handshake and proxy timeouts
    # through the same chain, and a timeout is what the user experienced.
    # urllib3's NewConnectionError subclasses ConnectTimeoutError (for
    # compatibility), so a refused or DNS failure is not a connect timeout.
    connect_timeout = next(
        (
            e
            for e in chain
            if isinstance(e, _u3.ConnectTimeoutError) and not isinstance(e, _u3.NewConnectionError)
        ),
        None,
    ) or _first(chain, requests.ConnectTimeout)
    if connect_timeout is not None:
        return make(
            RequestTimeoutError,
            "connect_timeout",
            cause=connect_timeout,
            timeout=_timeout_value(text, "connect"),
            request_sent=False,
        )
    read_timeout = _first(chain, _u3.ReadTimeoutError) or _first(chain, requests.ReadTimeout)
    if read_timeout is not None or "read timed out" in text:
        return make(
            RequestTimeoutError,
            "read_timeout",
            cause=read_timeout,
            timeout=_timeout_value(text, "read"),
        )

    tls = _first(
        chain, (requests.exceptions.SSLError, _u3.SSLError, ssl.SSLError, ssl.CertificateError)
    )
    if tls is not None:
        kind = _tls_kind(chain, text)
        if kind == "tls" and (
            _first(chain, ssl.SSLEOFError) is not None
            or any(marker in text for marker in _TLS_EOF_TEXTS)
        ):
            # The peer hung up mid-TLS: a cut connection, not a trust problem.
            return make(ConnectionFailedError, "reset")
        # A verification failure ends the handshake, before the request is written.
        return make(TLSError, kind, request_sent=None if kind == "tls" else False)

    if _first(chain, (requests.exceptions.ProxyError, _u3.ProxyError)) is not None:
        return make(ConnectionFailedError, "proxy", request_sent=False)

    gai = _first(chain, socket.gaierror)
    if (
        gai is not None
        or _first(chain, _u3.NameResolutionError) is not None
        or any(marker in text for marker in _DNS_TEXTS)
    ):
        temporary = (
            getattr(gai, "errno", None) in _TEMPORARY_DNS_ERRNOS or "temporary failure" in text
        )
        host = getattr(_first(chain, _u3.NameResolutionError), "_host", None)  # urllib3 >= 2
        extra = f" for {host}" if isinstance(host, str) else ""
        return make(DNSError, "dns", temporary=temporary, request_sent=False, extra=extra)

    errnos = _errnos(chain)
    if (
        _first(chain, ConnectionRefusedError) is not None
        or _errno.ECONNREFUSED in errnos
        or "connection refused" in text
        or "actively refused" in text
    ):
        return make(ConnectionFailedError, "refused", request_sent=False)
    if (
        errnos & _UNREACHABLE_ERRNOS
        or "network is unreachable" in text
        or "no route to host" in text
    ):
        return make(ConnectionFailedError, "unreachable", request_sent=False)
    new_connection = _first(chain, _u3.NewConnectionError)
    if new_connection is not None and _first(chain, TimeoutError) is not None:
        # ETIMEDOUT from the kernel during connect (no socket timeout was set).
        return make(RequestTimeoutError, "connect_timeout", request_sent=False)
    if any(
        isinstance(e, TimeoutError | _u3.TimeoutError | requests.Timeout)
        and not isinstance(e, _u3.NewConnectionError)
        for e in chain
    ):
        return make(RequestTimeoutError, "timeout")

    if _first(chain, _INCOMPLETE_TYPES) is not None:
        return make(ConnectionFailedError, "incomplete")
    if _first(chain, (requests.exceptions.ContentDecodingError, _u3.DecodeError)) is not None:
        return make(ConnectionFailedError, "decoding")
    if _first(chain, _RESET_TYPES) is not None:
        return make(ConnectionFailedError, "reset")

    # urllib3's Retry (status_forcelist) gave up: the status is only in the text.
    retry_status = _RETRY_STATUS_RE.search(text)
    if retry_status is not None:
        return error_from_status(int(retry_status.group(1)), None, None, details=details)

    if (
        _first(chain, (requests.ConnectionError, _u3.NewConnectionError, ConnectionError))
        is not None
    ):
        return make(ConnectionFailedError, "connection")
    if isinstance(exc, requests.HTTPError):
        found = _HTTP_ERROR_STATUS_RE.match(_text_of(exc))
        if found is not None:
            return error_from_status(int(found.group(1)), None, None, details=details)
        return HTTPStatusError(one_line(_text_of(exc)), details=details)
    return make(NetworkError, "error")


# --------------------------------------------------------------------------- public functions


def classify_error(
    exc_or_response: BaseException | requests.Response,
    *,
    url: str | None = None,
    attempts: int = 0,
    operation: str | None = None,
    request_sent: bool | None = None,
) -> NetworkError:
    """Map an exception (or an error ``Response``) to the connmgr error tree. Pure.

    It never changes its argument. A :class:`NetworkError` comes back as it
    is (the same object) when the keyword arguments add nothing; otherwise as
    a copy with its empty context (``url``, ``attempts``, ``operation``)
    filled, everything else kept (messages, ``details``, ``response``,
    ``__cause__``, ...). Anything else becomes a new error whose ``__cause__``
    is the original (as after ``raise err from exc``) and whose ``response``
    is the response, if any:

    ============================================== ===============================
    requests / urllib3 / socket                    connmgr
    ============================================== ===============================
    ConnectTimeout, ConnectTimeoutError            RequestTimeoutError (connect)
    ReadTimeout, ReadTimeoutError, "Read timed     RequestTimeoutError (read)
    out" arriving as ConnectionError
    SSLError: verify / hostname / expired / other  TLSError
    ProxyError                                     ConnectionFailedError (proxy)
    NameResolutionError, gaierror                  DNSError
    refused / no route                             ConnectionFailedError
    ProtocolError, reset, RemoteDisconnected       ConnectionFailedError (reset)
    ChunkedEncodingError, IncompleteRead           ConnectionFailedError
    ContentDecodingError, DecodeError              ConnectionFailedError
    InvalidURL, MissingSchema, InvalidSchema,      InvalidRequestError
    InvalidHeader (of the request), URLRequired,
    ...
    urllib3 InvalidHeader (of the response: two    NetworkError (invalid_response)
    different Content-Length values)
    TooManyRedirects / JSONDecodeError             NetworkError
    HTTPError or Response: 429 (403 out of quota)  RateLimitError
    HTTPError or Response: 5xx                     ServerError
    HTTPError or Response: other                   HTTPStatusError
    anything else                                  NetworkError
    ============================================== ===============================

    ``request_sent`` is the transport's knowledge, when it has it (whether the
    first byte of the request was written): given, it overrides the guess
    made from the kind of failure. Without it, ``request_sent`` is ``False``
    only for failures that happen before anything is written (refused, no
    route, DNS, connect timeout, proxy, certificate checks, an invalid
    request); a failure while the answer arrives (a malformed or cut-off
    response, a read timeout, a reset) says ``True``. A response proves the
    request was sent, whatever ``request_sent`` says.

    ``retry_after`` comes from ``Retry-After`` (delta-seconds or an HTTP-date,
    measured against the response's ``Date``) or, for a 429, from the
    ``RateLimit-Reset`` / ``X-RateLimit-Reset`` headers. ``url`` defaults to
    the request's. No I/O, no sleeping.

    Example::

        try:
            requests.get("http://127.0.0.1:9/", timeout=1)
        except requests.RequestException as exc:
            err = classify_error(exc, attempts=1)
        type(err).__name__, err.kind      # ('ConnectionFailedError', 'refused')
    """
    if isinstance(exc_or_response, NetworkError):
        return _with_context(exc_or_response, url, attempts, operation, request_sent)
    if isinstance(exc_or_response, requests.Response):
        return classify_response(
            exc_or_response,
            quota_of(exc_or_response.headers),
            url=url,
            attempts=attempts,
            operation=operation,
        )
    given: object = exc_or_response
    if not isinstance(given, BaseException):
        raise TypeError(
            f"exc_or_response must be an exception or a requests.Response, got {given!r}"
        )
    err = _from_exception(exc_or_response)
    err.__cause__ = exc_or_response
    err.__suppress_context__ = True
    if err.request is None:
        err.request = getattr(exc_or_response, "request", None)
    if err.response is None:
        response = getattr(exc_or_response, "response", None)
        if isinstance(response, requests.Response):
            err.response = response
            if err.status is None:
                err.status = response.status_code
    if request_sent is not None:
        err.request_sent = request_sent
    return _set_context(err, url, attempts, operation)


def classify_response(
    response: requests.Response,
    quota: RateLimitInfo | None,
    *,
    url: str | None = None,
    attempts: int = 0,
    operation: str | None = None,
) -> NetworkError:
    """:func:`classify_error` for a response whose rate-limit headers are parsed (``quota``).

    For a caller that has already read the headers (the verdict does, once per
    response), so that they are not parsed a second time.
    """
    return _set_context(error_from_response(response, quota), url, attempts, operation)


def _set_context(
    err: NetworkError, url: str | None, attempts: int, operation: str | None
) -> NetworkError:
    """Fill the context of an error made here (never of the caller's)."""
    if url is None:
        url = _url_of(err.request, err.response)
    if url:
        err.url = redact_url(url)
    err.attempts = attempts
    err.operation = operation
    return err


def _with_context(
    err: NetworkError,
    url: str | None,
    attempts: int,
    operation: str | None,
    request_sent: bool | None,
) -> NetworkError:
    """``err``, or a copy of it with its empty context filled: the caller's object never changes."""
    fill_url = err.url is None and bool(url)
    fill_attempts = not err.attempts and bool(attempts)
    fill_operation = err.operation is None and bool(operation)
    change_sent = request_sent is not None and request_sent != err.request_sent
    if not (fill_url or fill_attempts or fill_operation or change_sent):
        return err
    # A shallow copy without calling __init__ (a subclass may need other
    # arguments): every attribute, args, the cause and the traceback are kept.
    clone = type(err).__new__(type(err), *err.args)
    clone.__dict__.update(err.__dict__)
    clone.args = err.args
    clone.__cause__ = err.__cause__
    clone.__context__ = err.__context__
    clone.__suppress_context__ = err.__suppress_context__
    clone.__traceback__ = err.__traceback__
    if fill_url and url:
        clone.url = redact_url(url)
    if fill_attempts:
        clone.attempts = attempts
    if fill_operation:
        clone.operation = operation
    if request_sent is not None:
        clone.request_sent = request_sent
    return clone
