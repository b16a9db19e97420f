"""The ``connmgr`` command: fetch a URL, check the network, draw the statechart, run the demo.

::

    connmgr get URL [--operation NAME] [--timeout C,R,T] [--retries N] [--retry-delay S]
                    [-H 'K: V']... [--probe HOST:PORT|URL]... [-o FILE] [-v | -q]
    connmgr check [--probe HOST:PORT | --probe URL]... [--expect STATUS] [--timeout S]
    connmgr statechart [--format mermaid|dot|svg] [-o PATH] [--highlight STATE]
    connmgr demo [--scenario NAME] [--fast] [--workers N] [--gui]
    connmgr --version

``get`` writes the body to stdout as it arrives and everything else (status,
timing, retries with their countdowns, state changes) to stderr, so ``connmgr
get URL > file`` keeps the file clean. ``retry k/R`` counts retries: with
``--retries 3`` the first is 1/3. A failure prints the error in plain words and
a suggestion (never a traceback) and exits with the code of its class
(:data:`EXIT_CODES`). ``check`` exits 0 online, 1 offline, 2 captive portal,
3 limited (a network, no internet), 4 unknown (:data:`CHECK_EXIT_CODES`).
Bad arguments exit 64.

On a terminal (a TTY, ``TERM`` not ``dumb``, ``rich`` installed) stderr shows a
spinner until the response's headers arrive, one countdown per wait, and a
progress bar with bytes, rate and time left while the body downloads to a file
or a pipe; piped, every event is one plain line.

The pieces: :mod:`connmgr.commands` (one module per command, the exit codes,
the words for failures), :mod:`connmgr.terminal` (the output). In a checkout,
docs/cli.md has the whole story.

Example::

    $ connmgr get http://127.0.0.1:8080/status/503 --retries 2 --retry-delay 0.1
    state http://127.0.0.1:8080: online → degraded (a request failed)
    attempt 1 failed: The server is temporarily unavailable (busy or down for maintenance).
    retry 1/2 in 0.1 s
    attempt 2 failed: The server is temporarily unavailable (busy or down for maintenance).
    retry 2/2 in 0.2 s
    error: The server is temporarily unavailable (busy or down for maintenance).
      Try again in a few minutes.
      (ServerError after 0.35 s and 2 retries; exit code 5)
    $ echo $?
    5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from connmgr.commands.exits import (
    CHECK_EXIT_CODES,
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    exit_code_for,
)
from connmgr.commands.options import parse_probe, parse_timeout
from connmgr.terminal import Terminal

__all__ = [
    "CHECK_EXIT_CODES",
    "EXIT_CODES",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Terminal",
    "build_parser",
    "docs_pointer",
    "exit_code_for",
    "main",
    "parse_probe",
    "parse_timeout",
]


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 64 for usage errors (2 means "captive portal" to check)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def docs_pointer() -> str:
    """Where the user's own copy of the documentation is, for ``--help``.

    In a checkout (or an editable install) that is docs/cli.md beside the
    package; the module's own documentation is always there through pydoc.
    """
    page = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
    pydoc = "python -m pydoc connmgr.cli"
    if page.is_file():
        return f"Documentation: {page} (and {pydoc!r})."
    return f"Documentation: {pydoc!r} (the command), 'python -m pydoc connmgr' (the library)."


def build_parser() -> argparse.ArgumentParser:
    """The ``connmgr`` argument parser (every command and option)."""
    from connmgr import __version__

    table = sorted([(0, "success (status below 400)"), (EXIT_USAGE, "bad arguments")]
                   + [(code, meaning) for _name, code, meaning in EXIT_CODES])  # fmt: skip
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in table)
    check_codes = "\n".join(
        f"  {code:>3}  {meaning}"
        for code, meaning in [(c, m) for _n, c, m in CHECK_EXIT_CODES]
        + [(EXIT_USAGE, "bad arguments")]
    )
    parser = _Parser(
        prog="connmgr",
        description=(
            "A state-machine-driven HTTP connection manager for requests: "
            "fetch a URL through it, check connectivity, draw its statechart, watch the demo."
        ),
        epilog="Run 'connmgr COMMAND --help' for a command's options. " + docs_pointer(),
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
        epilog=f"exit codes:\n{codes}\n\n{docs_pointer()}",
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
        "--retry-delay",
        type=float,
        metavar="S",
        help="the first retry's delay in seconds, doubling for each retry after it "
        "(default 0.5); a server's Retry-After still wins when it is longer",
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
            "Run every connectivity probe to the end and show each result and time, and\n"
            "whether a captive portal (a network login page) is in the way. The exit code\n"
            "says which verdict it was, so a script can branch on it."
        ),
        epilog=f"exit codes:\n{check_codes}\n\n{docs_pointer()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    from connmgr.demo.story import CHAPTERS

    width = max(len(chapter.name) for chapter in CHAPTERS)
    lines = [f"  {c.name.ljust(width)}  {c.summary}" for c in CHAPTERS]
    return "scenarios (--scenario NAME):\n" + "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``connmgr`` command; return its exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    err = Terminal(sys.stderr)
    try:
        # Each command imports only what it needs, so `connmgr check` starts quickly.
        if args.command == "statechart":
            from connmgr.commands.chart import cmd_statechart

            return cmd_statechart(args, sys.stdout, err)
        if args.command == "check":
            from connmgr.commands.check import cmd_check

            return cmd_check(args, sys.stdout, err)
        if args.command == "get":
            from connmgr.commands.get import cmd_get

            return cmd_get(args, sys.stdout.buffer, err)
        if args.command == "demo":
            from connmgr.commands.demo import cmd_demo

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
