"""Argument checks shared by connmgr's constructors: the messages name the argument.

A wrong type is a :class:`TypeError` naming the argument and the type it got,
raised before anything is built, so a caller's mistake never surfaces later as
a confusing failure in the middle of a request.
"""

from __future__ import annotations

__all__ = ["check_type"]


def check_type(
    name: str, value: object, expected: type | tuple[type, ...], *, optional: bool = True
) -> None:
    """Raise :class:`TypeError` unless ``value`` is an ``expected`` (or ``None`` if optional).

    Example::

        check_type("retry", RetryConfig(), RetryConfig)      # passes
        check_type("retry", "fast", RetryConfig)
        # TypeError: retry must be a RetryConfig or None, got str
    """
    if (value is None and optional) or isinstance(value, expected):
        return
    kinds = expected if isinstance(expected, tuple) else (expected,)
    wanted = " or ".join(kind.__name__ for kind in kinds)
    if optional:
        wanted += " or None"
    raise TypeError(f"{name} must be a {wanted}, got {type(value).__name__}")
