"""The error tree of connmgr: the classes and their plain-words messages.

Every error connmgr raises derives from :class:`NetworkError`, which derives from
``requests.RequestException``, so code that already catches requests' exceptions
keeps working::

    requests.RequestException
    └── NetworkError
        ├── ConnectionFailedError        (also requests.ConnectionError)
        │   └── DNSError
        ├── RequestTimeoutError          (also requests.Timeout)
        │   └── DeadlineExceededError
        ├── RateLimitError
        ├── HTTPStatusError              (also requests.HTTPError)
        │   └── ServerError
        ├── TLSError                     (also requests.exceptions.SSLError)
        ├── InvalidRequestError          (also ValueError)
        ├── OfflineError
        │   └── CaptivePortalError
        ├── BackoffError
        └── RequestCancelledError

``TLSError`` is a ``requests.ConnectionError`` too, because requests' own
``SSLError`` is one; it is deliberately *not* a :class:`ConnectionFailedError`:
a certificate problem is never retried, and ``except ConnectionFailedError``
(the "try again later" family) must not swallow it. ``except
requests.ConnectionError`` still catches it, exactly as it does with plain
requests. ``InvalidRequestError`` (a bad URL, scheme or header: the caller's
mistake, never retried) is the one class added to the design's list.

Each error carries plain-words ``user_message`` and ``suggestion`` (class
defaults, specialised with the host, the status, the wait), ``details``
(technical, redacted), ``url`` (redacted), ``status``, ``retry_after``,
``attempts``, ``operation``, ``response``, a machine-readable ``kind``
(``"refused"``, ``"dns"``, ``"read_timeout"``, ``"tls_hostname"``, ... listed
in ``docs/errors.md``) and ``request_sent`` (``False`` only when the failure
proves the request never left this machine, so even a POST may be resent).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final, Protocol

import requests

from connmgr.errors.redact import redact_text, redact_url
from connmgr.errors.words import (
    LONGEST_SHOWN_WAIT,
    STATUS_MESSAGES,
    finite_or_none,
    limit_words,
    one_line,
    wait_then_retry,
    wait_words,
)

__all__ = [
    "BackoffError",
    "CaptivePortalError",
    "ConnectionFailedError",
    "DNSError",
    "DeadlineExceededError",
    "HTTPStatusError",
    "InvalidRequestError",
    "NetworkError",
    "OfflineError",
    "RateLimitError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "ServerError",
    "TLSError",
]

# --------------------------------------------------------------------------- the tree


class _Cancellable(Protocol):
    """What :meth:`RequestCancelledError.from_token` reads of a ``CancelToken``.

    Structural, so that the tree needs nothing else of connmgr.
    """

    @property
    def reason(self) -> str | None: ...


class NetworkError(requests.RequestException):
    """Base of every error connmgr raises; a ``requests.RequestException``.

    ``message`` is the technical one-line summary (redacted before it is
    stored); everything else is keyword-only context:

    ``url``
        the request's URL, redacted (taken from ``request``/``response`` when
        not given);
    ``details``
        technical detail for a Details box or a bug report (redacted;
        defaults to ``message``);
    ``user_message`` / ``suggestion``
        override the plain-words defaults, which otherwise come from the
        class and the context (host, status, ``retry_after``);
    ``retry_after``
        seconds the server (or the gate) asked us to wait, when known;
    ``attempts``
        how many attempts were made (0 when none was);
    ``response`` / ``request``
        the ``requests`` objects, when there were any;
    ``operation``
        the operation profile (``"search"``, ...);
    ``status``
        the HTTP status (defaults to ``response.status_code``);
    ``kind``
        a machine-readable cause (``"refused"``, ``"dns"``, ...);
    ``request_sent``
        ``False`` only when the failure proves the request never left this
        machine (defaults from the class and the kind).

    Example::

        >>> err = NetworkError("boom", url="https://u:p@x.test/?token=t", attempts=2)
        >>> str(err)
        'boom (https://***@x.test/?token=***; 2 attempts)'
    """

    default_user_message: ClassVar[str] = "A network error occurred."
    default_suggestion: ClassVar[str] = "Check your connection and try again."
    default_kind: ClassVar[str] = "error"
    default_request_sent: ClassVar[bool] = True

    def __init__(
        self,
        message: str = "",
        *,
        url: str | None = None,
        details: str | None = None,
        user_message: str | None = None,
        suggestion: str | None = None,
        retry_after: float | None = None,
        attempts: int = 0,
        response: requests.Response | None = None,
        request: Any = None,
        operation: str | None = None,
        status: int | None = None,
        kind: str | None = None,
        request_sent: bool | None = None,
    ) -> None:
        text = one_line(redact_text(str(message))) if message else ""
        super().__init__(text, response=response, request=request)
        if url is None:
            url = _url_of(self.request, response)
        self.url: str | None = redact_url(url) if url else None
        self.details: str = redact_text(str(details)) if details else text
        self._user_message = redact_text(user_message) if user_message else None
        self._suggestion = redact_text(suggestion) if suggestion else None
        self.retry_after: float | None = finite_or_none(retry_after)
        self.attempts: int = attempts
        self.operation: str | None = operation
        if status is None and response is not None:
            status = response.status_code
        self.status: int | None = status
        self.kind: str = kind or self.default_kind
        if request_sent is None:
            request_sent = self.default_request_sent and self.kind not in _NEVER_SENT_KINDS
        self.request_sent: bool = bool(request_sent)
        self._host_hint: str | None = None

    # -- plain words ---------------------------------------------------------

    @property
    def user_message(self) -> str:
        """What happened, in plain words (no jargon, no secrets)."""
        if self._user_message is not None:
            return self._user_message
        return self._messages()[0]

    @user_message.setter
    def user_message(self, value: str | None) -> None:
        self._user_message = redact_text(value) if value else None

    @property
    def suggestion(self) -> str:
        """What the user can do about it, in plain words."""
        if self._suggestion is not None:
            return self._suggestion
        return self._messages()[1]

    @suggestion.setter
    def suggestion(self, value: str | None) -> None:
        self._suggestion = redact_text(value) if value else None

    @property
    def host(self) -> str | None:
        """``host[:port]`` of :attr:`url` (never user info), or ``None``."""
        return _host_of(self.url) or self._host_hint

    @property
    def method(self) -> str | None:
        """The HTTP method of :attr:`request`, when known."""
        method = getattr(self.request, "method", None)
        return method.upper() if isinstance(method, str) else None

    def _server(self) -> str:
        return self.host or "the server"

    def _messages(self) -> tuple[str, str]:
        """(user_message, suggestion) from the class and the context."""
        specific = _GENERIC_BY_KIND.get(self.kind)
        if specific is not None:
            return specific
        return self.default_user_message, self.default_suggestion

    # -- technical -----------------------------------------------------------

    def __str__(self) -> str:
        head = str(self.args[0]) if self.args and self.args[0] else self.user_message
        context: list[str] = []
        if self.status is not None and str(self.status) not in head:
            context.append(f"HTTP {self.status}")
        if self.retry_after is not None:
            context.append(f"retry after {self.retry_after:g} s")
        if self.url and self.url not in head:
            method = self.method
            context.append(f"{method} {self.url}" if method else self.url)
        if self.attempts:
            context.append(f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}")
        if self.operation:
            context.append(f"operation {self.operation}")
        line = f"{head} ({'; '.join(context)})" if context else head
        return one_line(line)


#: Kinds of failure that prove the request never left this machine: they all
#: happen before the first byte of the request is written.
_NEVER_SENT_KINDS: Final = frozenset(
    {
        "refused",
        "unreachable",
        "dns",
        "connect_timeout",
        "proxy",
        "tls_certificate",
        "tls_expired",
        "tls_hostname",
    }
)

_GENERIC_BY_KIND: Final[dict[str, tuple[str, str]]] = {
    "redirect_loop": (
        "The server kept redirecting the request in a loop.",
        "Try again later; if it keeps happening, the site is probably misconfigured.",
    ),
    "invalid_response": (
        "The server sent a reply that could not be read.",
        "Try again later, and report it if it keeps happening.",
    ),
}


class ConnectionFailedError(NetworkError, requests.ConnectionError):
    """The connection could not be made, or was lost before the reply was complete.

    ``kind`` says how: ``"refused"``, ``"unreachable"`` (no route),
    ``"reset"`` (closed or reset mid-request), ``"incomplete"`` (body cut off),
    ``"decoding"`` (body damaged), ``"network_changed"`` (dropped because the
    network changed under it), ``"proxy"``, or ``"connection"``.
    Retried (it is transient); refused and unreachable are "never sent".
    """

    default_user_message: ClassVar[str] = "Could not connect to the server."
    default_suggestion: ClassVar[str] = "Check your internet connection and try again."
    default_kind: ClassVar[str] = "connection"

    def _messages(self) -> tuple[str, str]:
        server = self._server()
        unstable = "Try again. If this keeps happening, your connection may be unstable."
        match self.kind:
            case "refused":
                return (
                    f"Could not connect to {server}: the connection was refused.",
                    "The server may be down or restarting. Try again in a moment.",
                )
            case "unreachable":
                return (
                    f"Could not reach {server}: there is no network route to it.",
                    "Check your Wi-Fi or network cable, then try again.",
                )
            case "reset":
                return (
                    f"The connection to {server} was cut off before the reply arrived.",
                    unstable,
                )
            case "incomplete":
                return (f"The reply from {server} was cut off before it was complete.", unstable)
            case "network_changed":
                return (
                    f"The network changed while waiting for {server}.",
                    "Try again: the next attempt uses the new network.",
                )
            case "decoding":
                return (
                    f"The reply from {server} arrived damaged and could not be read.",
                    "Try again. If this keeps happening, the server may have a problem.",
                )
            case "proxy":
                return (
                    "Could not connect through the proxy server.",
                    "Check your proxy settings (and the HTTP_PROXY and HTTPS_PROXY "
                    "environment variables), then try again.",
                )
        return (f"Could not connect to {server}.", self.default_suggestion)


class DNSError(ConnectionFailedError):
    """The host name could not be resolved (looked up).

    ``temporary`` is True when the resolver said so (``EAI_AGAIN``, "Temporary
    failure in name resolution": typically no network, or a resolver that is
    not answering); such a failure is retried. A name that does not exist is
    not: retrying a typo within seconds cannot help, and when the cause is a
    lost network the manager's network check turns it into offline.
    """

    default_user_message: ClassVar[str] = "Could not find the server."
    default_suggestion: ClassVar[str] = (
        "Check the address for typos, and check your internet connection."
    )
    default_kind: ClassVar[str] = "dns"
    default_request_sent: ClassVar[bool] = False

    def __init__(self, message: str = "", *, temporary: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.temporary: bool = temporary

    def _messages(self) -> tuple[str, str]:
        name = _hostname_of(self.url)
        if name is None and self._host_hint:
            name = self._host_hint.rpartition(":")[0] or self._host_hint
        if self.temporary:
            return (
                f"Could not look up the address of {name or 'the server'} right now.",
                "Check your internet connection; this is usually a brief network "
                "problem. Try again in a moment.",
            )
        if name:
            return (f"Could not find the server {name}.", self.default_suggestion)
        return (self.default_user_message, self.default_suggestion)


class RequestTimeoutError(NetworkError, requests.Timeout):
    """The server did not answer in time.

    ``kind`` is ``"connect_timeout"`` (nothing was sent), ``"read_timeout"``
    (no data within the read timeout; requests' ``"Read timed out"`` during a
    body read included) or ``"timeout"``. ``timeout`` is the limit that ran
    out, in seconds, when known. Retried.
    """

    default_user_message: ClassVar[str] = "The server did not answer in time."
    default_suggestion: ClassVar[str] = (
        "Try again. If this keeps happening, the server may be overloaded or your connection slow."
    )
    default_kind: ClassVar[str] = "timeout"

    def __init__(self, message: str = "", *, timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.timeout: float | None = finite_or_none(timeout)

    def _messages(self) -> tuple[str, str]:
        server = self._server()
        if self.kind == "connect_timeout":
            within = f" within {limit_words(self.timeout)}" if self.timeout else ""
            return (
                f"Could not connect to {server}: it did not answer{within}.",
                "Check your internet connection and try again.",
            )
        waited = f" (waited {limit_words(self.timeout)})" if self.timeout else ""
        subject = f"The server {self.host}" if self.host else "The server"
        return (f"{subject} did not reply in time{waited}.", self.default_suggestion)


class DeadlineExceededError(RequestTimeoutError):
    """The whole logical request ran past its total deadline (``timeout`` = the total).

    Not retried: the time budget is spent.
    """

    default_user_message: ClassVar[str] = "The request took too long and was stopped."
    default_suggestion: ClassVar[str] = (
        "Try again later; the server may be busy or your connection slow."
    )
    default_kind: ClassVar[str] = "deadline"

    def _messages(self) -> tuple[str, str]:
        if self.timeout:
            return (
                f"The request was stopped because it took longer than {limit_words(self.timeout)}.",
                self.default_suggestion,
            )
        return (self.default_user_message, self.default_suggestion)


class RateLimitError(NetworkError):
    """The server (or connmgr's own gate, before sending) says: slow down.

    Raised for a 429, for a 403 whose rate-limit headers say no quota remains,
    and by the manager's gate while an origin is rate-limited (then
    ``response`` is ``None`` and nothing was sent). ``retry_after`` is the
    wait in seconds when known. Retried when the wait fits.
    """

    default_user_message: ClassVar[str] = "The server asked us to slow down."
    default_suggestion: ClassVar[str] = "Wait a moment, then try again."
    default_kind: ClassVar[str] = "rate_limited"

    def __init__(self, message: str | float = "", **kwargs: Any) -> None:
        # The original plan constructed RateLimitError(retry_after): a bare number
        # is the wait, not the message, so code written against the plan keeps working.
        if not isinstance(message, str):
            kwargs.setdefault("retry_after", float(message))
            message = ""
        if kwargs.get("request_sent") is None:
            kwargs["request_sent"] = kwargs.get("response") is not None
        super().__init__(message, **kwargs)

    def _messages(self) -> tuple[str, str]:
        user = self.default_user_message
        if self.status == 503:
            # A 503 with a long Retry-After: unavailable, not "too many requests".
            user = "The server is temporarily unavailable and asked us to come back later."
        if self.retry_after is not None:
            return (user, wait_then_retry(self.retry_after))
        return (user, self.default_suggestion)


class HTTPStatusError(NetworkError, requests.HTTPError):
    """The server answered with an error status (``status``; ``response`` when there was one).

    The user message depends on the status (401, 403, 404, 410, other 4xx, ...).
    Only statuses in the retry list are retried; other 4xx are the caller's to fix.
    """

    default_user_message: ClassVar[str] = "The server refused the request."
    default_suggestion: ClassVar[str] = (
        "Check the request; sending it again unchanged will not help."
    )
    default_kind: ClassVar[str] = "status"

    def _messages(self) -> tuple[str, str]:
        status = self.status
        if status is None:
            return (self.default_user_message, self.default_suggestion)
        known = STATUS_MESSAGES.get(status)
        if known is not None:
            user, suggestion = known
            if self.retry_after is not None and status >= 500:
                suggestion = (
                    "Try again later."
                    if self.retry_after > LONGEST_SHOWN_WAIT
                    else f"Try again in {wait_words(self.retry_after)}."
                )
            return (user, suggestion)
        if status >= 500:
            return (
                f"The server had a problem (HTTP {status}).",
                "Try again later; the problem is on the server's side, not yours.",
            )
        if status >= 400:
            return (f"The server refused the request (HTTP {status}).", self.default_suggestion)
        return (
            f"The server gave an unexpected answer (HTTP {status}).",
            "Try again, and report it if it keeps happening.",
        )


class ServerError(HTTPStatusError):
    """The server answered with a 5xx status; 500/502/503/504 are retried.

    A 503 with ``Retry-After`` carries ``retry_after`` (and counts as throttled).
    """

    default_user_message: ClassVar[str] = "The server ran into a problem."
    default_suggestion: ClassVar[str] = (
        "Try again later; the problem is on the server's side, not yours."
    )


class TLSError(NetworkError, requests.exceptions.SSLError):
    """The secure (HTTPS) connection could not be established or verified. Never retried.

    ``kind``: ``"tls_certificate"`` (not trusted), ``"tls_expired"``,
    ``"tls_hostname"`` (certificate for another name: often a Wi-Fi login
    page), or ``"tls"`` (handshake failed). Also a ``requests.ConnectionError``
    (as requests' ``SSLError`` is) but not a :class:`ConnectionFailedError`.
    """

    default_user_message: ClassVar[str] = "Could not make a secure connection to the server."
    default_suggestion: ClassVar[str] = (
        "Check the address and your network; on public Wi-Fi, sign in to the network first."
    )
    default_kind: ClassVar[str] = "tls"

    def _messages(self) -> tuple[str, str]:
        server = self._server()
        clock = "Check that your computer's date and time are correct."
        match self.kind:
            case "tls_certificate":
                return (
                    f"The security certificate of {server} could not be verified.",
                    "On public Wi-Fi, sign in to the network first; otherwise check that "
                    "your computer's date and time are correct. Do not continue on a "
                    "network you do not trust.",
                )
            case "tls_expired":
                return (
                    f"The security certificate of {server} has expired.",
                    f"{clock} If they are, the site has to renew its certificate.",
                )
            case "tls_hostname":
                return (
                    f"The security certificate presented by {server} belongs to a different site.",
                    "Your network may be redirecting the connection (for example to a "
                    "Wi-Fi sign-in page). Sign in to the network or try another one.",
                )
        return (f"Could not make a secure connection to {server}.", self.default_suggestion)


class InvalidRequestError(NetworkError, ValueError):
    """The request cannot be sent as written: a bad URL, scheme, header or body. Never retried.

    ``kind``: ``"missing_schema"``, ``"invalid_schema"``, ``"invalid_url"``,
    ``"invalid_proxy"``, ``"invalid_header"`` or ``"invalid_request"``. Also a
    ``ValueError``, like requests' ``InvalidURL``. Nothing was sent.
    """

    default_user_message: ClassVar[str] = "The request could not be sent because it is not valid."
    default_suggestion: ClassVar[str] = (
        "This is probably a problem in the application; report it if it keeps happening."
    )
    default_kind: ClassVar[str] = "invalid_request"
    default_request_sent: ClassVar[bool] = False

    def _messages(self) -> tuple[str, str]:
        check = "Check the address, then try again."
        match self.kind:
            case "missing_schema":
                return ("The address is incomplete: it must start with https:// or http://.", check)
            case "invalid_schema":
                return (
                    "This kind of address is not supported; only https:// and http:// work.",
                    check,
                )
            case "invalid_url":
                return ("The address is not valid.", "Check the address for typos, then try again.")
            case "invalid_proxy":
                return (
                    "The proxy address in your settings is not valid.",
                    "Check your proxy settings (and the HTTP_PROXY and HTTPS_PROXY "
                    "environment variables).",
                )
        return (self.default_user_message, self.default_suggestion)


class OfflineError(NetworkError):
    """The network is unreachable; nothing was sent."""

    default_user_message: ClassVar[str] = "There is no network connection."
    default_suggestion: ClassVar[str] = (
        "Check your Wi-Fi or network cable. Requests will work again once you are back online."
    )
    default_kind: ClassVar[str] = "offline"
    default_request_sent: ClassVar[bool] = False


class CaptivePortalError(OfflineError):
    """A sign-in page (a captive portal) answers in the internet's place; nothing was sent.

    An :class:`OfflineError` because it behaves as one: nothing reaches the
    server until the user signs in, so code that queues work or shows stale
    answers while offline does the right thing. Only the words differ.
    ``portal_url`` is the page the network redirected to, when it said.
    """

    default_user_message: ClassVar[str] = "This network needs you to sign in first."
    default_suggestion: ClassVar[str] = (
        "Open a web browser and sign in to the network (hotel, airport or café Wi-Fi "
        "usually shows its sign-in page); requests will work again afterwards."
    )
    default_kind: ClassVar[str] = "captive_portal"

    def __init__(self, message: str = "", *, portal_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.portal_url = redact_url(portal_url) if portal_url else None


class BackoffError(NetworkError):
    """The origin's circuit is open after repeated failures; nothing was sent.

    ``retry_in`` (also ``retry_after``) is when the next trial request may go.
    """

    default_user_message: ClassVar[str] = (
        "Requests to the server are paused because it failed several times in a row."
    )
    default_suggestion: ClassVar[str] = "Wait a moment, then try again."
    default_kind: ClassVar[str] = "backoff"
    default_request_sent: ClassVar[bool] = False

    def __init__(self, message: str = "", *, retry_in: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, retry_after=retry_in, **kwargs)
        self.retry_in: float | None = self.retry_after

    def _messages(self) -> tuple[str, str]:
        user = (
            f"Requests to {self.host} are paused because it failed several times in a row."
            if self.host
            else self.default_user_message
        )
        if self.retry_in is not None:
            return (user, wait_then_retry(self.retry_in))
        return (user, self.default_suggestion)


class RequestCancelledError(NetworkError):
    """The caller cancelled the request (a :class:`~connmgr.clock.CancelToken`)."""

    default_user_message: ClassVar[str] = "The request was cancelled."
    default_suggestion: ClassVar[str] = "Start it again if you still need it."
    default_kind: ClassVar[str] = "cancelled"

    @classmethod
    def from_token(
        cls, token: _Cancellable, *, url: str | None = None, attempts: int = 0
    ) -> RequestCancelledError:
        """The error for a cancelled ``token``, its ``reason`` as the message; the caller raises it.

        Example::

            >>> from connmgr.clock import CancelToken
            >>> token = CancelToken()
            >>> token.cancel("the user closed the window")
            >>> str(RequestCancelledError.from_token(token, url="https://x.test/a"))
            'the user closed the window (https://x.test/a)'
        """
        return cls(token.reason or "cancelled", url=url, attempts=attempts)


# --------------------------------------------------------------------------- URL helpers


def _url_of(request: Any, response: requests.Response | None) -> str | None:
    url = getattr(request, "url", None)
    if isinstance(url, str) and url:
        return url
    if response is not None:
        url = getattr(response, "url", None)
        if isinstance(url, str) and url:
            return url
    return None


def _authority(url: str | None) -> str | None:
    if not url:
        return None
    _, sep, rest = url.partition("://")
    if not sep:
        return None
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    return authority or None


def _host_of(url: str | None) -> str | None:
    """``host[:port]``, the port only when it is not the scheme's default."""
    authority = _authority(url)
    if authority is None or url is None:
        return None
    scheme = url.partition("://")[0].lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and authority.endswith(default):
        authority = authority[: -len(default)]
    return authority


def _hostname_of(url: str | None) -> str | None:
    authority = _authority(url)
    if authority is None:
        return None
    if authority.startswith("["):
        return authority.partition("]")[0] + "]"
    return authority.rpartition(":")[0] if ":" in authority else authority
