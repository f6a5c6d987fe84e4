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
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator

GIVE_WAY_SECONDS = 0.002

_heavy_var: contextvars.ContextVar[bool] = contextvars.ContextVar("heavy", default=False)
_in_flight = 0  # requests being answered by this process
_heavy = 0  # of which in a heavy part


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
    try:
        yield
    finally:
        _heavy -= 1
        _heavy_var.reset(token)


async def give_way() -> None:
    """A pause in long work: GIVE_WAY_SECONDS in a heavy part while other requests are in
    flight, else one turn of the event loop."""
    if _heavy_var.get() and _in_flight > _heavy:
        await asyncio.sleep(GIVE_WAY_SECONDS)
    else:
        await asyncio.sleep(0)
