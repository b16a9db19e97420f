"""``connmgr get``: one GET through a ConnectionManager, body to stdout, the story to stderr.

The body goes to stdout (or ``-o FILE``) as it arrives, in chunks; status,
timing, retries, waits and state changes go to stderr, so ``connmgr get URL >
file`` keeps the file clean. On a terminal, stderr shows a spinner until the
headers arrive and a progress bar (bytes, rate, time left) while the body
streams to a file or a pipe; piped, it is plain lines only.

A failure prints plain words (never a traceback), chosen from the error and
what the network monitor says (see :mod:`connmgr.commands.messages`), and
exits with the code of its class (:mod:`connmgr.commands.exits`).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from connmgr.commands.exits import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    exit_code_for,
    status_exit_code,
)
from connmgr.commands.messages import describe_failure, fail
from connmgr.commands.narrator import RequestNarrator
from connmgr.commands.options import parse_header, parse_probe, parse_timeout
from connmgr.frozen import explain_frozen
from connmgr.network import NetworkMonitor
from connmgr.terminal import (
    Terminal,
    Transfer,
    format_bytes,
    format_duration,
    is_terminal,
    same_destination,
)

if TYPE_CHECKING:
    import requests

    from connmgr.retry import RetryConfig
    from connmgr.timeouts import TimeoutProfiles

__all__ = ["CHUNK_SIZE", "body_chunks", "cmd_get", "expected_length"]

#: Bytes read from the body at a time.
CHUNK_SIZE = 64 * 1024


def _configure(
    args: argparse.Namespace,
) -> tuple[dict[str, str], TimeoutProfiles | None, RetryConfig, NetworkMonitor]:
    """The request's headers, timeouts, retry policy and monitor; ValueError in words."""
    from connmgr.retry import RetryConfig
    from connmgr.timeouts import TimeoutConfig, TimeoutProfiles

    headers = dict(parse_header(h) for h in args.header)
    profiles: TimeoutProfiles | None = None
    if args.timeout:
        connect, read, total = parse_timeout(args.timeout)
        profiles = TimeoutProfiles().with_profile(
            args.operation, TimeoutConfig(connect=connect, read=read, total=total)
        )
    if args.operation not in (profiles or TimeoutProfiles()):
        TimeoutProfiles()[args.operation]  # raises, listing the known operations
    defaults = RetryConfig()
    options: dict[str, Any] = {}
    if args.retries is not None:
        options["max_retries"] = args.retries
    if args.retry_delay is not None:
        delay = args.retry_delay
        options["base_delay"] = delay
        options["max_delay"] = max(defaults.max_delay, delay)
        # The jitter scales with a shorter first delay, so 0.05 s stays about 0.05 s.
        options["jitter_range"] = min(defaults.jitter_range, delay / 2)
    retry = RetryConfig(**options)
    probes = [parse_probe(p) for p in args.probe]
    monitor = NetworkMonitor(probes=probes or None, timeout=2.0)
    return headers, profiles, retry, monitor


def cmd_get(args: argparse.Namespace, out: IO[bytes], err: Terminal) -> int:
    """``connmgr get``: one GET through a manager; body to ``out``, the rest to ``err``."""
    from connmgr.clock import CancelToken
    from connmgr.errors import NetworkError, classify_error, redact_url
    from connmgr.manager import ConnectionManager
    from connmgr.timeouts import TimeoutProfiles

    try:
        headers, profiles, retry, monitor = _configure(args)
    except ValueError as exc:
        fail(err, str(exc))
        return EXIT_USAGE

    quiet, verbose = args.quiet, args.verbose
    url_shown = redact_url(args.url)
    cancel = CancelToken()
    narrator = RequestNarrator(err, max_retries=retry.max_retries, verbose=verbose, quiet=quiet)
    manager = ConnectionManager(timeouts=profiles, retry=retry, monitor=monitor)
    started = time.perf_counter()
    response: requests.Response | None = None
    failure: BaseException | None = None
    try:
        # Quiet means nothing on stderr unless it fails: no live area, spinner or bar.
        with contextlib.nullcontext() if quiet else err:
            if verbose:
                profile = (profiles or TimeoutProfiles())[args.operation]
                err.line(
                    f"GET {url_shown}: operation {args.operation} "
                    f"(connect {profile.connect:g} s, read {profile.read:g} s, total "
                    f"{'none' if profile.total is None else f'{profile.total:g} s'})"
                )
            spinner = (
                contextlib.nullcontext()
                if quiet
                else err.working(f"GET {url_shown}: waiting for the response")
            )
            try:
                with narrator.listening(manager), spinner:
                    response = manager.get(
                        args.url,
                        operation=args.operation,
                        cancel=cancel,
                        headers=headers or None,
                        stream=True,
                    )
            except NetworkError as exc:
                failure = exc
            except ValueError as exc:  # a bad argument to requests
                fail(err, str(exc))
                return EXIT_USAGE
            except Exception as exc:  # anything requests raised that the manager did not map
                failure = classify_error(exc, url=args.url)
            run = _Run(args, err, narrator, started, monitor)
            if failure is None:
                assert response is not None
                return run.deliver(response, out)
            return run.report_failure(failure)
    except KeyboardInterrupt:
        cancel.cancel()
        fail(err, "cancelled")
        return EXIT_INTERRUPTED
    finally:
        if response is not None:
            response.close()
        with contextlib.suppress(Exception):
            manager.close()


