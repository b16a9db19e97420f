"""Figure (h) of the manager section: requests' environment reads against EnvironmentCache.

Two paths, each measured as requests does it (the environment read on every
request) and through :class:`connmgr.environment.EnvironmentCache` (read once
per origin and epoch): ``prepare`` + ``send_settings`` alone (timeit, nothing
sent), and a full GET to the FaultServer child. Both in this machine's
environment and in a desktop's behind a proxy (set for the measurement, then
restored).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from benchmarks._loopback import cpu_per_request, median_quartiles
from connmgr.environment import EnvironmentCache
from connmgr.outgoing import prepare, send_settings

#: The variables requests reads, as the report names them.
VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "NETRC",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def _proxy_environment() -> Iterator[str]:
    """A desktop behind a proxy: HTTP(S)_PROXY, a NO_PROXY list, a netrc of three hosts."""
    names = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "NETRC")
    before = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="connmgr-bench-env-") as folder:
        netrc = Path(folder) / "netrc"
        netrc.write_text(
            "machine store.example login dj password secret\n"
            "machine api.example login app password token\n"
            "machine backup.example login me password other\n",
            encoding="utf-8",
        )
        os.environ.update(
            HTTP_PROXY="http://proxy.invalid:3128",
            HTTPS_PROXY="http://proxy.invalid:3128",
            NO_PROXY="localhost,127.0.0.1,.internal",
            NETRC=str(netrc),
        )
        try:
            yield "HTTP(S)_PROXY, a 3-entry NO_PROXY that bypasses loopback, a 3-host netrc"
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _interleaved(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for i in range(rounds):
        for name in names if i % 2 == 0 else reversed(names):
            samples[name].append(contenders[name]())
    return samples


def _environment_rows(url: str, quick: bool, where: str) -> list[tuple[str, ...]]:
    session = requests.Session()
    env = EnvironmentCache()
    nowhere = "http://127.0.0.1:9/ok"  # only prepared, never sent

    def plain_prepare() -> None:
        prepared = prepare(session, "GET", nowhere)
        send_settings(session, prepared)

    def cached_prepare() -> None:
        prepared = prepare(session, "GET", nowhere, environment=env, epoch=1)
        send_settings(session, prepared, environment=env, epoch=1)

    ok = url + "/ok"
    plain_session, cached_session = requests.Session(), requests.Session()

    def plain_get() -> object:
        prepared = plain_session.prepare_request(requests.Request("GET", ok))
        settings = plain_session.merge_environment_settings(prepared.url, {}, None, None, None)
        return plain_session.send(prepared, timeout=(5, 30), allow_redirects=True, **settings)

    def cached_get() -> object:
        prepared = env.prepare_request(cached_session, requests.Request("GET", ok), epoch=1)
        settings = env.merge_environment_settings(
            cached_session, ok, proxies={}, stream=None, verify=None, cert=None, epoch=1
        )
        return cached_session.send(prepared, timeout=(5, 30), allow_redirects=True, **settings)

    number, rounds = (200, 7) if quick else (1000, 21)
    timer = timeit.Timer
    micro = _interleaved(
        {
            "plain": lambda: timer(plain_prepare, timer=time.thread_time).timeit(number) / number,
            "cached": lambda: timer(cached_prepare, timer=time.thread_time).timeit(number) / number,
        },
        rounds,
    )
    for fn in (plain_get, cached_get):  # warm the pools
        for _ in range(30):
            fn()
    full = _interleaved(
        {
            "plain": lambda: cpu_per_request(plain_get, 100),
            "cached": lambda: cpu_per_request(cached_get, 100),
        },
        9 if quick else 41,
    )
    for each in (session, plain_session, cached_session):
        each.close()
    micro_ratio, micro_low, micro_high = median_quartiles(
        [c / p for c, p in zip(micro["cached"], micro["plain"], strict=True)]
    )
    full_ratio, full_low, full_high = median_quartiles(
        [c / p for c, p in zip(full["cached"], full["plain"], strict=True)]
    )
    return [
        (
            f"{where}: `prepare` + `send_settings` (timeit, CPU)",
            f"{statistics.median(micro['plain']) * 1e6:.1f} µs",
            f"{statistics.median(micro['cached']) * 1e6:.1f} µs",
            f"{micro_ratio:.3f}x (quartiles {micro_low:.3f}-{micro_high:.3f})",
        ),
        (
            f"{where}: full GET, `prepare_request` + `merge_environment_settings` + `send`",
            f"{statistics.median(full['plain']) * 1e6:.0f} µs",
            f"{statistics.median(full['cached']) * 1e6:.0f} µs",
            f"{full_ratio:.3f}x (quartiles {full_low:.3f}-{full_high:.3f})",
        ),
    ]


def environment_figures(url: str, quick: bool) -> str:
    """Figure (h) of the manager section, as Markdown: plain requests against the cache."""
    here = [name for name in VARIABLES if os.environ.get(name) or os.environ.get(name.lower())]
    rows = _environment_rows(url, quick, "this machine")
    with _proxy_environment() as described:
        rows += _environment_rows(url, quick, "behind a proxy")
    return (
        "### (h) Environment settings resolved once per network epoch\n\n"
        + table(rows, ("path", "requests reads the environment", "EnvironmentCache", "ratio"))
        + "\n\nThis machine's environment sets "
        + (", ".join(f"`{name}`" for name in here) or "no proxy, netrc or CA variable")
        + f"; *behind a proxy* adds {described}. CPU is `time.thread_time`; ratios are the "
        "median (and quartiles) of per-round ratios over interleaved rounds, order alternating; "
        "the full GETs go to the FaultServer child on the other core."
    )
