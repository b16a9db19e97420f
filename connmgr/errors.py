"""The one error tree of connmgr: classes, classification, user messages, redaction.

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
``str(err)`` is a short redacted one-liner for logs.

Three pure functions sit on top:

* :func:`classify_error` maps anything requests or urllib3 raise (and a
  ``requests.Response``) to the tree, keeping the original as ``__cause__``;
* :func:`is_retryable` says whether another attempt may help;
* :func:`outcome_of` gives the outcome the state machine is fed.

and three redaction helpers, :func:`redact_url`, :func:`redact_headers` and
:func:`redact_text`, keep credentials out of messages, ``details`` and logs.

Example::

    try:
        response = session.get(url, timeout=(5, 30))
        response.raise_for_status()
    except requests.RequestException as exc:
        err = classify_error(exc, url=url)
        log.warning("fetch failed: %s", err)              # redacted one-liner
        show_dialog(ErrorMessageFormatter.format_error(err),
                    details=ErrorMessageFormatter.format_details(err))
        if is_retryable(err):
            ...
"""

from __future__ import annotations

import errno as _errno
import http.client
import math
import re
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import unquote_plus

import requests
import urllib3.exceptions as _u3
from requests.structures import CaseInsensitiveDict

if TYPE_CHECKING:
    from connmgr.ratelimit import RateLimitInfo

__all__ = [
    "DEFAULT_RETRY_STATUS_CODES",
    "BackoffError",
    "ConnectionFailedError",
    "DNSError",
    "DeadlineExceededError",
    "ErrorMessageFormatter",
    "HTTPStatusError",
    "InvalidRequestError",
    "NetworkError",
    "OfflineError",
    "RateLimitError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "ServerError",
    "TLSError",
    "classify_error",
    "is_retryable",
    "outcome_of",
    "redact_headers",
    "redact_text",
    "redact_url",
]

#: The statuses retried by default (the original plan's list).
DEFAULT_RETRY_STATUS_CODES: Final[frozenset[int]] = frozenset({429, 500, 502, 503, 504})

#: What replaces a secret.
_MASK: Final = "***"
#: ``str(err)`` is cut to this many characters: a log line, not a dump.
_MAX_LINE: Final = 400


# --------------------------------------------------------------------------- redaction

# A name is secret when it *is* one of these words or contains one as a word
# ("api_key", "accessToken", "X-Amz-Signature"): word matching keeps harmless
# names such as "keyword", "author" or "country_code" readable in logs.
_SECRET_WORDS: Final = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "signature",
        "sig",
        "auth",
        "authorization",
        "oauth",
        "session",
        "sessionid",
        "sid",
        "key",
        "apikey",
        "credential",
        "credentials",
        "jwt",
        "otp",
        "cookie",
        "bearer",
    }
)
# Whole names that are secret on their own but too common inside other names.
_SECRET_NAMES: Final = frozenset({"code", "pass", "pin"})
# Glued spellings ("accesstoken", "clientsecret", "xapikey") carry these.
_SECRET_FRAGMENTS: Final = ("token", "secret", "passw", "apikey", "signature", "credential")
# Header names are matched more broadly (any of these anywhere in the name),
# as the design asks; Idempotency-Key is a retry identifier, not a credential,
# and seeing it in logs is how duplicate requests are debugged.
_HEADER_FRAGMENTS: Final = (
    "token",
    "secret",
    "key",
    "auth",
    "cookie",
    "passw",
    "signature",
    "credential",
    "session",
)
_HEADER_ALLOWED: Final = frozenset({"idempotency-key"})

_CAMEL_RE: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SPLIT_RE: Final = re.compile(r"[^a-z0-9]+")


def _is_secret_name(name: str) -> bool:
    """Whether a query parameter / field called ``name`` holds a secret."""
    name = unquote_plus(name)
    lowered = name.strip().lower()
    if not lowered:
        return False
    if lowered in _SECRET_NAMES or lowered in _SECRET_WORDS:
        return True
    words = _WORD_SPLIT_RE.split(_CAMEL_RE.sub("_", name.strip()).lower())
    if any(word in _SECRET_WORDS for word in words):
        return True
    compact = "".join(words)
    return any(fragment in compact for fragment in _SECRET_FRAGMENTS)


