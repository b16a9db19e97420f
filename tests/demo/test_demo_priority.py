"""The priority chapter: a user's search goes ahead of queued background prefetches."""

from __future__ import annotations

import re
import threading

from connmgr.demo.events import DemoEvent
from connmgr.demo.runner import run_story
from connmgr.demo.timings import DemoTimings
from connmgr.demo.world import DemoWorld


def test_the_users_search_goes_ahead_of_the_prefetches_and_the_limit_is_restored():
    events: list[DemoEvent] = []
    lock = threading.Lock()

    def collect(event: DemoEvent) -> None:
        with lock:
            events.append(event)

    timings = DemoTimings.fast()
    with DemoWorld(timings=timings) as world:
        before = world.manager.rate_limits.limit_for(world.api.url)
        report = run_story(
            world.manager, world.api, set_network=world.set_network,
            chapters=["priority"], timings=timings, workers=1, on_event=collect,
        )  # fmt: skip
        after = world.manager.rate_limits.limit_for(world.api.url)
        prefetches = len([r for r in world.api.requests if "prefetch=" in r.query])
    assert report.ok, report.missed
    assert after == before  # the app's own limit is back
    assert prefetches == 30
    steps = [e.text for e in events if e.kind == "step"]
    ahead = next(text for text in steps if "went ahead of" in text)
    waited, behind = re.search(r"waited ([\d.]+) s .* ~([\d.]+) s", ahead).groups()
    assert float(waited) < float(behind)  # it did not wait at the back of the queue
