"""Python snippets run in a child process inside a namespace, with a JSON result.

The parent side is :class:`ClientProcess`: it starts
``ip netns exec NS python .../connmgr/testing/labclient.py``, writes the snippet and
its arguments to the child's stdin as one JSON line, and reads the child's
stdout. The child side is :func:`main`: it runs the snippet as the body of a
function in which ``args`` (the arguments), ``send(value)`` (hand the parent a
JSON value now, e.g. an event as it happens), ``ready()`` (``send(None)``) and
``wait_parent()`` (block until the parent calls :meth:`ClientProcess.release`;
returns the value it passed) are defined, and prints the function's return
value as JSON on a marked line. A child process gets the
namespace's ``/etc/resolv.conf`` from ``ip netns exec``, so host names resolve
through the lab's DNS, and nothing it does can reach the host's network.

Example (what :meth:`NetLab.client_python` does)::

    proc = ClientProcess(["ip", "netns", "exec", "ns1"], "return 6 * 7")
    assert proc.wait(timeout=10) == 42
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
import traceback
from collections.abc import Sequence
from typing import Any

__all__ = ["ClientCodeError", "ClientProcess", "main"]

_MARK = "\x00labclient-"
# Proxy settings of the host mean nothing inside a namespace (and would send
# HTTP probes to an address that is not there): the child gets none.
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


class ClientCodeError(RuntimeError):
    """A snippet raised, or its process died or did not answer: the child's account of it.

    Attributes:
        type_name: the exception's class name in the child (``""`` if it died).
        output: what the snippet printed before.
    """

    def __init__(self, message: str, type_name: str = "", output: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.output = output


class ClientProcess:
    """A snippet running in a child process started with ``prefix + [python, -m, ...]``.

    Args:
        prefix: the command that enters the namespace, e.g. ``["ip", "netns", "exec", NS]``.
        code: the body of a function; ``args``, ``send(value)``, ``ready()`` and
            ``wait_parent()`` are defined in it, and what it returns
            (JSON-serialisable) is the result.
        args: JSON-serialisable arguments, available to the snippet as ``args``.

    For a test that acts while the snippet runs: :meth:`receive` returns the
    next value the snippet sent (:meth:`wait_ready` the next ``ready()``), and
    :meth:`release` lets a snippet blocked in ``wait_parent()`` go on, as often
    as the two take turns. :meth:`wait` returns the snippet's result or raises
    :class:`ClientCodeError`; :meth:`kill` ends it.
    """

    def __init__(self, prefix: Sequence[str], code: str, args: Any = None) -> None:
        if not isinstance(code, str):
            raise TypeError(f"code must be a string of Python, got {type(code).__name__}")
        payload = json.dumps({"code": code, "args": args})
        env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
        # Run by path, not with -m: -m would import the connmgr package first, which
        # costs a snippet that does not use it most of its start-up time.
        self._proc = subprocess.Popen(
            [*prefix, sys.executable, os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._done = threading.Event()
        self._lines: list[str] = []
        self._answer: tuple[str, Any] | None = None
        self._stderr = ""
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.write(payload + "\n")
            self._proc.stdin.flush()
        self._reader = threading.Thread(target=self._read, name="labclient-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._proc.pid

    @property
    def output(self) -> str:
        """What the snippet printed so far."""
        return "".join(self._lines)

    def _read(self) -> None:
        assert self._proc.stdout is not None and self._proc.stderr is not None
        stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        stderr_reader.start()
        for line in self._proc.stdout:
            # A marker may follow output that did not end its line.
            text, marker, rest = line.partition(_MARK)
            if text:
                self._lines.append(text)
            if not marker:
                continue
            kind, _, value = rest.partition(" ")
            if kind == "send":
                self._messages.put(("send", json.loads(value)))
            else:
                self._answer = (kind, json.loads(value))
        self._proc.wait()
        stderr_reader.join(5.0)
        self._done.set()
        self._messages.put(("end", None))

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        self._stderr = self._proc.stderr.read()

    def receive(self, timeout: float, *, kill: bool = True) -> Any:
        """The next value the snippet sent with ``send(value)`` (``None`` for ``ready()``).

        ``TimeoutError`` when none comes within ``timeout``, and the child is
        killed unless ``kill=False`` (to keep waiting, or to end it cleanly);
        :class:`ClientCodeError` when the snippet ended first.
        """
        try:
            kind, value = self._messages.get(timeout=timeout)
        except queue.Empty:
            if not kill:
                raise TimeoutError(f"client snippet sent nothing within {timeout} s") from None
            self.kill()
            raise TimeoutError(f"client snippet sent nothing within {timeout} s (killed)") from None
        if kind == "end":
            self._messages.put((kind, value))  # every later receive() ends the same way
            self.wait(0)  # raises the snippet's own error, if it had one
            raise ClientCodeError("client snippet returned without sending", output=self.output)
        return value

    def wait_ready(self, timeout: float) -> None:
        """Block until the snippet calls ``ready()`` (see :meth:`receive`)."""
        self.receive(timeout)

    def release(self, value: Any = None) -> None:
        """Let the snippet return from ``wait_parent()``, which returns ``value`` (JSON)."""
        assert self._proc.stdin is not None
        line = json.dumps(value) + "\n"
        try:
            self._proc.stdin.write(line)
            self._proc.stdin.flush()
        except (OSError, ValueError):
            pass  # the snippet has ended: wait() tells how

    def _close_stdin(self) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(OSError):
            self._proc.stdin.close()

    def wait(self, timeout: float) -> Any:
        """The snippet's return value; :class:`ClientCodeError` if it raised or died.

        After ``timeout`` seconds the child is killed and ``TimeoutError`` raised.
        """
        self._close_stdin()
        if not self._done.wait(timeout):
            self.kill()
            raise TimeoutError(f"client snippet still running after {timeout} s (killed)")
        if self._answer is None:
            raise ClientCodeError(
                f"client process exited with {self._proc.returncode} and no result: "
                f"{self._stderr.strip()[-2000:]}",
                output=self.output,
            )
        kind, value = self._answer
        if kind == "error":
            raise ClientCodeError(
                f"{value['type']}: {value['message']}\n--- in the client ---\n{value['traceback']}",
                type_name=value["type"],
                output=self.output,
            )
        return value

    def kill(self) -> None:
        """End the child at once (no-op once it has exited) and reap it."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._close_stdin()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(5.0)
        self._done.wait(5.0)


