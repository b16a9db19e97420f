"""The one error tree of connmgr: classes, classification, verdicts, user messages, redaction.

Every error connmgr raises derives from :class:`NetworkError`, which derives
from ``requests.RequestException``, so code that already catches requests'
exceptions keeps working (the tree is drawn in :mod:`connmgr.errors.tree`).

The package, one concern per module (every public name is re-exported here):

* :mod:`~connmgr.errors.tree`: the exception classes and their plain words;
* :mod:`~connmgr.errors.redact`: :func:`redact_url`, :func:`redact_headers`,
  :func:`redact_text`;
* :mod:`~connmgr.errors.classify`: :func:`classify_error`, which maps anything
  requests or urllib3 raise (and a ``requests.Response``) to the tree;
* :mod:`~connmgr.errors.responses`: the status and header rules of a response;
* :mod:`~connmgr.errors.verdict`: :func:`judge`, the one classification of
  one attempt (a :class:`Verdict` with its :class:`Outcome`), and the older
  :func:`is_retryable` and :func:`outcome_of` on top of the same rules;
* :mod:`~connmgr.errors.urls`: :func:`check_url`, malformed URLs refused before sending;
* :mod:`~connmgr.errors.formatter`: :class:`ErrorMessageFormatter`.

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

from connmgr.errors.classify import classify_error
from connmgr.errors.formatter import ErrorMessageFormatter
from connmgr.errors.redact import redact_headers, redact_text, redact_url
from connmgr.errors.tree import (
    BackoffError,
    CaptivePortalError,
    ConnectionFailedError,
    DeadlineExceededError,
    DNSError,
    HTTPStatusError,
    InvalidRequestError,
    NetworkError,
    OfflineError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    ServerError,
    TLSError,
)
from connmgr.errors.urls import check_url
from connmgr.errors.usage import ManagerClosedError
from connmgr.errors.verdict import (
    DEFAULT_RETRY_STATUS_CODES,
    Outcome,
    Verdict,
    is_retryable,
    judge,
    outcome_of,
)

__all__ = [
    "DEFAULT_RETRY_STATUS_CODES",
    "BackoffError",
    "CaptivePortalError",
    "ConnectionFailedError",
    "DNSError",
    "DeadlineExceededError",
    "ErrorMessageFormatter",
    "HTTPStatusError",
    "InvalidRequestError",
    "ManagerClosedError",
    "NetworkError",
    "OfflineError",
    "Outcome",
    "RateLimitError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "ServerError",
    "TLSError",
    "Verdict",
    "check_url",
    "classify_error",
    "is_retryable",
    "judge",
    "outcome_of",
    "redact_headers",
    "redact_text",
    "redact_url",
]
