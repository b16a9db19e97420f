"""Names that load on first use: the one way connmgr's packages export lazily.

A package's ``__init__`` lists where each of its names lives; :func:`exports`
returns the ``__getattr__`` and ``__dir__`` that import a name's module the
first time the name is used, and keep the value in the package afterwards (so
the next lookup is a plain attribute read). ``import connmgr`` then costs almost
nothing, and a package never imports its own modules in a cycle through its
``__init__``. Imports nothing of connmgr.

Example::

    _HOMES = {"FaultServer": "connmgr.testing.server", "NetLab": "connmgr.testing.netlab"}
    __getattr__, __dir__ = lazy.exports(__name__, _HOMES, __all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["exports"]


def exports(
    package: str, homes: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, loading names from ``homes``.

    ``homes`` maps each name to the module that defines it; a name that *is* a
    module (``"signals": "connmgr.signals"``) gives the module itself.
    ``public`` is what ``dir()`` lists beside what is loaded already.
    """
    namespace = sys.modules[package].__dict__
    shown = tuple(public)

    def load(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(home)
        value = module if home.rpartition(".")[2] == name else getattr(module, name)
        namespace[name] = value
        return value

    def listing() -> list[str]:
        return sorted({*namespace, *shown})

    return load, listing
