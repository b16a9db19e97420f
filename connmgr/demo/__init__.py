"""The scripted demo: worker threads search a misbehaving store API through one manager.

``connmgr demo`` starts a loopback :class:`~connmgr.testing.FaultServer` as "the
store API" and a second one as "the internet" (what the network monitor
probes), then runs several worker threads that search the API through **one**
:class:`~connmgr.ConnectionManager` while a script puts the world through the
story of a bad day:

1. ``healthy`` — every search is answered;
2. ``flaky`` — 30% of answers are 503: retries hide them, the origin turns
   *degraded*, then *online* again once the server heals;
3. ``outage`` — every answer is 503: the circuit opens (*backoff*), the
   cooldown passes, the trial fails and the cooldown doubles; the server comes
   back, the next trial succeeds (*degraded*), then *online*;
4. ``rate-limit`` — the server answers 429 with ``Retry-After``:
   *rate_limited*, searches wait at the gate until the pause is over, then it
   is fine again;
5. ``network`` — the network is lost (the probe fails, the API refuses):
   *offline*, searches fail fast without touching the network; the network
   comes back and so does *online*;
6. ``offline-first`` — the network is lost again, but searches are answered
   from the session's HTTP cache (``serve_stale``, requests-cache) and a
   playlist edit is queued in an :class:`~connmgr.outbox.Outbox` on disk, with
   its ``Idempotency-Key``; the network comes back and the outbox delivers it.

The modules, from the data up:

- :mod:`~connmgr.demo.timings` — :class:`DemoTimings`, every duration (shortened);
- :mod:`~connmgr.demo.story` — :data:`CHAPTERS`, each chapter's script and the
  :class:`StoryContext` it drives the world through;
- :mod:`~connmgr.demo.events` / :mod:`~connmgr.demo.report` — :class:`DemoEvent`
  (a timeline entry) and :class:`DemoReport` (what happened, counted);
- :mod:`~connmgr.demo.runner` — :func:`run_story`, the workers and the script;
- :mod:`~connmgr.demo.world` — :class:`DemoWorld`, the two servers and the manager;
- :mod:`~connmgr.demo.printer` / :mod:`~connmgr.demo.command` — the terminal
  timeline and ``connmgr demo`` itself.

The Qt window (``connmgr demo --gui``) lives in :mod:`connmgr.qt.demo`, since
only ``connmgr.qt`` imports PySide6; it plays the same :func:`run_story`.

Example::

    from connmgr.demo.runner import run_story
    from connmgr.demo.timings import DemoTimings
    from connmgr.demo.world import DemoWorld

    with DemoWorld(timings=DemoTimings.fast()) as world:
        report = run_story(world.manager, world.api, set_network=world.set_network,
                           timings=world.timings, on_event=print)
    report.states_visited      # (online, degraded, backoff, rate_limited, offline)

The names are also importable from ``connmgr.demo`` itself, loaded on first
use, so this package imports nothing until asked.
"""

from __future__ import annotations

from connmgr import lazy

__all__ = [
    "CHAPTERS",
    "QUERIES",
    "SEARCH_PATH",
    "Chapter",
    "DemoEvent",
    "DemoReport",
    "DemoTimings",
    "DemoWorld",
    "StoryContext",
    "TimelinePrinter",
    "chapter_names",
    "run_cli",
    "run_story",
    "select_chapters",
]

# Loaded on first use: the package itself imports none of its modules, so each
# module's own imports of its siblings can never form a cycle through here.
_EXPORTS: dict[str, str] = {
    "CHAPTERS": "connmgr.demo.story",
    "QUERIES": "connmgr.demo.story",
    "SEARCH_PATH": "connmgr.demo.story",
    "Chapter": "connmgr.demo.story",
    "StoryContext": "connmgr.demo.story",
    "chapter_names": "connmgr.demo.story",
    "select_chapters": "connmgr.demo.story",
    "DemoEvent": "connmgr.demo.events",
    "DemoReport": "connmgr.demo.report",
    "DemoTimings": "connmgr.demo.timings",
    "DemoWorld": "connmgr.demo.world",
    "TimelinePrinter": "connmgr.demo.printer",
    "run_cli": "connmgr.demo.command",
    "run_story": "connmgr.demo.runner",
}

__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS, __all__)
