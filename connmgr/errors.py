"""The one error tree of connmgr (skeleton: classify_error, redaction and messages
are being completed in the foundation issue).

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
        ├── OfflineError
        ├── BackoffError
        └── RequestCancelledError
"""

from __future__ import annotations

from typing import Any, ClassVar

import requests

__all__ = [
    "BackoffError",
    "ConnectionFailedError",
    "DNSError",
    "DeadlineExceededError",
    "HTTPStatusError",
    "NetworkError",
    "OfflineError",
    "RateLimitError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "ServerError",
    "TLSError",
]


class NetworkError(requests.RequestException):
    """Base of every error connmgr raises."""

    default_user_message: ClassVar[str] = "A network error occurred."
    default_suggestion: ClassVar[str] = "Check your connection and try again."

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
    ) -> None:
        super().__init__(message or self.default_user_message, response=response, request=request)
        self.url = url
        self.details = details or message
        self.user_message = user_message or self.default_user_message
        self.suggestion = suggestion or self.default_suggestion
        self.retry_after = retry_after
        self.attempts = attempts
        self.operation = operation


class ConnectionFailedError(NetworkError, requests.ConnectionError):
    """The connection could not be made or was lost."""


class DNSError(ConnectionFailedError):
    """The host name could not be resolved."""


class RequestTimeoutError(NetworkError, requests.Timeout):
    """The server did not answer in time."""


class DeadlineExceededError(RequestTimeoutError):
    """The whole logical request ran past its total deadline."""


class RateLimitError(NetworkError):
    """The server (or the client-side gate) says: slow down."""


class HTTPStatusError(NetworkError, requests.HTTPError):
    """The server answered with an error status."""


class ServerError(HTTPStatusError):
    """The server answered with a 5xx status."""


class TLSError(NetworkError, requests.exceptions.SSLError):
    """The secure connection could not be established or verified."""


class OfflineError(NetworkError):
    """The network is unreachable; nothing was sent."""


class BackoffError(NetworkError):
    """The origin's circuit is open; nothing was sent."""

    def __init__(self, message: str = "", *, retry_in: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, retry_after=retry_in, **kwargs)
        self.retry_in = retry_in


class RequestCancelledError(NetworkError):
    """The caller cancelled the request."""
