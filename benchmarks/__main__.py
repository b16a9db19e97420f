"""Run every benchmark in one process: ``python -m benchmarks [--only NAME] [--quick]``."""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import os
import pkgutil
import platform
import sys
import time
from pathlib import Path

import requests
import urllib3

HERE = Path(__file__).resolve().parent

# How the figures are measured: the same on every run, so it is written with the numbers.
METHOD = """## How the figures are measured

- **Command.** `make bench` runs `python -m benchmarks` (every section);
  `python -m benchmarks --only manager` runs one section, `--quick` makes a smoke run
  with fewer rounds, `--write docs/performance.md` records the page.
- **Client CPU per request** is `time.thread_time` of the client thread (for connmgr
  plus its watchdog thread). The server is a FaultServer in a child process pinned to
  one core; the client is pinned to the other. Clients run in interleaved rounds of 100
  requests, the order alternating each round, so that drift on this shared VM hits all
  alike. A figure is the median of the per-round ratios against plain requests, with
  the quartiles (and the medians of the run's thirds, which show drift).
- **Instructions per request** come from `valgrind --tool=callgrind --instr-atstart=no
  --dump-before=os_getppid --dump-instr=no --collect-jumps=no python -c CLIENT KIND URL M N`
  against the same child server, one run per client (both at once, at most 115 s). The
  client makes M = 30 GETs uninstrumented, switches instrumentation on
  (`callgrind_control -i on`) and calls `os.getppid()`, makes GETs up to N = 180 and calls
  `os.getppid()` again; callgrind dumps its totals at each call, so the second dump holds
  the 150 requests between and none of the interpreter's start, imports or exit.
  Instruction counts do not move with the load of other processes, CPU time does;
  without valgrind the figure is skipped with a line.
- **8 threads** run 600 GETs each through one manager, against 8 threads with a plain
  Session each, in 7 interleaved rounds; the figure is the median of per-round ratios.
- **The machine** is a 2-core VM shared with other work: CPU figures move by a few
  percent between runs; the ratios within one run are the figures to compare.
"""


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only", action="append", default=[], help="run only bench_NAME (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run")
    parser.add_argument("--write", metavar="PATH", help="also write the report to PATH (Markdown)")
    args = parser.parse_args(argv)

    names = _modules()
    if args.only:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.only}
        names = [n for n in names if n in wanted]
    command = (
        "make bench"
        if not (args.only or args.quick)
        else "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    )
    header = [
        "# Performance",
        "",
        "Produced by `"
        + command
        + "` on "
        + _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        + f" ({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        + f"requests {requests.__version__}, urllib3 {urllib3.__version__}).",
        "Every figure below comes from that one run; re-run the command to refresh this page.",
        "",
    ]
    sections: list[str] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        started = time.perf_counter()
        print(f"== {module.TITLE} ==", file=sys.stderr, flush=True)
        body = module.run(quick=args.quick)
        took = time.perf_counter() - started
        section = f"## {module.TITLE}\n\n{body.strip()}\n\n_(section took {took:.1f} s)_\n"
        print(section, flush=True)
        sections.append(section)
    summary = ["| section | figures that PASS | figures that MISS |", "|---|---:|---:|"]
    for section in sections:
        title = section.splitlines()[0].removeprefix("## ")
        summary.append(f"| {title} | {section.count('PASS')} | {section.count('MISS')} |")
    header += ["## Summary", "", *summary, "", "A MISS is reported as measured, not hidden.", ""]
    header += [METHOD]
    if args.write:
        Path(args.write).write_text(
            "\n".join(header) + "\n" + "\n".join(sections), encoding="utf-8"
        )
        print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
