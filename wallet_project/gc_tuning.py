"""The cyclic garbage collector, fitted to a worker that serves one request at a time.

Each request leaves its objects in reference cycles (DRF's view, request and
response point at each other; a list serializer and its data do too), so
they are freed by the cyclic collector, not by reference counting. A request
that allocates a few thousand objects (a history page: fifty ledger rows,
their UUIDs, decimals and rendered dicts) sets off young collections while it
runs, and what is still alive then is promoted; left to Python's schedule,
many of them reach the oldest generation, which is collected only when it
has grown by a quarter of everything start-up left there (about 100,000
objects), and then takes 35-65 ms. Between those collections several MB of
finished requests wait, and the arenas they fill stay mapped afterwards:
left to that schedule, worker memory grows by 8-10 MB under history pages
and stays there.

Two gunicorn hooks (gunicorn.conf.py) change that:

- `after_start`, once the application is loaded: start-up's objects are moved
  out of the collector's sight (`gc.freeze`), so a full collection looks only
  at what requests left, and costs 0.1-5 ms instead of 35-65;
- `before_request`, as each request starts: when a young collection has run
  since the last one (it promoted whatever the last request still held), the
  two young generations are collected now, while the last request's cycles are
  garbage and before another promotion makes them old.

Not after the response (gunicorn's `post_request`): the sync worker calls that
hook while its own frame still holds the response, and a DRF response holds
its view and request (`renderer_context`), so a collection there finds the
whole request alive and promotes it to the oldest generation, where it waits,
as garbage, for a full collection. Measured in a worker under history pages,
each such collection promoted 130-450 objects; at the next request's start
20-35, what requests keep on purpose (caches, facts, connections).

Nothing here changes what is freed, only when; see docs/PERFORMANCE.md,
"Garbage collector fitted to a sync worker".
"""

from __future__ import annotations

import gc


def after_start() -> None:
    """Collect start-up's garbage, freeze what survives, and start the oldest generation empty."""
    gc.collect()
    gc.freeze()
    # The oldest generation is empty now: this full collection costs nothing and
    # makes the next one due after a small growth, not a quarter of start-up's objects.
    gc.collect()


def before_request() -> None:
    """Collect the young generations if a young collection ran during the last request(s), which nothing
    references any more."""
    if gc.get_count()[1]:
        gc.collect(1)