@explain_frozen
@dataclass(frozen=True, slots=True)
class _Run:
    """What the end of one ``connmgr get`` needs: its options, output and story so far."""

    args: argparse.Namespace
    err: Terminal
    narrator: RequestNarrator
    started: float
    monitor: NetworkMonitor

    def deliver(self, response: requests.Response, out: IO[bytes]) -> int:
        """Stream the body to ``out`` or ``-o FILE``, then the status line; the exit code."""
        from connmgr.errors import classify_error, redact_headers

        args, err = self.args, self.err
        to_file = bool(args.output)
        sink: IO[bytes] = out
        if to_file:
            try:
                sink = open(args.output, "wb")  # noqa: SIM115 - closed below, after the body
            except OSError as exc:
                fail(err, f"could not write {args.output}: {exc.strerror or exc}")
                return 1
        shared = not to_file and same_destination(out, err.stream)
        if shared:
            # The body goes to the very terminal (or pipe) the live area draws on: no
            # bar, and nothing redrawn in the middle of the body.
            err.stop()
        total = expected_length(response)
        last = b"\n"
        failure: BaseException | None = None
        with contextlib.ExitStack() as stack:
            if to_file:
                stack.callback(sink.close)
            bar = (
                Transfer(total)
                if shared or args.quiet
                else stack.enter_context(err.transfer(f"↓ {args.output or 'stdout'}", total))
            )
            try:
                for chunk in body_chunks(response):
                    sink.write(chunk)
                    bar.advance(len(chunk))
                    last = chunk[-1:] or last
                sink.flush()
            except BrokenPipeError:
                raise
            except OSError as exc:
                if to_file:
                    fail(err, f"could not write {args.output}: {exc.strerror or exc}")
                    return 1
                failure = classify_error(exc, url=args.url)
            except Exception as exc:  # requests' errors while reading the body
                failure = classify_error(exc, url=args.url)
        if not to_file and last != b"\n":
            if shared:
                err.line("")  # the status line starts on a line of its own
            elif is_terminal(out):
                out.write(b"\n")  # a person's terminal: the shell prompt too
                out.flush()
        if failure is not None:
            return self.report_failure(failure, received=bar.done)
        elapsed = time.perf_counter() - self.started
        code = status_exit_code(response.status_code)
        if not args.quiet or code:
            err.line(
                f"{response.status_code} {response.reason or ''}".rstrip()
                + f" · {format_bytes(bar.done)} · {format_duration(elapsed)}"
                + _retries_text(self.narrator.retries, " · "),
                style="green" if code == 0 else "bold red",
            )
        if args.verbose:
            for name, value in redact_headers(response.headers).items():
                err.line(f"  {name}: {value}", style="dim")
        return code

    def report_failure(self, failure: BaseException, *, received: int = 0) -> int:
        """Print the failure in words; return its exit code."""
        args, err = self.args, self.err
        elapsed = time.perf_counter() - self.started
        words = describe_failure(
            failure,
            url=args.url,
            network=self.monitor.status.name,
            earlier=self.narrator.attempt_errors,
        )
        code = exit_code_for(words.error)
        fail(err, words.message, words.suggestion)
        if args.verbose:
            details = getattr(failure, "details", None) or failure
            err.line(f"  details: {details}", style="dim")
        if not args.quiet:
            got = f" ({format_bytes(received)} of the body received)" if received else ""
            err.line(
                f"  ({type(words.error).__name__} after {elapsed:.2f} s"
                f"{_retries_text(self.narrator.retries, ' and ')}{got}; exit code {code})",
                style="dim",
            )
        return code


def body_chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: each chunk is what the socket had, up to :data:`CHUNK_SIZE`.

    ``iter_content`` waits until a whole chunk is in, so a slow body would show no
    progress until the end; urllib3's ``read1`` returns what has arrived (decoded,
    de-chunked). Its errors are urllib3's, which ``classify_error`` maps like any.
    """
    raw = response.raw
    while True:
        chunk = raw.read1(CHUNK_SIZE, decode_content=True)
        if not chunk:
            return
        yield chunk


def _retries_text(retries: int, joiner: str) -> str:
    if not retries:
        return ""
    return f"{joiner}{retries} retr{'y' if retries == 1 else 'ies'}"


def expected_length(response: requests.Response) -> int | None:
    """The body's length for the bar: Content-Length, unless a content coding changes it."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    length = response.headers.get("Content-Length", "")
    if encoding not in ("", "identity") or not length.strip().isdigit():
        return None
    return int(length)
