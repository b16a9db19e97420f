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
    if args.write:
        Path(args.write).write_text(
            "\n".join(header) + "\n" + "\n".join(sections), encoding="utf-8"
        )
        print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
