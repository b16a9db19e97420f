"""The ``connmgr`` command: fetch a URL, check the network, draw the statechart, run the demo.

::

    connmgr get URL [--operation NAME] [--timeout C,R,T] [--retries N] [-H 'K: V'] [-v]
    connmgr check [--probe HOST:PORT | --probe URL]...
    connmgr statechart [--format mermaid|dot|svg] [-o PATH] [--highlight STATE]
    connmgr demo [--scenario NAME] [--fast] [--gui]
    connmgr --version

``get`` writes the body to stdout and everything else — status, timing,
retries with their countdowns, state changes — to stderr, so ``connmgr get URL
> file`` keeps the file clean. A failure prints the error's plain-words message
and suggestion (never a traceback) and exits with the code of its class
(:data:`EXIT_CODES`, also in ``docs/cli.md``).

On a terminal (stdout/stderr a TTY, ``TERM`` not ``dumb``, ``rich`` installed)
countdowns update in place and long waits show a progress bar; otherwise every
event is one plain line. :class:`Terminal` is that output, shared by the
commands and the terminal demo.

Example::

    $ connmgr get https://httpbin.org/status/503 --retries 2 --timeout 3,10,20
    retry 2/3 in 0.6 s: The server is having trouble (HTTP 503). ...
    error: The server is having trouble right now (HTTP 503).
      Try again in a few minutes.
    $ echo $?
    5
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import requests

    from connmgr.errors import NetworkError
    from connmgr.network import Probe

__all__ = [
    "EXIT_CODES",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Terminal",
    "build_parser",
    "exit_code_for",
    "main",
    "parse_probe",
    "parse_timeout",
]

#: Success.
EXIT_OK = 0
#: Bad arguments (``sysexits.h`` ``EX_USAGE``; not argparse's 2, which ``check`` uses
#: for "captive portal").
EXIT_USAGE = 64
#: Interrupted (Ctrl-C) or cancelled: 128 + SIGINT, as shells report it.
EXIT_INTERRUPTED = 130

#: ``connmgr get``'s exit code per error class, most specific first:
#: ``(class name in connmgr.errors, code, meaning)``. An HTTP error status that is
#: returned rather than raised (a 404, a 501) exits 4 (4xx) or 5 (5xx) too.
EXIT_CODES: tuple[tuple[str, int, str], ...] = (
    ("InvalidRequestError", 3, "the URL or a header is invalid"),
    ("ServerError", 5, "the server failed (5xx), retries exhausted"),
    ("HTTPStatusError", 4, "the server refused the request (4xx)"),
    ("DNSError", 6, "the host name could not be found"),
    ("TLSError", 9, "the secure connection failed (certificate, TLS)"),
    ("ConnectionFailedError", 7, "could not connect, or the connection broke"),
    ("RequestTimeoutError", 8, "timed out (connect, read or the total deadline)"),
    ("RateLimitError", 10, "rate limited by the server, longer than we may wait"),
    ("OfflineError", 11, "the network is unreachable (offline or captive portal)"),
    ("BackoffError", 12, "the server keeps failing: the circuit is open"),
    ("RequestCancelledError", EXIT_INTERRUPTED, "cancelled"),
    ("NetworkError", 1, "any other network error"),
)

#: ``connmgr check``'s exit codes.
CHECK_EXIT_CODES: tuple[tuple[str, int], ...] = (
    ("online", 0),
    ("offline", 1),
    ("captive_portal", 2),
)

# A wait at least this long gets a progress bar on a terminal.
_LONG_WAIT = 1.0
# How often a live countdown is redrawn.
_REFRESH_PER_SECOND = 8


def exit_code_for(error: BaseException) -> int:
    """The exit code for ``error`` (see :data:`EXIT_CODES`); 1 for anything unknown.

    Example::

        exit_code_for(DNSError("no such host"))      # 6
    """
    names = {cls.__name__ for cls in type(error).__mro__}
    for name, code, _meaning in EXIT_CODES:
        if name in names:
            return code
    return 1


def _status_exit_code(status: int) -> int:
    if status >= 500:
        return 5
    if status >= 400:
        return 4
    return EXIT_OK


# --------------------------------------------------------------------------- terminal


@dataclass(slots=True)
class _Wait:
    label: str
    started: float
    ends: float


class Terminal:
    """Human-readable output for one stream: plain lines, or live countdowns on a TTY.

    ``live=None`` decides by itself: live when the stream is a terminal, ``TERM``
    is not ``dumb`` and ``rich`` is installed. Thread-safe: the demo's workers
    and connmgr's signals write from many threads.

    * :meth:`line` prints one line (``style`` is a rich style; ignored when plain).
    * :meth:`wait` shows a countdown: live, it ticks in place below the lines (with a
      progress bar when it is long) until :meth:`done` or its end; plain, it is
      printed once as ``"<label> in 2.0 s"``.

    Use it as a context manager so the live area is cleared at the end.

    Example::

        with Terminal(sys.stderr) as term:
            term.line("state: online -> degraded", style="yellow")
            term.wait("req-1", "retry 2/4", 1.5)
    """

    def __init__(self, stream: IO[str], *, live: bool | None = None) -> None:
        self.stream = stream
        # Two locks, never nested: rich's refresh thread renders the countdowns (taking
        # _waits_lock) while holding its own lock, and a print takes rich's lock, so
        # printing under _waits_lock could deadlock.
        self._write_lock = threading.Lock()
        self._waits_lock = threading.Lock()
        self._waits: dict[object, _Wait] = {}
        self._console: Any = None
        self._live: Any = None
        if live is None:
            live = _is_terminal(stream) and importlib.util.find_spec("rich") is not None
        if live:
            try:
                from rich.console import Console
            except ImportError:
                live = False
            else:
                self._console = Console(file=stream, highlight=False, soft_wrap=True)
        self.live: bool = bool(live)

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> Terminal:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the live area (no-op when plain or already started)."""
        if not self.live or self._live is not None:
            return
        from rich.live import Live

        self._live = Live(
            _WaitsView(self),
            console=self._console,
            refresh_per_second=_REFRESH_PER_SECOND,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def stop(self) -> None:
        """Clear the live area and stop redrawing."""
        live, self._live = self._live, None
        if live is not None:
            live.stop()
        with self._waits_lock:
            self._waits.clear()

    # -- output --------------------------------------------------------------------

    def line(self, text: str, *, style: str | None = None) -> None:
        """Print one line."""
        if self._console is not None:
            from rich.text import Text

            self._console.print(Text(text, style=style or ""))  # rich locks by itself
            return
        with self._write_lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def table(
        self,
        title: str,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        align: str | None = None,
    ) -> None:
        """Print a table: a rich table on a terminal, aligned plain columns otherwise.

        ``align`` has one letter per column, ``l`` or ``r`` (default: the first
        column left, the others right).
        """
        align = align or "l" + "r" * (len(headers) - 1)
        if self._console is not None:
            from rich.table import Table

            table = Table(title=title, title_justify="left", show_edge=False)
            for i, header in enumerate(headers):
                table.add_column(header, justify="left" if align[i] == "l" else "right")
            for row in rows:
                table.add_row(*row)
            self._console.print(table)
            return
        with self._write_lock:
            widths = [
                max(len(str(cell)) for cell in column)
                for column in zip(headers, *rows, strict=False)
            ]
            lines = [title]
            for row in (headers, *rows):
                cells = [
                    str(cell).ljust(width) if align[i] == "l" else str(cell).rjust(width)
                    for i, (cell, width) in enumerate(zip(row, widths, strict=False))
                ]
                lines.append("  " + "  ".join(cells).rstrip())
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def wait(self, key: object, label: str, seconds: float, *, announce: bool = True) -> None:
        """Show a countdown of ``seconds`` under ``key`` (replacing one with the same key).

        Plain output has no countdowns: it prints ``"<label> in N s"`` once, unless
        ``announce`` is false (the caller's own line already said when).
        """
        if not self.live:
            if announce:
                self.line(f"{label} in {_seconds(seconds)}")
            return
        now = time.monotonic()
        with self._waits_lock:
            self._waits[key] = _Wait(label, now, now + max(0.0, seconds))

    def done(self, key: object) -> None:
        """End the countdown under ``key`` (if any)."""
        with self._waits_lock:
            self._waits.pop(key, None)

    @contextlib.contextmanager
    def working(self, label: str) -> Iterator[None]:
        """A spinner while something runs (live only; plain output shows nothing)."""
        if self._console is None:
            yield
            return
        with self._console.status(label):
            yield

    def _current(self) -> list[_Wait]:
        now = time.monotonic()
        with self._waits_lock:
            # A countdown that reached zero lingers briefly as "now", then goes.
            for key in [k for k, w in self._waits.items() if now > w.ends + 0.5]:
                del self._waits[key]
            return list(self._waits.values())


class _WaitsView:
    """The live area: one row per running countdown (rich renders ``__rich__``)."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal

    def __rich__(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 1))
        grid.add_column()
        grid.add_column()
        now = time.monotonic()
        for wait in self.terminal._current():
            remaining = max(0.0, wait.ends - now)
            total = wait.ends - wait.started
            text = Text(
                f"⏳ {wait.label} " + (f"in {remaining:4.1f} s" if remaining > 0 else "now"),
                style="cyan",
            )
            bar: Any = ""
            if total >= _LONG_WAIT:
                bar = ProgressBar(total=total, completed=total - remaining, width=24)
            grid.add_row(text, bar)
        return grid


def _is_terminal(stream: IO[str] | IO[bytes]) -> bool:
    if os.environ.get("TERM", "") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def state_style(state: Any) -> str:
    """A rich style for a :class:`~connmgr.machine.ConnectionState` (its status colour)."""
    from connmgr.machine import STATE_EFFECTS

    effect = STATE_EFFECTS.get(state)
    return f"bold {effect.color}" if effect is not None else "bold"


# --------------------------------------------------------------------------- parsing


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 64 for usage errors (2 means "captive portal" to check)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def parse_timeout(text: str) -> tuple[float, float, float | None]:
    """``"C,R,T"`` → ``(connect, read, total)`` seconds; ``T`` may be ``none``; ``"C,R"`` too.

    Raises :class:`ValueError` in words for anything else.

    Example::

        parse_timeout("3,10,20")      # (3.0, 10.0, 20.0)
        parse_timeout("3,10,none")    # (3.0, 10.0, None)
    """
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise ValueError(
            f"--timeout takes CONNECT,READ,TOTAL in seconds, e.g. 5,30,60; got {text!r}"
        )
    try:
        connect, read = float(parts[0]), float(parts[1])
        total = None if len(parts) == 2 or parts[2].lower() == "none" else float(parts[2])
    except ValueError:
        raise ValueError(
            f"--timeout takes numbers of seconds, CONNECT,READ,TOTAL (e.g. 5,30,60); got {text!r}"
        ) from None
    return connect, read, total


def parse_probe(text: str, *, expect_status: int = 204) -> Probe:
    """``HOST:PORT`` → a :class:`~connmgr.network.TcpProbe`; ``http(s)://…`` → an ``HttpProbe``.

    IPv6 addresses go in brackets: ``[::1]:443``.

    Example::

        parse_probe("127.0.0.1:8080")                          # TcpProbe("127.0.0.1", 8080)
        parse_probe("http://127.0.0.1:8080/generate_204")      # HttpProbe(...)
    """
    from connmgr.network import HttpProbe, TcpProbe

    text = text.strip()
    if "://" in text:
        return HttpProbe(text, expect_status=expect_status)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--probe takes HOST:PORT or an http(s):// URL, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return TcpProbe(host, int(port))


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"-H takes 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    """The ``connmgr`` argument parser (every command and option)."""
    from connmgr import __version__

    table = sorted([(0, "success (status below 400)"), (EXIT_USAGE, "bad arguments")]
                   + [(code, meaning) for _name, code, meaning in EXIT_CODES])  # fmt: skip
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in table)
    parser = _Parser(
        prog="connmgr",
        description=(
            "A state-machine-driven HTTP connection manager for requests: "
            "fetch a URL through it, check connectivity, draw its statechart, watch the demo."
        ),
        epilog="Run 'connmgr COMMAND --help' for a command's options. Docs: docs/cli.md",
    )
    parser.add_argument("--version", action="version", version=f"connmgr {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    get = commands.add_parser(
        "get",
        help="fetch a URL through a ConnectionManager",
        description=(
            "GET a URL through a ConnectionManager: the body goes to stdout; status,\n"
            "timing, retries and state changes go to stderr. On failure: the error in\n"
            "plain words and an exit code per error class."
        ),
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    get.add_argument("url", help="the URL (http or https)")
    get.add_argument(
        "--operation",
        default="default",
        metavar="NAME",
        help="timeout profile: default (5,30,60), search (5,45,90), quick (5,10,20), "
        "download (5,60,300); default: %(default)s",
    )
    get.add_argument(
        "--timeout",
        metavar="C,R,T",
        help="connect, read and total timeouts in seconds (T may be 'none'), "
        "replacing the operation's profile",
    )
    get.add_argument(
        "--retries", type=int, metavar="N", help="retries after the first attempt (default 3)"
    )
    get.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'K: V'",
        help="add a request header (repeatable); values never appear in the output",
    )
    get.add_argument(
        "--probe",
        action="append",
        default=[],
        metavar="HOST:PORT|URL",
        help="connectivity probe used to tell a lost network from a dead server "
        "(repeatable; default: the built-in probes, see 'connmgr check')",
    )
    get.add_argument("-o", "--output", metavar="FILE", help="write the body to FILE, not stdout")
    get.add_argument(
        "-v", "--verbose", action="store_true", help="also show request and response details"
    )
    get.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing on stderr unless it fails"
    )

    check = commands.add_parser(
        "check",
        help="check connectivity now (each probe, captive portal or not)",
        description=(
            "Run every connectivity probe to the end and show each result and time, and "
            "whether a captive portal (a network login page) is in the way."
        ),
        epilog=f"exit codes: 0 online, 1 offline, 2 captive portal, {EXIT_USAGE} bad arguments",
    )
    check.add_argument(
        "--probe",
        action="append",
        default=[],
        metavar="HOST:PORT|URL",
        help="a TCP probe (HOST:PORT) or an HTTP probe (URL answering --expect); repeatable. "
        "Default: two public 204 endpoints and a TCP handshake with 8.8.8.8:443",
    )
    check.add_argument(
        "--expect",
        type=int,
        default=204,
        metavar="STATUS",
        help="the status URL probes must answer (default %(default)s)",
    )
    check.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="how long each probe may take (default %(default)s)",
    )

    from connmgr.statechart import FORMATS

    chart = commands.add_parser(
        "statechart",
        help="draw the connection state machine (Mermaid, DOT, SVG)",
        description=(
            "Render the state machine from connmgr/machine.py's transitions table. DOT and "
            "SVG need the extra 'diagrams' (pip install 'connmgr[diagrams]')."
        ),
    )
    chart.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: from the -o suffix, else mermaid)",
    )
    chart.add_argument("-o", "--output", metavar="PATH", help="write to PATH instead of stdout")
    chart.add_argument(
        "--highlight",
        metavar="STATE",
        help="mark one state: online, degraded, rate_limited, backoff or offline",
    )

    demo = commands.add_parser(
        "demo",
        help="watch one manager meet every kind of trouble (about 20 s)",
        description=(
            "Run the demo: worker threads search a loopback store API through one\n"
            "ConnectionManager while the server goes healthy, flaky, down, back, rate\n"
            "limited, fine, and the network is lost and comes back. Nothing leaves\n"
            "127.0.0.1. Timings are shortened so the story takes about 20 s."
        ),
        epilog=_scenario_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--scenario", metavar="NAME", help="run one chapter alone (see the list below)"
    )
    demo.add_argument(
        "--fast", action="store_true", help="shorter timings (about 6 s; used by the tests)"
    )
    demo.add_argument(
        "--workers", type=int, default=4, metavar="N", help="worker threads (default 4)"
    )
    demo.add_argument(
        "--gui", action="store_true", help="the Qt window instead (needs the extra 'qt')"
    )
    demo.add_argument(
        "--screenshots", metavar="DIR", help="with --gui: save screenshots offscreen and exit"
    )
    demo.add_argument(
        "--seconds", type=float, metavar="S", help="with --gui: close the window after S seconds"
    )
    return parser


def _scenario_help() -> str:
    try:
        from connmgr.demo import CHAPTERS
    except ImportError:  # pragma: no cover - the demo ships with the package
        return ""
    width = max(len(chapter.name) for chapter in CHAPTERS)
    lines = [f"  {c.name.ljust(width)}  {c.summary}" for c in CHAPTERS]
    return "scenarios (--scenario NAME):\n" + "\n".join(lines)


# --------------------------------------------------------------------------- commands


def _fail(term: Terminal, message: str, suggestion: str = "") -> None:
    term.line(f"error: {message}", style="bold red")
    if suggestion:
        term.line(f"  {suggestion}")


def cmd_statechart(args: argparse.Namespace, out: IO[str], err: Terminal) -> int:
    """``connmgr statechart``: print or write the diagram."""
    from connmgr.statechart import DiagramDependencyError, format_for_path, render, write

    try:
        fmt = args.format or (format_for_path(args.output) if args.output else "mermaid")
        if args.output:
            path = write(args.output, fmt, highlight=args.highlight)
            err.line(f"wrote {path} ({fmt})")
        else:
            out.write(render(fmt, highlight=args.highlight))
            out.flush()
    except DiagramDependencyError as exc:
        _fail(err, str(exc))
        return 1
    except ValueError as exc:
        _fail(err, str(exc))
        return EXIT_USAGE
    except OSError as exc:
        _fail(err, f"could not write {args.output}: {exc.strerror or exc}")
        return 1
    return EXIT_OK


def cmd_check(args: argparse.Namespace, out: IO[str], err: Terminal) -> int:
    """``connmgr check``: run every probe, print each result, exit 0/1/2."""
    from connmgr.network import DEFAULT_PROBES, NetworkMonitor, NetworkStatus, decide_status

    try:
        probes = [parse_probe(p, expect_status=args.expect) for p in args.probe] or list(
            DEFAULT_PROBES
        )
        monitor = NetworkMonitor(probes=probes, timeout=args.timeout)
    except ValueError as exc:
        _fail(err, str(exc))
        return EXIT_USAGE
    term = Terminal(out)
    with term.working(f"probing ({len(probes)} probe{'s' if len(probes) != 1 else ''})…"):
        results = monitor.diagnose()
    marks = {
        NetworkStatus.ONLINE: ("✓", "green"),
        NetworkStatus.CAPTIVE_PORTAL: ("!", "yellow"),
    }
    width = max(len(r.probe.name) for r in results)
    for result in results:
        mark, style = marks.get(result.status, ("✗", "red"))
        detail = f"  ({result.detail})" if result.detail else ""
        term.line(
            f"{mark} {result.probe.name.ljust(width)}  {result.status.value:<14} "
            f"{result.elapsed * 1000:8.1f} ms{detail}",
            style=style,
        )
    verdict = decide_status(results) or NetworkStatus.OFFLINE
    if verdict is NetworkStatus.ONLINE:
        term.line("Online: the internet is reachable.", style="bold green")
        return 0
    if verdict is NetworkStatus.CAPTIVE_PORTAL:
        term.line(
            "Captive portal: a network login page is in the way. Open a browser and sign in "
            "to the network (hotel, airport, café Wi-Fi).",
            style="bold yellow",
        )
        return 2
    term.line(
        "Offline: no probe got through. Check the Wi-Fi or cable, or a VPN or firewall.",
        style="bold red",
    )
    return 1


def cmd_get(args: argparse.Namespace, out: IO[bytes], err: Terminal) -> int:
    """``connmgr get``: one GET through a manager; body to ``out``, the rest to ``err``."""
    from connmgr import signals
    from connmgr.clock import CancelToken
    from connmgr.errors import NetworkError, classify_error, redact_url
    from connmgr.manager import ConnectionManager
    from connmgr.network import NetworkMonitor
    from connmgr.retry import RetryConfig
    from connmgr.timeouts import TimeoutConfig, TimeoutProfiles

    try:
        headers = dict(_header(h) for h in args.header)
        profiles: TimeoutProfiles | None = None
        if args.timeout:
            connect, read, total = parse_timeout(args.timeout)
            profiles = TimeoutProfiles().with_profile(
                args.operation, TimeoutConfig(connect=connect, read=read, total=total)
            )
        retry = None if args.retries is None else RetryConfig(max_retries=args.retries)
        probes = [parse_probe(p) for p in args.probe]
        monitor = NetworkMonitor(probes=probes or None, timeout=2.0)
        if args.operation not in (profiles or TimeoutProfiles()):
            TimeoutProfiles()[args.operation]  # raises, listing the known operations
    except ValueError as exc:
        _fail(err, str(exc))
        return EXIT_USAGE

    quiet, verbose = args.quiet, args.verbose
    url_shown = redact_url(args.url)
    cancel = CancelToken()
    receivers: list[Callable[..., None]] = []

    def on_state(sender: object, **kw: Any) -> None:
        err.line(
            f"state {kw['origin']}: {kw['old'].value} → {kw['new'].value} ({kw['reason']})",
            style=state_style(kw["new"]),
        )

    def on_retry(sender: object, **kw: Any) -> None:
        error = kw.get("error")
        why = getattr(error, "user_message", None) or str(error)
        attempt, most = kw.get("attempt"), kw.get("max_attempts")
        err.line(f"attempt {int(attempt or 2) - 1} failed: {why}", style="yellow")
        err.wait(kw.get("request_id"), f"retry {attempt}/{most}", float(kw.get("delay", 0.0)))

    def on_rate_limited(sender: object, **kw: Any) -> None:
        wait = float(kw.get("wait") or 0.0)
        if wait > 0:
            err.line(f"rate limited by {kw.get('origin')}", style="magenta")
            err.wait(("rate", kw.get("origin")), "sending again", wait)

    def on_started(sender: object, **kw: Any) -> None:
        err.done(kw.get("request_id"))
        if verbose:
            err.line(f"→ {kw.get('method')} {kw.get('url')} (operation {kw.get('operation')})")

    def on_finished(sender: object, **kw: Any) -> None:
        err.done(kw.get("request_id"))

    if not quiet:
        receivers = [on_state, on_retry, on_rate_limited, on_started, on_finished]

    manager = ConnectionManager(timeouts=profiles, retry=retry, monitor=monitor)
    started = time.perf_counter()
    response: requests.Response | None = None
    failure: NetworkError | None = None
    with contextlib.ExitStack() as stack, err:
        if receivers:
            pairs = zip(
                (
                    signals.state_changed,
                    signals.retry_scheduled,
                    signals.rate_limited,
                    signals.request_started,
                    signals.request_finished,
                ),
                receivers,
                strict=True,
            )
            for signal, receiver in pairs:
                stack.enter_context(signal.connected_to(receiver, sender=manager))
        if verbose:
            profile = (profiles or TimeoutProfiles())[args.operation]
            err.line(
                f"GET {url_shown}: operation {args.operation} "
                f"(connect {profile.connect:g} s, read {profile.read:g} s, total "
                f"{'none' if profile.total is None else f'{profile.total:g} s'})"
            )
        try:
            response = manager.get(
                args.url, operation=args.operation, cancel=cancel, headers=headers or None
            )
        except KeyboardInterrupt:
            cancel.cancel()
            _fail(err, "cancelled")
            return EXIT_INTERRUPTED
        except NetworkError as exc:
            failure = exc
        except ValueError as exc:  # an unknown operation or a bad argument to requests
            _fail(err, str(exc))
            return EXIT_USAGE
        except Exception as exc:  # anything requests raised that the manager did not map
            failure = classify_error(exc, url=args.url)
        finally:
            elapsed = time.perf_counter() - started
            with contextlib.suppress(Exception):
                manager.close()

        stats = _stats_line(manager)
        if failure is not None:
            code = exit_code_for(failure)
            _fail(err, failure.user_message, failure.suggestion)
            if verbose:
                err.line(f"  details: {failure.details or failure}", style="dim")
            if not quiet:
                err.line(
                    f"  ({type(failure).__name__} after {elapsed:.2f} s{stats}; exit code {code})",
                    style="dim",
                )
            return code

    assert response is not None
    body = response.content
    if args.output:
        try:
            with open(args.output, "wb") as handle:
                handle.write(body)
        except OSError as exc:
            _fail(err, f"could not write {args.output}: {exc.strerror or exc}")
            return 1
    else:
        out.write(body)
        if body and not body.endswith(b"\n") and _is_terminal(out):
            # Only for a person at a terminal: the status line starts on a line of its own.
            out.write(b"\n")
        out.flush()
    code = _status_exit_code(response.status_code)
    if not quiet or code:
        size = f"{len(body)} byte{'s' if len(body) != 1 else ''}"
        style = "green" if code == 0 else "bold red"
        err.line(
            f"{response.status_code} {response.reason or ''}".rstrip()
            + f" · {size} · {_duration(elapsed)}{stats}",
            style=style,
        )
    if verbose:
        from connmgr.errors import redact_headers

        for name, value in redact_headers(response.headers).items():
            err.line(f"  {name}: {value}", style="dim")
    return code


def _stats_line(manager: Any) -> str:
    try:
        stats = manager.stats()
    except Exception:
        return ""
    attempts = int(getattr(stats, "attempts", 0) or 0)
    retries = int(getattr(stats, "retries", 0) or 0)
    text = f" · {attempts} attempt{'s' if attempts != 1 else ''}"
    if retries:
        text += f" ({retries} retr{'ies' if retries != 1 else 'y'})"
    return text


def cmd_demo(args: argparse.Namespace, out: IO[str], err: Terminal) -> int:
    """``connmgr demo``: the terminal story, or ``--gui``: the Qt window."""
    if args.gui:
        if importlib.util.find_spec("PySide6") is None:
            _fail(
                err,
                "the demo window needs PySide6, which is not installed",
                "Install the extra 'qt': pip install 'connmgr[qt]' (or run 'connmgr demo' "
                "without --gui for the terminal demo).",
            )
            return 1
        from connmgr.qt.demo import main as gui_main

        code: int = gui_main(args)
        return code
    if args.screenshots or args.seconds:
        _fail(err, "--screenshots and --seconds go with --gui")
        return EXIT_USAGE
    from connmgr.demo import run_cli

    return run_cli(args, Terminal(out))


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``connmgr`` command; return its exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    err = Terminal(sys.stderr)
    try:
        if args.command == "statechart":
            return cmd_statechart(args, sys.stdout, err)
        if args.command == "check":
            return cmd_check(args, sys.stdout, err)
        if args.command == "get":
            return cmd_get(args, sys.stdout.buffer, err)
        if args.command == "demo":
            return cmd_demo(args, sys.stdout, err)
    except KeyboardInterrupt:
        err.line("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (| head): not an error worth a traceback.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps exit-time flush quiet
        return 1
    parser.print_help(sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
