"""Linux network namespaces for :class:`~connmgr.testing.NetLab`: create, enter, remove.

Namespaces are named (``ip netns add``), so they show in ``ip netns list`` and
``ip netns exec NAME ...`` runs a command inside one. Python code enters one on
a thread of its own (:func:`run_in_netns`): a thread's network namespace is its
own in Linux (``setns(2)`` with ``CLONE_NEWNET`` changes only the calling
thread), and a socket stays in the namespace it was created in, whichever
thread uses it later. Threads started from inside inherit the namespace.

Names carry the creating process's id (``PREFIX-PID-TOKEN-ROLE``), so
:func:`sweep` can remove what a crashed run left behind without touching the
namespaces of a live run (pytest-xdist workers run side by side).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ETC_NETNS_DIR",
    "NETNS_DIR",
    "NetnsError",
    "delete_netns",
    "ip",
    "list_netns",
    "netns_unavailable_reason",
    "run_in_netns",
    "sweep",
    "sysctl",
]

T = TypeVar("T")

#: Where ``ip netns add`` pins named namespaces.
NETNS_DIR = Path("/run/netns")
#: Files in ``/etc/netns/NAME/`` are bind-mounted over ``/etc/`` by ``ip netns exec NAME``.
ETC_NETNS_DIR = Path("/etc/netns")

_CLONE_NEWNET = 0x40000000
_IP_TIMEOUT = 10.0


class NetnsError(RuntimeError):
    """An ``ip`` command failed, or a namespace could not be entered."""


def netns_unavailable_reason() -> str | None:
    """Why namespaces cannot be used here (a sentence), or ``None`` when they can."""
    if not sys.platform.startswith("linux"):
        return f"NetLab needs Linux network namespaces (this is {sys.platform})"
    if os.geteuid() != 0:
        return "NetLab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network namespaces"
    if shutil.which("ip") is None:
        return "NetLab needs the `ip` command (iproute2)"
    return None


def ip(*args: str, netns: str | None = None) -> str:
    """Run ``ip [-n NETNS] ARGS...``; its output, or :class:`NetnsError` with its stderr."""
    command = ["ip", *(("-n", netns) if netns else ()), *args]
    return _run(command)


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_IP_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{' '.join(command)}: {exc}") from exc
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def sysctl(netns: str, setting: str) -> None:
    """Set ``setting`` (``key=value``) inside ``netns`` (sysctls under net/ are per namespace)."""
    _run(["ip", "netns", "exec", netns, "sysctl", "-qw", setting])


def list_netns() -> list[str]:
    """The names of the named network namespaces."""
    try:
        return sorted(entry.name for entry in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def delete_netns(name: str) -> None:
    """Remove namespace ``name`` (its veth ends go with it) and its ``/etc/netns`` files.

    A namespace whose sockets are still open lives on, unnamed, until they close.
    """
    if (NETNS_DIR / name).exists():
        ip("netns", "del", name)
    shutil.rmtree(ETC_NETNS_DIR / name, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(prefix: str) -> list[str]:
    """Remove namespaces (and ``/etc/netns`` entries) named ``PREFIX-PID-...`` whose PID is gone.

    Returns the names removed. Namespaces of running processes are left alone.
    """
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)-")
    names = set(list_netns())
    with_files = {entry.name for entry in ETC_NETNS_DIR.glob(f"{prefix}-*")}
    removed = []
    for name in sorted(names | with_files):
        match = pattern.match(name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        try:
            delete_netns(name)
        except NetnsError:
            continue  # another sweeper got there first
        removed.append(name)
    return removed


def _setns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise NetnsError(f"setns into {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def run_in_netns(name: str, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
    """Call ``fn(*args)`` on a new thread inside namespace ``name``; its value or its exception.

    Sockets ``fn`` creates belong to that namespace for their whole life, and
    threads it starts run inside it too; the calling thread stays where it is.
    The host's ``/etc/resolv.conf`` still applies to name lookups on that thread.
    Raises ``TimeoutError`` when ``fn`` has not returned within ``timeout``
    seconds (the thread is a daemon and keeps running).
    """
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            _setns(name)
            outcome["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller, who re-raises it
            outcome["error"] = exc

    thread = threading.Thread(target=body, name=f"netns:{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"code in namespace {name} still running after {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value
