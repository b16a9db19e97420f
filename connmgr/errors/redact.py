"""Redaction: keep credentials out of messages, ``details`` and logs.

:func:`redact_url`, :func:`redact_headers` and :func:`redact_text` mask
passwords, tokens, API keys and signatures (in URLs, header values and free
text) with ``***`` while leaving harmless names readable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import unquote_plus

__all__ = ["redact_headers", "redact_text", "redact_url"]

#: What replaces a secret.
_MASK: Final = "***"


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
