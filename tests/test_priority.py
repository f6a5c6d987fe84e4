"""Heavy requests give way to the others (pixelwand/priority.py): a heavy part's pauses last
GIVE_WAY_SECONDS while another request is being answered, one loop turn otherwise."""

from __future__ import annotations

import asyncio

import pytest

from pixelwand import priority


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        asked.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(priority.asyncio, "sleep", sleep)
    return asked


async def test_a_heavy_part_pauses_longer_only_while_others_are_answered(
    pauses: list[float],
) -> None:
    with priority.answering():  # the heavy request itself
        await priority.give_way()  # not (yet) in its heavy part
        with priority.heavy():
            await priority.give_way()  # alone in the process
            with priority.answering():  # another request comes in
                await priority.give_way()
                with priority.heavy():  # nested: still one heavy request
                    await priority.give_way()
            await priority.give_way()  # the other one is answered
        await priority.give_way()
    assert pauses == [0, 0, priority.GIVE_WAY_SECONDS, priority.GIVE_WAY_SECONDS, 0, 0]


async def test_only_the_heavy_task_pauses_longer(pauses: list[float]) -> None:
    async def ordinary() -> None:
        with priority.answering():
            await priority.give_way()

    async def heavy() -> None:
        with priority.answering(), priority.heavy():
            await asyncio.sleep(0)
            await priority.give_way()

    with priority.answering():  # a third request in flight
        await asyncio.gather(ordinary(), heavy())
    assert sorted(pauses) == [0, 0, priority.GIVE_WAY_SECONDS]
