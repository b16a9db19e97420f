"""The public surface: names the docs rely on, docstrings, and an import without Qt."""

from __future__ import annotations

import inspect
import subprocess
import sys

import requests

import connmgr

# The original plan's names: an app written against the plan switches by changing imports.
PLAN_NAMES = [
    "TimeoutConfig",
    "NetworkConfig",
    "RetryConfig",
    "exponential_backoff",
    "RetryTracker",
    "RetryCallback",
    "NetworkState",
    "RateLimiter",
    "RateLimitParser",
    "classify_error",
    "ErrorMessageFormatter",
    "TimeoutHTTPAdapter",
    "create_session",
]


def test_plan_names_are_importable_from_connmgr_and_compat():
    import connmgr.compat

    for name in PLAN_NAMES:
        assert getattr(connmgr, name) is getattr(connmgr.compat, name), name
        assert name in connmgr.compat.__all__


def test_all_is_the_product_and_small():
    assert 25 <= len(connmgr.__all__) <= 40
    assert sorted(connmgr.__all__) == sorted(set(connmgr.__all__))
    assert not [n for n in connmgr.__all__ if "Widget" in n or "Banner" in n]


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    assert connmgr.__version__ == version("connmgr")


def test_every_public_name_has_a_docstring():
    missing = [
        name
        for name in connmgr.__all__
        if name not in {"__version__", "signals"} and not inspect.getdoc(getattr(connmgr, name))
    ]
    assert missing == []


def test_every_error_is_a_requests_exception():
    errors = [
        getattr(connmgr, n)
        for n in connmgr.__all__
        if isinstance(getattr(connmgr, n), type)
        and n.endswith("Error")
        # Using a closed manager is a programming error, not a network failure.
        and n != "ManagerClosedError"
    ]
    assert issubclass(connmgr.ManagerClosedError, RuntimeError)
    assert len(errors) >= 12
    for cls in errors:
        assert issubclass(cls, connmgr.NetworkError)
        assert issubclass(cls, requests.RequestException)
    assert issubclass(connmgr.RequestTimeoutError, requests.Timeout)
    assert issubclass(connmgr.ConnectionFailedError, requests.ConnectionError)
    assert issubclass(connmgr.DeadlineExceededError, connmgr.RequestTimeoutError)
    assert issubclass(connmgr.ServerError, connmgr.HTTPStatusError)
    assert issubclass(connmgr.DNSError, connmgr.ConnectionFailedError)


def test_no_error_class_shadows_a_builtin():
    import builtins

    assert not [n for n in connmgr.__all__ if hasattr(builtins, n)]


def test_the_plans_qt_name_is_reachable_lazily():
    import pytest

    pytest.importorskip("PySide6")
    from connmgr.qt import NetworkStatusIndicator

    assert connmgr.NetworkStatusIndicator is NetworkStatusIndicator


def test_import_connmgr_works_without_pyside6():
    code = (
        "import sys; sys.modules['PySide6'] = None\n"
        "import connmgr\n"
        "assert 'connmgr.qt' not in sys.modules and 'connmgr.testing' not in sys.modules\n"
        "print(connmgr.ConnectionState.ONLINE.value)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "online"


def test_every_lazily_exported_name_loads():
    import importlib

    import pytest

    packages = ["connmgr", "connmgr.network", "connmgr.quota", "connmgr.demo", "connmgr.outbox"]
    packages.append("connmgr.testing")
    if importlib.util.find_spec("PySide6") is not None:
        packages.append("connmgr.qt")
    for package in packages:
        module = importlib.import_module(package)
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{package}.{name}"
        assert set(module.__all__) <= set(dir(module))
        with pytest.raises(AttributeError, match="no attribute"):
            module.no_such_name  # noqa: B018
