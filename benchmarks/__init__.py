"""Side-by-side measurements of connmgr against plain requests and urllib3's Retry.

Each ``bench_*.py`` module exposes ``TITLE`` (str) and ``run(quick: bool) -> str``,
which performs its measurements and returns a Markdown section (tables of
figures, ratios against the plain-requests / urllib3 anchors, and the target
each figure must reach). ``python -m benchmarks`` runs them all in one process
and prints the sections; ``--write docs/performance.md`` records them.
"""
