"""stream-zip's ZIP writer, bridged to asyncio on a thread of its own per archive.

stream-zip's own `async_stream_zip` parks a thread of the event loop's *shared* default
executor for the whole life of an archive, and that thread waits on the loop for member
bytes. A dozen concurrent exports then held every thread of that pool, and the file reads
they were waiting for (which also need the pool) could never run: a deadlock. Here each
archive gets a dedicated thread, the number of archives written at once is bounded (more
wait their turn), and the shared pool stays free for storage I/O.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import Any

from stream_zip import stream_zip

MAX_CONCURRENT_ARCHIVES = 32
_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

_DONE = object()


class _Stopped(Exception):
    """The consumer went away; the writer thread unwinds."""


def _slot(loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
    sem = _slots.get(loop)
    if sem is None:
        sem = _slots[loop] = asyncio.Semaphore(MAX_CONCURRENT_ARCHIVES)
    return sem


async def _next(iterator: AsyncIterator[Any]) -> Any:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _DONE


async def zip_stream(
    members: AsyncIterable[tuple], chunk_size: int = 65536
) -> AsyncIterator[bytes]:
    """The ZIP of `members` (stream-zip's member tuples whose last item is async), as it is
    written. Member bytes are pulled on the loop; CRCs and framing run on the writer thread."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    out: asyncio.Queue[Any] = asyncio.Queue(maxsize=8)

    def pull(iterator: AsyncIterator[Any]) -> Iterator[Any]:
        while True:
            if stop.is_set():
                raise _Stopped()
            value = asyncio.run_coroutine_threadsafe(_next(iterator), loop).result()
            if value is _DONE:
                return
            yield value

    def sync_members() -> Iterator[tuple]:
        for member in pull(aiter(members)):
            yield (*member[:4], pull(aiter(member[4])))

    def emit(item: Any) -> None:
        if not stop.is_set():
            asyncio.run_coroutine_threadsafe(out.put(item), loop).result()

    def write() -> None:
        try:
            for chunk in stream_zip(sync_members(), chunk_size=chunk_size):
                if stop.is_set():
                    return
                emit(chunk)
            emit(_DONE)
        except _Stopped:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            emit(exc)

    async with _slot(loop):
        thread = threading.Thread(target=write, name="zip-writer", daemon=True)
        thread.start()
        try:
            while True:
                item = await out.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while not out.empty():  # unblock a writer waiting to put
                out.get_nowait()
            await asyncio.to_thread(thread.join, 5)
