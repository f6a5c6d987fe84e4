"""Heavy requests give way to the others.

A heavy GraphQL answer (thousands of objects) is built in slices of about a millisecond with
a pause between two (decoding rows, serializing, encoding, sending). A pause of `sleep(0)`
lets every other ready task run once, but another request spends most of its time waiting —
for the SQLite thread, which needs the GIL the heavy slices hold, for its socket — and so
met one heavy slice after another at each of its steps. Here a heavy request's pause lasts
GIVE_WAY_SECONDS while any other request of the process is being answered: others then
find the loop (and the GIL) free, and a heavy answer takes at most three times as long
while they do. With no other request in flight, the pause is `sleep(0)` as before.

`Edge` counts the requests in flight (`answering`); the GraphQL endpoint and the executor
mark the heavy part of a request (`heavy`), and the heavy path pauses with `give_way()`.

Garbage collection: a heavy answer is hundreds of thousands of live objects for a second or
more; they reach the collector's older generations, and a collection of those scans them all
in one pause (88 ms for a full one and 26 ms for the middle one while one 47,595-object answer
was built, measured with bench/slow_steps.py). While a heavy part runs, only the youngest
generation is collected (what requests allocate and drop, cycles included); the older ones
wait until no heavy part runs — at most HEAVY_GC_SECONDS, after which the thresholds are
back whatever runs, so that cyclic garbage cannot pile up under a stream of heavy answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import time
from collections.abc import Iterator

GIVE_WAY_SECONDS = 0.002
HEAVY_GC_SECONDS = 5.0
_POSTPONED = 1_000_000  # older generations' thresholds while heavy parts run

_heavy_var: contextvars.ContextVar[bool] = contextvars.ContextVar("heavy", default=False)
_in_flight = 0  # requests being answered by this process
_heavy = 0  # of which in a heavy part
_thresholds: tuple[int, int, int] | None = None  # the collector's own, while postponed
_heavy_since = 0.0


def _postpone_old_collections() -> None:
    global _thresholds, _heavy_since
    _heavy_since = time.monotonic()
    if _thresholds is None:
        _thresholds = gc.get_threshold()
        gc.set_threshold(_thresholds[0], _POSTPONED, _POSTPONED)


def _restore_collections() -> None:
    global _thresholds
    if _thresholds is not None:
        gc.set_threshold(*_thresholds)
        _thresholds = None


@contextlib.contextmanager
def answering() -> Iterator[None]:
    """Around every request (Edge)."""
    global _in_flight
    _in_flight += 1
    try:
        yield
    finally:
        _in_flight -= 1


@contextlib.contextmanager
def heavy() -> Iterator[None]:
    """Around the heavy part of a request: its pauses give way to the other requests."""
    global _heavy
    if _heavy_var.get():
        yield
        return
    token = _heavy_var.set(True)
    _heavy += 1
    if _heavy == 1:
        _postpone_old_collections()
    try:
        yield
    finally:
        _heavy -= 1
        _heavy_var.reset(token)
        if _heavy == 0:
            _restore_collections()


async def give_way() -> None:
    """A pause in long work: GIVE_WAY_SECONDS in a heavy part while other requests are in
    flight, else one turn of the event loop."""
    if _thresholds is not None and time.monotonic() - _heavy_since > HEAVY_GC_SECONDS:
        _restore_collections()  # heavy parts back to back: collect as usual again
    if _heavy_var.get() and _in_flight > _heavy:
        await asyncio.sleep(GIVE_WAY_SECONDS)
    else:
        await asyncio.sleep(0)