def _send(value: Any = None) -> None:
    sys.stdout.write(_MARK + "send " + json.dumps(value) + "\n")
    sys.stdout.flush()


def _ready() -> None:
    _send(None)


def _wait_parent() -> Any:
    line = sys.stdin.readline()
    return json.loads(line) if line.strip() else None


def main() -> int:
    """The child: run the snippet read from stdin, print its result (or error) as JSON."""
    request = json.loads(sys.stdin.readline())
    source = "def __labclient_main__(args, send, ready, wait_parent):\n" + textwrap.indent(
        request["code"] or "pass", "    "
    )
    namespace: dict[str, Any] = {"__name__": "__labclient__"}
    try:
        exec(compile(source, "<client snippet>", "exec"), namespace)
        value = namespace["__labclient_main__"](request["args"], _send, _ready, _wait_parent)
        line = _MARK + "result " + json.dumps(value)
    except BaseException as exc:  # reported to the parent, which raises it there
        line = (
            _MARK
            + "error "
            + json.dumps(
                {
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "traceback": traceback.format_exc(),
                }
            )
        )
    sys.stdout.flush()
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    # As with -m, the working directory comes first on the path, not this file's
    # folder (whose module names would shadow installed packages, e.g. `dns`).
    sys.path[0] = os.getcwd()
    sys.exit(main())
