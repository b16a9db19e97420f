"""``connmgr get``: one GET through a ConnectionManager, body to stdout, the story to stderr."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from connmgr.commands.exits import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    exit_code_for,
    status_exit_code,
)
from connmgr.commands.messages import fail
from connmgr.commands.options import parse_header, parse_probe, parse_timeout
from connmgr.terminal import Terminal, format_duration, is_terminal, state_style

if TYPE_CHECKING:
    import requests

    from connmgr.errors import NetworkError

__all__ = ["cmd_get"]


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
        headers = dict(parse_header(h) for h in args.header)
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
        fail(err, str(exc))
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
            fail(err, "cancelled")
            return EXIT_INTERRUPTED
        except NetworkError as exc:
            failure = exc
        except ValueError as exc:  # an unknown operation or a bad argument to requests
            fail(err, str(exc))
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
            fail(err, failure.user_message, failure.suggestion)
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
            fail(err, f"could not write {args.output}: {exc.strerror or exc}")
            return 1
    else:
        out.write(body)
        if body and not body.endswith(b"\n") and is_terminal(out):
            # Only for a person at a terminal: the status line starts on a line of its own.
            out.write(b"\n")
        out.flush()
    code = status_exit_code(response.status_code)
    if not quiet or code:
        size = f"{len(body)} byte{'s' if len(body) != 1 else ''}"
        style = "green" if code == 0 else "bold red"
        err.line(
            f"{response.status_code} {response.reason or ''}".rstrip()
            + f" · {size} · {format_duration(elapsed)}{stats}",
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
