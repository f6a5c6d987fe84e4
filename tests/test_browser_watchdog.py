"""The browser tests' watchdog (tests/support/browser.py): a renderer that never answers
is killed at the deadline, the call waiting on it fails instead of hanging the run, and
`survives_one_wedge` runs the test once more in a fresh browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.browser import BrowserWedged, Chromium, running_chromium, survives_one_wedge

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SPIN = "() => { for (;;) {} }"  # page.evaluate has no timeout: this await never returns


@pytest.fixture
async def browser() -> AsyncIterator[Chromium]:
    async with running_chromium() as chromium:
        yield chromium


async def test_a_spinning_page_is_killed_at_the_deadline(
    browser: Chromium, capfd: pytest.CaptureFixture[str]
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    with browser.watched(3, "spin") as watch, pytest.raises(Exception) as raised:
        await page.evaluate(SPIN)
    assert watch.fired
    assert "closed" in str(raised.value).lower()
    report = capfd.readouterr().err
    assert "spin: still running after 3 s" in report
    assert "chromium" in report and "killed" in report
    assert "test_a_spinning_page_is_killed_at_the_deadline" in report  # the test's own stack


async def test_an_answering_browser_is_left_alone(browser: Chromium) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    with browser.watched(30) as watch:
        assert await page.evaluate("() => 6 * 7") == 42
    assert not watch.fired
    assert await page.evaluate("() => 1") == 1  # the timer was disarmed: still alive


attempts: list[Path] = []


@survives_one_wedge(3)
async def _wedges_once(browser: Chromium, tmp_path: Path) -> None:
    attempts.append(tmp_path)
    (tmp_path / "made").write_text("each try has its own folder")
    page = await (await browser.new_context()).new_page()
    if len(attempts) == 1:
        await page.evaluate(SPIN)
    assert await page.evaluate("() => 6 * 7") == 42


async def test_one_wedge_is_survived_in_a_fresh_browser(browser: Chromium, tmp_path: Path) -> None:
    attempts.clear()
    with pytest.warns(BrowserWedged, match="killed"):
        await _wedges_once(browser=browser, tmp_path=tmp_path)
    assert len(attempts) == 2 and attempts[0] != attempts[1]


@survives_one_wedge(3)
async def _always_wedges(browser: Chromium) -> None:
    attempts.append(Path("."))
    page = await (await browser.new_context()).new_page()
    await page.evaluate(SPIN)


async def test_a_second_wedge_fails(browser: Chromium) -> None:
    attempts.clear()
    with pytest.warns(BrowserWedged), pytest.raises(Exception, match=r"(?i)closed"):
        await _always_wedges(browser=browser)
    assert len(attempts) == 2
