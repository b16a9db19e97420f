"""Readable errors for assignments to frozen dataclasses (imports nothing of connmgr).

On CPython 3.11 a ``@dataclass(frozen=True, slots=True)`` class answers an
assignment to a name that is not one of its fields with
``TypeError: super(type, obj): obj must be an instance or subtype of type``:
the generated ``__setattr__`` refers to the class as it was before ``slots=True``
rebuilt it. That message names neither the class nor the attribute, nor says
what to do instead. :func:`explain_frozen`, applied on top of ``@dataclass``,
replaces ``__setattr__`` and ``__delattr__`` with ones that raise
:class:`dataclasses.FrozenInstanceError` naming both and pointing to
:func:`dataclasses.replace`.

Construction, :func:`dataclasses.replace`, :mod:`copy` and :mod:`pickle` are
unaffected: a frozen dataclass's ``__init__`` and ``__setstate__`` write through
``object.__setattr__``.

Example::

    @explain_frozen
    @dataclass(frozen=True, slots=True)
    class Point:
        x: int

    Point(1).x = 2
    # FrozenInstanceError: cannot assign to Point.x: Point is frozen;
    # make a changed copy with dataclasses.replace(obj, x=...)
"""

from __future__ import annotations

import dataclasses
from typing import Any, NoReturn, TypeVar

__all__ = ["explain_frozen"]

_T = TypeVar("_T")


def _message(cls: type, name: str, verb: str) -> str:
    owner = cls.__name__
    field_names = [f.name for f in dataclasses.fields(cls)]
    if name in field_names:
        return (
            f"cannot {verb} {owner}.{name}: {owner} is frozen; "
            f"make a changed copy with dataclasses.replace(obj, {name}=...)"
        )
    listed = ", ".join(field_names) or "none"
    return (
        f"cannot {verb} {owner}.{name}: {owner} is frozen and has no field {name!r} "
        f"(fields: {listed}); make a changed copy with dataclasses.replace(obj, field=...)"
    )


def explain_frozen(cls: type[_T]) -> type[_T]:
    """Make assignments to a frozen dataclass raise a ``FrozenInstanceError`` that says why.

    Apply it above ``@dataclass(frozen=True, ...)``. As with the generated
    methods, a subclass that is not itself a dataclass may still set its own
    extra attributes. Raises ``TypeError`` for a class that is not a frozen
    dataclass.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__dataclass_fields__" not in vars(cls):
        raise TypeError(f"explain_frozen applies to frozen dataclasses, got {cls!r}")
    fields = frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def __setattr__(self: Any, name: str, value: object) -> None:  # noqa: N807
        if type(self) is cls or name in fields:
            _refuse(type(self), name, "assign to")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:  # noqa: N807
        if type(self) is cls or name in fields:
            _refuse(type(self), name, "delete")
        super(cls, self).__delattr__(name)

    __setattr__.__qualname__ = f"{cls.__qualname__}.__setattr__"
    __delattr__.__qualname__ = f"{cls.__qualname__}.__delattr__"
    type.__setattr__(cls, "__setattr__", __setattr__)
    type.__setattr__(cls, "__delattr__", __delattr__)
    return cls


def _refuse(cls: type, name: str, verb: str) -> NoReturn:
    raise dataclasses.FrozenInstanceError(_message(cls, name, verb))