def _is_secret_header(name: str) -> bool:
    """Whether a header called ``name`` holds a secret (design: token/secret/key/auth...)."""
    lowered = name.strip().lower()
    if lowered in _HEADER_ALLOWED:
        return False
    return any(fragment in lowered for fragment in _HEADER_FRAGMENTS) or _is_secret_name(name)


def _is_secret_field(name: str) -> bool:
    """A name inside free text: header-style names ("X-Authkey") get the header rule."""
    return _is_secret_header(name) if "-" in name else _is_secret_name(name)


_PAIR_RE: Final = re.compile(r"(^|[&;])([^=&;#]*)=([^&;#]*)")


def _redact_pairs(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        lead, name, value = match.group(1), match.group(2), match.group(3)
        if value and value != _MASK and _is_secret_name(name):
            return f"{lead}{name}={_MASK}"
        return match.group(0)

    return _PAIR_RE.sub(mask, text)


def redact_url(url: str) -> str:
    """``url`` with credentials masked: ``user:pass@`` and secret query values.

    The user-info part becomes ``***@``; the values of query (and fragment)
    parameters whose names mean a secret become ``***``: ``token``,
    ``access_token``, ``api_key``/``apikey``/``key``, ``password``/``passwd``,
    ``secret``/``client_secret``, ``signature``/``sig`` (``X-Amz-Signature``),
    ``auth``, ``session``/``sid``, ``code``, ... case-insensitively, in
    snake_case, kebab-case and camelCase. Harmless names stay readable
    (``q``, ``keyword``, ``author``, ``page``). Everything else, including the
    order and the encoding of the query, is left as it was. Never raises.

    Example::

        >>> redact_url("https://bob:hunter2@api.example.com/v1/search?q=daft+punk&api_key=abc123")
        'https://***@api.example.com/v1/search?q=daft+punk&api_key=***'
        >>> redact_url("https://example.com/cb#access_token=xyz&state=1")
        'https://example.com/cb#access_token=***&state=1'
    """
    url = str(url)  # tolerate a yarl/furl URL object from untyped callers
    rest, hash_mark, fragment = url.partition("#")
    rest, question, query = rest.partition("?")
    scheme, sep, remainder = rest.partition("://")
    if sep:
        # The authority ends at the first "/" (RFC 3986); the user info at its
        # last "@" (a password may contain "@" when percent-encoding was skipped).
        authority, slash, path = remainder.partition("/")
        if "@" in authority:
            authority = f"{_MASK}@{authority.rpartition('@')[2]}"
        rest = f"{scheme}{sep}{authority}{slash}{path}"
    if query:
        query = _redact_pairs(query)
    if fragment and "=" in fragment:
        fragment = _redact_pairs(fragment)
    return f"{rest}{question}{query}{hash_mark}{fragment}"


def redact_headers(headers: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None) -> dict[str, str]:
    """A plain ``dict`` copy of ``headers`` with every secret value replaced by ``***``.

    Masked: ``Authorization``, ``Proxy-Authorization``, ``Cookie``,
    ``Set-Cookie``, ``X-Api-Key`` and any header whose name contains
    ``token``, ``secret``, ``key``, ``auth``, ``cookie``, ``password``,
    ``signature``, ``credential`` or ``session`` (except ``Idempotency-Key``,
    which is a retry identifier). Names keep their spelling; values become
    ``str``. Accepts any mapping (``requests``' case-insensitive dict
    included), an iterable of pairs, or ``None`` (an empty dict).

    Example::

        >>> redact_headers({"Authorization": "Bearer abc", "Accept": "text/html"})
        {'Authorization': '***', 'Accept': 'text/html'}
    """
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    redacted: dict[str, str] = {}
    for name, value in items:
        key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        if _is_secret_header(key):
            redacted[key] = _MASK
        else:
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            redacted[key] = redact_text(text)
    return redacted


_URL_RE: Final = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://[^\s'"<>`]+""")
_URL_TAIL: Final = ".,;:!?)]}"
_AUTH_SCHEME_RE: Final = re.compile(
    r"(?i)\b(bearer|basic|digest|negotiate|ntlm)(\s+)(?!\*\*\*)([A-Za-z0-9._~+/=\-]+)"
)
_TOKEN_SCHEME_RE: Final = re.compile(r"(?i)\b(token)(\s+)([A-Za-z0-9._~+/=\-]{16,})")
_QUOTED_PAIR_RE: Final = re.compile(
    r"""(['"])([A-Za-z0-9_.\-]{1,64})\1(\s*[:=]\s*)(['"])(.*?)(?<!\\)\4"""
)
_HEADER_LINE_RE: Final = re.compile(
    r"(?im)(?<![\w\-])(authorization|proxy-authorization|cookie|set-cookie|password|passwd"
    r"|secret|token|api-?key|[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+)(\s*:[ \t]*)(?=\S)"
    r"""([^\r\n'"]+)"""
)
_PLAIN_PAIR_RE: Final = re.compile(
    r"""(?<![\w.\-])([A-Za-z_][A-Za-z0-9_.\-]*)=('[^']*'|"[^"]*"|[^\s&;,'"<>(){}\[\]]+)"""
)


def redact_text(text: str) -> str:
    """``text`` (an exception message, a log line) with credentials masked.

    Masks URLs inside the text (see :func:`redact_url`), ``Bearer``/``Basic``
    credentials, header lines and dict/JSON entries whose names mean a secret
    (``Authorization: ...``, ``'Cookie': '...'``, ``"access_token": "..."``)
    and ``name=value`` pairs with a secret name (``token=...``, ``password=...``).
    Idempotent; never raises.

    Example::

        >>> redact_text("GET https://x.test/a?token=abc failed; Authorization: Bearer abc")
        'GET https://x.test/a?token=*** failed; Authorization: ***'
    """
    text = str(text)
    if not text:
        return text

    def url(match: re.Match[str]) -> str:
        found = match.group(0)
        stripped = found.rstrip(_URL_TAIL)
        return redact_url(stripped) + found[len(stripped) :]

    def quoted(match: re.Match[str]) -> str:
        name = match.group(2)
        if _is_secret_field(name):
            q = match.group(4)
            return f"{match.group(1)}{name}{match.group(1)}{match.group(3)}{q}{_MASK}{q}"
        return match.group(0)

    def header_line(match: re.Match[str]) -> str:
        name = match.group(1)
        if _is_secret_field(name) and match.group(3).strip() != _MASK:
            return f"{name}{match.group(2)}{_MASK}"
        return match.group(0)

    def plain(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        if value[:1] not in ("'", '"'):
            value = value.rstrip(".,:;!?")  # sentence punctuation, not part of the secret
        if value and value != _MASK and _is_secret_name(name):
            return f"{name}={_MASK}" + match.group(2)[len(value) :]
        return match.group(0)

    text = _URL_RE.sub(url, text)
    text = _QUOTED_PAIR_RE.sub(quoted, text)
    text = _HEADER_LINE_RE.sub(header_line, text)
    text = _AUTH_SCHEME_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{_MASK}", text)
    text = _TOKEN_SCHEME_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{_MASK}", text)
    return _PLAIN_PAIR_RE.sub(plain, text)


# --------------------------------------------------------------------------- wording helpers


def _duration(seconds: float) -> str:
    """A wait in plain words, rounded up: never tell someone to come back too early."""
    whole = max(1, math.ceil(seconds - 1e-9))
    if whole < 120:
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(whole / 60)
    if minutes < 120:
        return f"{minutes} minutes"
    hours = math.ceil(minutes / 60)
    if hours < 48:
        return f"{hours} hours"
    return f"{math.ceil(hours / 24)} days"


def _limit(seconds: float) -> str:
    """A configured limit in plain words, as written (0.5 s stays 0.5 s)."""
    if seconds >= 10 or float(seconds).is_integer():
        whole = round(seconds)
        return f"{whole} second{'s' if whole != 1 else ''}"
    return f"{seconds:.2g} seconds"


def _one_line(text: str, limit: int = _MAX_LINE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


# --------------------------------------------------------------------------- the tree


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
        text = _one_line(redact_text(str(message))) if message else ""
        super().__init__(text, response=response, request=request)
        if url is None:
            url = _url_of(self.request, response)
        self.url: str | None = redact_url(url) if url else None
        self.details: str = redact_text(str(details)) if details else text
        self._user_message = redact_text(user_message) if user_message else None
        self._suggestion = redact_text(suggestion) if suggestion else None
        self.retry_after: float | None = _finite_or_none(retry_after)
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
        return _one_line(line)


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
    ``"decoding"`` (body damaged), ``"proxy"``, or ``"connection"``.
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
        self.timeout: float | None = _finite_or_none(timeout)

    def _messages(self) -> tuple[str, str]:
        server = self._server()
        if self.kind == "connect_timeout":
            within = f" within {_limit(self.timeout)}" if self.timeout else ""
            return (
                f"Could not connect to {server}: it did not answer{within}.",
                "Check your internet connection and try again.",
            )
        waited = f" (waited {_limit(self.timeout)})" if self.timeout else ""
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
                f"The request was stopped because it took longer than {_limit(self.timeout)}.",
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
        if self.retry_after is not None:
            return (
                self.default_user_message,
                f"Wait {_duration(self.retry_after)}, then try again.",
            )
        return (self.default_user_message, self.default_suggestion)


_STATUS_MESSAGES: Final[dict[int, tuple[str, str]]] = {
    400: (
        "The server could not understand the request.",
        "This is probably a problem in the application; report it if it keeps happening.",
    ),
    401: (
        "You need to sign in to do this.",
        "Sign in (or check your password or API key), then try again.",
    ),
    403: (
        "The server refused access to this.",
        "Check that your account is allowed to do this; signing in again may help.",
    ),
    404: (
        "The page or item was not found on the server.",
        "Check the address or search terms; it may have been moved or removed.",
    ),
    405: (
        "The server does not allow this kind of request here.",
        "This is probably a problem in the application; report it if it keeps happening.",
    ),
    408: ("The server stopped waiting for the request.", "Try again."),
    409: (
        "The request conflicts with the current state on the server.",
        "Refresh, then try again.",
    ),
    410: (
        "This item has been removed from the server and is no longer available.",
        "Remove or update any links or bookmarks that point to it.",
    ),
    413: ("What was sent is too large for the server.", "Try something smaller."),
    414: ("The address is too long for the server.", "Try a shorter search or fewer filters."),
    415: (
        "The server could not accept the data that was sent.",
        "Check what you entered, then try again.",
    ),
    422: (
        "The server could not accept the data that was sent.",
        "Check what you entered, then try again.",
    ),
    451: ("This is not available here for legal reasons.", "It cannot be accessed from here."),
    500: (
        "The server ran into a problem.",
        "Try again later; the problem is on the server's side, not yours.",
    ),
    501: (
        "The server does not support this request.",
        "Sending it again will not help; report it if it keeps happening.",
    ),
    502: (
        "The server is having trouble (bad gateway).",
        "Try again in a moment; the problem is on the server's side.",
    ),
    503: (
        "The server is temporarily unavailable (busy or down for maintenance).",
        "Try again in a few minutes.",
    ),
    504: (
        "The server took too long to respond (gateway timeout).",
        "Try again in a moment; the problem is on the server's side.",
    ),
}


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
        known = _STATUS_MESSAGES.get(status)
        if known is not None:
            user, suggestion = known
            if self.retry_after is not None and status >= 500:
                suggestion = f"Try again in {_duration(self.retry_after)}."
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
            return (user, f"Wait {_duration(self.retry_in)}, then try again.")
        return (user, self.default_suggestion)


class RequestCancelledError(NetworkError):
    """The caller cancelled the request (a :class:`~connmgr.clock.CancelToken`)."""

    default_user_message: ClassVar[str] = "The request was cancelled."
    default_suggestion: ClassVar[str] = "Start it again if you still need it."
    default_kind: ClassVar[str] = "cancelled"


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
            return _finite_or_none(value)
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
    if isinstance(exc, requests.exceptions.InvalidHeader | _u3.InvalidHeader):
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
    _u3.InvalidHeader,
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
        return _from_response(exc.response, details_prefix=details)

    if _first(chain, requests.exceptions.JSONDecodeError) is not None:
        return make(NetworkError, "invalid_response")
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
        return _from_status(int(retry_status.group(1)), None, details=details)

    if (
        _first(chain, (requests.ConnectionError, _u3.NewConnectionError, ConnectionError))
        is not None
    ):
        return make(ConnectionFailedError, "connection")
    if isinstance(exc, requests.HTTPError):
        found = _HTTP_ERROR_STATUS_RE.match(_text_of(exc))
        if found is not None:
            return _from_status(int(found.group(1)), None, details=details)
        return HTTPStatusError(_one_line(_text_of(exc)), details=details)
    return make(NetworkError, "error")


# --------------------------------------------------------------------------- responses

# Headers that can say "no quota left". Looked up first, so that the response
# of nearly every request, which has none of them, costs outcome_of a few dict
# lookups rather than a full header parse.
_QUOTA_HEADERS: Final = (
    "ratelimit",
    "ratelimit-remaining",
    "x-ratelimit-remaining",
    "x-rate-limit-remaining",
)
_DETAIL_HEADERS: Final = (
    "content-type",
    "content-length",
    "retry-after",
    "date",
    "server",
    "via",
    "location",
)
_DETAIL_HEADER_MARKERS: Final = ("ratelimit", "rate-limit", "request-id", "trace", "cf-ray")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        if isinstance(headers, CaseInsensitiveDict):
            return None  # the hot path: every response's outcome reads a few headers
        # A plain dict (a test, a mock) may spell the name in any case.
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return str(candidate)
        return None
    return str(value)


def _server_now(headers: Mapping[str, str]) -> float:
    """The server's "now" from its ``Date`` header, else ours.

    Retry-After dates and epoch reset times are the server's clock; measuring
    them against its own Date makes them immune to a skewed client clock.
    """
    date = _header(headers, "Date")
    if date:
        try:
            return parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return time.time()


def _parse_retry_after(value: str, now: float) -> float | None:
    # Lazy: ratelimit may one day import errors; the parser lives there, once.
    from connmgr.ratelimit import parse_retry_after

    return parse_retry_after(value, now=now)


def _quota(headers: Mapping[str, str]) -> RateLimitInfo | None:
    # Lazy, like parse_retry_after: the header dialects are parsed in one place.
    from connmgr.ratelimit import parse_rate_limit_headers

    return parse_rate_limit_headers(headers, _server_now(headers))


def _quota_exhausted(headers: Mapping[str, str]) -> bool:
    """Whether rate-limit headers (any dialect) say no request is left."""
    values = [_header(headers, name) for name in _QUOTA_HEADERS]
    if all(value is None for value in values):
        return False
    if values[0] is None:
        # The common case, a plain count ("X-RateLimit-Remaining: 57"), needs no
        # full parse; the structured RateLimit header (values[0]) always does.
        plain = next(value for value in values if value is not None).strip()
        if plain.isdigit():
            return int(plain) == 0
    info = _quota(headers)
    return info is not None and info.exhausted


def _retry_after_of(headers: Mapping[str, str], *, rate_limited: bool) -> float | None:
    """Seconds to wait: ``Retry-After``, and for a rate limit also the reset headers."""
    if rate_limited:
        info = _quota(headers)
        if info is None:
            return None
        return info.retry_after if info.retry_after is not None else info.reset_after
    raw = _header(headers, "Retry-After")
    return None if raw is None else _parse_retry_after(raw, _server_now(headers))


def _response_details(response: requests.Response) -> str:
    reason = response.reason or ""
    lines = [f"HTTP {response.status_code} {reason}".rstrip()]
    picked = {
        name: value
        for name, value in response.headers.items()
        if name.lower() in _DETAIL_HEADERS
        or any(marker in name.lower() for marker in _DETAIL_HEADER_MARKERS)
    }
    if picked:
        lines.append(
            "headers: " + ", ".join(f"{k}: {v}" for k, v in redact_headers(picked).items())
        )
    # Only a body that was already read: reading here would consume a stream.
    content = response.__dict__.get("_content")
    if isinstance(content, bytes) and content:
        snippet = content[:300].decode("utf-8", "replace")
        lines.append("body: " + _one_line(snippet, 300))
    return "\n".join(lines)  # redacted once, by NetworkError.__init__


def _from_status(
    status: int,
    response: requests.Response | None,
    *,
    details: str | None = None,
    reason: str = "",
) -> NetworkError:
    headers: Mapping[str, str] = response.headers if response is not None else {}
    # GitHub and others answer 403 (not 429) when the quota is spent.
    rate_limited = status == 429 or (status == 403 and _quota_exhausted(headers))
    retry_after = _retry_after_of(headers, rate_limited=rate_limited) if headers else None
    message = f"HTTP {status} {reason}".rstrip()
    cls: type[NetworkError]
    if rate_limited:
        cls = RateLimitError
    elif status >= 500:
        cls = ServerError
    else:
        cls = HTTPStatusError
    return cls(message, details=details, response=response, status=status, retry_after=retry_after)


def _from_response(
    response: requests.Response, *, details_prefix: str | None = None
) -> NetworkError:
    details = _response_details(response)
    if details_prefix:
        details = f"{details}\n{details_prefix}"
    return _from_status(
        response.status_code, response, details=details, reason=response.reason or ""
    )


# --------------------------------------------------------------------------- public functions


def classify_error(
    exc_or_response: BaseException | requests.Response,
    *,
    url: str | None = None,
    attempts: int = 0,
    operation: str | None = None,
) -> NetworkError:
    """Map an exception (or an error ``Response``) to the connmgr error tree.

    A :class:`NetworkError` is returned as it is (the same object); the
    keyword arguments only fill its context where it is still empty. Anything
    else becomes a new error whose ``__cause__`` is the original (as after
    ``raise err from exc``) and whose ``response`` is the response, if any:

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
    InvalidHeader, URLRequired, ...
    TooManyRedirects / JSONDecodeError             NetworkError
    HTTPError or Response: 429 (403 out of quota)  RateLimitError
    HTTPError or Response: 5xx                     ServerError
    HTTPError or Response: other                   HTTPStatusError
    anything else                                  NetworkError
    ============================================== ===============================

    ``retry_after`` comes from ``Retry-After`` (delta-seconds or an HTTP-date,
    measured against the response's ``Date``) or, for a 429, from the
    ``RateLimit-Reset`` / ``X-RateLimit-Reset`` headers. ``url`` defaults to
    the request's. Pure: no I/O, no sleeping.

    Example::

        try:
            requests.get("http://127.0.0.1:9/", timeout=1)
        except requests.RequestException as exc:
            err = classify_error(exc, attempts=1)
        type(err).__name__, err.kind      # ('ConnectionFailedError', 'refused')
    """
    if isinstance(exc_or_response, NetworkError):
        err = exc_or_response
        if err.url is None and url:
            err.url = redact_url(url)
        if not err.attempts and attempts:
            err.attempts = attempts
        if err.operation is None and operation:
            err.operation = operation
        return err
    given: object = exc_or_response
    if not isinstance(given, BaseException | requests.Response):
        raise TypeError(f"classify_error needs an exception or a requests.Response, got {given!r}")
    if isinstance(exc_or_response, requests.Response):
        err = _from_response(exc_or_response)
    else:
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
    if url is None:
        url = _url_of(err.request, err.response)
    if url:
        err.url = redact_url(url)
    err.attempts = attempts
    err.operation = operation
    return err


def is_retryable(
    error: BaseException | requests.Response,
    retry_status_codes: AbstractSet[int] = DEFAULT_RETRY_STATUS_CODES,
) -> bool:
    """Whether another attempt may succeed (the "transient or throttled" kinds). Pure.

    * Yes: connection failures (refused, reset, cut off, no route, proxy),
      timeouts (connect and read), a DNS failure the resolver calls
      *temporary*, a :class:`RateLimitError` from the server (a 429, or a 403
      out of quota; while 429 is in the list), a status in
      ``retry_status_codes`` (429, 500, 502, 503, 504 by default).
    * No: a DNS name that does not exist (a typo does not fix itself within
      seconds; when the network is the cause, the manager's network check goes
      offline instead), :class:`DeadlineExceededError` (the time is spent),
      :class:`TLSError`, :class:`InvalidRequestError`, any other status,
      :class:`OfflineError`, :class:`BackoffError`, a :class:`RateLimitError`
      with no status (raised by the manager's gate before sending) and
      :class:`RequestCancelledError` (the gate or the caller decided), and
      anything unrecognised.

    Whether a *POST* may be resent is a separate question: see
    ``error.request_sent`` and :func:`connmgr.retry.may_resend`.

    Example::

        >>> is_retryable(ServerError(status=503))
        True
        >>> is_retryable(HTTPStatusError(status=404))
        False
    """
    if isinstance(error, requests.Response):
        return error.status_code in retry_status_codes
    err = classify_error(error)
    if isinstance(
        err,
        TLSError
        | InvalidRequestError
        | OfflineError
        | BackoffError
        | RequestCancelledError
        | DeadlineExceededError,
    ):
        return False
    if isinstance(err, DNSError):
        return err.temporary
    if isinstance(err, ConnectionFailedError | RequestTimeoutError):
        return True
    if isinstance(err, RateLimitError):
        if err.status is None:
            # Raised by the manager's gate: it already decided the wait does not
            # fit the deadline or max_wait, so another attempt cannot help.
            return False
        # 429 in the list stands for "retry when throttled", whatever the status
        # (a 403 out of quota too).
        return 429 in retry_status_codes or err.status in retry_status_codes
    if isinstance(err, HTTPStatusError):
        return err.status is not None and err.status in retry_status_codes
    return False


#: outcome_of's default for ``quota``: read the response's headers itself.
_UNREAD: Final = object()


def outcome_of(
    error_or_response: BaseException | requests.Response,
    retry_status_codes: AbstractSet[int] = DEFAULT_RETRY_STATUS_CODES,
    *,
    quota: object = _UNREAD,  # RateLimitInfo | None when the caller parsed the headers
) -> str:
    """The outcome of one attempt for the state machine. Pure.

    One of ``"success"``, ``"transient"``, ``"throttled"``, ``"unreachable"``,
    ``"fatal"`` (the values of :class:`connmgr.machine.Outcome`; ``"slow"``
    needs the elapsed time, so the manager decides it).

    For a response: 429, a 503 with ``Retry-After``, and any answer whose
    rate-limit headers say no quota remains are throttled; another status in
    ``retry_status_codes`` is transient; anything else (a 404 included) is a
    success: the server answered, the link works. A caller that has already
    parsed the headers passes ``quota=parse_rate_limit_headers(...)`` (``None``
    when there were none) and they are not read again.

    For an error: :class:`RateLimitError` is throttled; connect failures
    (refused, no route, DNS, connect timeout) and :class:`OfflineError` are
    *unreachable*: a candidate only, which the manager confirms with the
    network monitor and treats as transient when the network is up (a refused
    port means the server is down, not the network); read timeouts, resets,
    cut-off bodies, proxy failures, :class:`DeadlineExceededError`,
    :class:`BackoffError` and retryable statuses are transient; TLS, invalid
    requests, other statuses, cancellation and unknown errors are fatal (no
    state change, never retried).

    Example::

        >>> outcome_of(RateLimitError(retry_after=3))
        'throttled'
        >>> outcome_of(ConnectionFailedError(kind="refused"))
        'unreachable'
    """
    if isinstance(error_or_response, requests.Response):
        status = error_or_response.status_code
        if quota is not _UNREAD:
            # The caller already parsed the rate-limit headers: no second read.
            info: RateLimitInfo | None = quota  # type: ignore[assignment]  # (no cast() call)
            retry_after = info is not None and info.retry_after is not None
            if status == 429 or (status == 503 and retry_after):
                return "throttled"
            if status in retry_status_codes:
                return "transient"
            return "throttled" if info is not None and info.exhausted else "success"
        headers = error_or_response.headers
        if status == 429 or (status == 503 and _header(headers, "Retry-After") is not None):
            return "throttled"
        if status in retry_status_codes:
            return "transient"
        if _quota_exhausted(headers):
            return "throttled"
        return "success"
    err = classify_error(error_or_response)
    if isinstance(err, RateLimitError):
        return "throttled"
    if isinstance(err, HTTPStatusError):
        if err.status == 429 or (err.status == 503 and err.retry_after is not None):
            return "throttled"
        if err.status in retry_status_codes or (
            err.status is None and isinstance(err, ServerError)
        ):
            return "transient"
        return "fatal"
    if isinstance(err, OfflineError | DNSError):
        return "unreachable"
    if isinstance(err, DeadlineExceededError | BackoffError):
        return "transient"
    if isinstance(err, RequestTimeoutError):
        return "unreachable" if err.kind == "connect_timeout" else "transient"
    if isinstance(err, ConnectionFailedError):
        return "unreachable" if err.kind in ("refused", "unreachable") else "transient"
    return "fatal"


# --------------------------------------------------------------------------- formatter


class ErrorMessageFormatter:
    """Words for people: a dialog line, a retry banner, a Details/Copy box.

    The original plan's name; every method also works on the class itself
    (``ErrorMessageFormatter.format_error(err)``), accepts any exception (it is
    classified first) and never shows a secret. Subclass and override
    :meth:`format_error` to reword or translate.

    Example::

        >>> ErrorMessageFormatter.format_error(RateLimitError(retry_after=12))
        'The server asked us to slow down. Wait 12 seconds, then try again.'
        >>> ErrorMessageFormatter.format_retry(RateLimitError(retry_after=12), 12)
        'The server asked us to slow down. Trying again in 12 seconds.'
    """

    @classmethod
    def format_error(cls, error: BaseException | requests.Response) -> str:
        """What happened and what to do, in one or two plain sentences."""
        err = classify_error(error)
        return f"{err.user_message} {err.suggestion}".strip()

    @classmethod
    def format_retry(
        cls,
        error: BaseException | requests.Response,
        delay: float,
        *,
        attempt: int | None = None,
        max_attempts: int | None = None,
    ) -> str:
        """A retry banner: what happened, and when the next attempt goes.

        ``attempt`` is the attempt about to be made (2 for the first retry).
        """
        err = classify_error(error)
        when = "now" if delay <= 0 else f"in {_duration(delay)}"
        counter = (
            f" (attempt {attempt} of {max_attempts})"
            if attempt is not None and max_attempts is not None
            else ""
        )
        return f"{err.user_message} Trying again {when}{counter}."

    @classmethod
    def format_details(cls, error: BaseException | requests.Response) -> str:
        """Several lines of technical detail, redacted, for a Details/Copy box."""
        err = classify_error(error)
        lines = [
            f"Error: {type(err).__name__} ({err.kind})",
            f"What happened: {err.user_message}",
            f"What to do: {err.suggestion}",
        ]
        if err.url:
            method = err.method
            lines.append(f"Request: {method} {err.url}" if method else f"Request: {err.url}")
        if err.operation:
            lines.append(f"Operation: {err.operation}")
        if err.status is not None:
            reason = err.response.reason if err.response is not None else ""
            lines.append(f"HTTP status: {err.status} {reason or ''}".rstrip())
        if err.retry_after is not None:
            lines.append(f"Retry after: {err.retry_after:g} s")
        if err.attempts:
            lines.append(f"Attempts: {err.attempts}")
        lines.append(
            "Request sent: "
            + ("possibly" if err.request_sent else "no (it never left this machine)")
        )
        headers = getattr(err.request, "headers", None)
        if isinstance(headers, Mapping) and headers:
            shown = ", ".join(f"{k}: {v}" for k, v in redact_headers(headers).items())
            lines.append(f"Request headers: {shown}")
        if err.details:
            lines.append("Details:")
            lines.extend(f"  {line}" for line in redact_text(err.details).splitlines())
        return "\n".join(lines)
