"""The cyclic garbage collector's settings for a worker process.

CPython's defaults (a young collection every 700 container allocations, a full one every
10 middle ones) suit short programs, not a worker that allocates ~50 containers per
signalement and keeps many of them for a while: Faust events wait in buffers, batches hold
their records, in-memory tables hold each open case. Objects alive at a young collection are
promoted even when they die soon after, so the full collection's trigger (promoted objects >
25 % of the old ones) fired about once a second, and each one walked every object in the
process. Measured with `aiguillage bench --only hub --count 30000 --rate 500` (issue 8): 27
full collections of 55-117 ms, 3.3 s in all; with these settings no full collection and eleven
young ones of 9-22 ms (the only ones over 5 ms), 0.36 s in all, and 763 -> 615 µs of CPU per
signalement.

Nothing here changes what is collected, only how often: reference counting frees acyclic
objects at once, and a full collection still runs, just not every second.
"""

from __future__ import annotations

import gc

# Young collections every 50,000 allocations (most of a batch's objects are gone by then);
# a middle one every 20 young ones; a full one at most every 10 middle ones (~10M allocations).
SEUILS = (50_000, 20, 10)


def regler() -> None:
    """Set the thresholds, and move what start-up built (modules, classes, the app: ~80,000
    objects that live as long as the process) out of every later collection's walk."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SEUILS)
