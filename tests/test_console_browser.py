"""The web console, GraphiQL and the REST docs page in a real headless Chromium (Debian's
`chromium` package driven by Playwright), against a live `pixelwand serve`, with every
request to anything but 127.0.0.1 refused: nothing may come from a CDN.

Screenshots of the main pages go to this run's temporary directory; with
PIXELWAND_UPDATE_SCREENSHOTS=1 they also replace docs/screenshots/*.png (the README's).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.helpers import make_image, make_mp4, redness, subject_image
from tests.support.browser import Chromium, running_chromium, survives_one_wedge
from tests.support.live_server import (
    ROOT,
    LiveServer,
    backend_env,
    backend_services,
    live_server,
)

SCREENSHOTS = ROOT / "docs" / "screenshots"
API_KEY = re.compile(r"^ak_live_[A-Za-z0-9]{32,}$")

# A test here takes 5-60 s (a quick axe run 10-30 s). Past WEDGED_SECONDS its browser is
# killed and it is run once more in a fresh one (tests/support/browser.py: CI runs have hung
# on a spinning renderer); pytest-timeout is the last resort.
WEDGED_SECONDS = 150
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2 * WEDGED_SECONDS + 120)]


@pytest.fixture(scope="module", params=BACKENDS)
def services(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    return request.param, backend_services(request.param, request)


@pytest.fixture(scope="module")
async def live(
    services: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    name, shared = services
    tmp = tmp_path_factory.mktemp(f"console-{name}")
    async with backend_env(shared, tmp) as store:
        with live_server(store, tmp) as server:
            yield server


@pytest.fixture
async def browser() -> AsyncIterator[Chromium]:
    """A driver and a browser of the test's own (a second costs about a second): nothing one
    test leaves in Chromium reaches the next."""
    async with running_chromium() as chromium:
        yield chromium


class Offline:
    """A browser context whose requests may only reach 127.0.0.1 (the others are aborted
    and remembered), with the page's script errors collected."""

    def __init__(self) -> None:
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.requests: list[tuple[str, str, str | None]] = []  # method, url, body

    async def open(self, browser: Chromium, **options: Any) -> Any:
        context = await browser.new_context(accept_downloads=True, **options)

        async def route(r: Any) -> None:
            self.urls.append(r.request.url)
            self.requests.append((r.request.method, r.request.url, r.request.post_data))
            if urlsplit(r.request.url).hostname in ("127.0.0.1", None):
                await r.continue_()
            else:
                self.blocked.append(r.request.url)
                await r.abort()

        await context.route("**/*", route)
        page = await context.new_page()
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return context, page


async def _shot(page: Any, name: str, tmp: Path) -> None:
    data = await page.screenshot(full_page=False)
    (tmp / f"{name}.png").write_bytes(data)
    if os.environ.get("PIXELWAND_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"{name}.png").write_bytes(data)


def _read(path: Any) -> bytes:
    return Path(path).read_bytes()


async def _nav(page: Any, name: str) -> None:
    main = page.get_by_role("navigation", name="Main")
    await main.get_by_role("link", name=name, exact=True).click()


async def _sign_in(page: Any, base: str, key: str) -> None:
    await page.goto(base + "/")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()


@survives_one_wedge(WEDGED_SECONDS)
async def test_a_day_in_the_console(live: LiveServer, browser: Chromium, tmp_path: Path) -> None:
    from playwright.async_api import expect

    net = Offline()
    context, page = await net.open(browser, viewport={"width": 1280, "height": 800})
    base = live.base

    # Sign in; the key lives in this tab's sessionStorage, never in a cookie or a URL.
    await _sign_in(page, base, live.key)
    await expect(page.get_by_role("heading", name="Library", level=1)).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('pixelwand.apiKey')") == live.key
    assert await context.cookies() == []

    # Upload three files through presign → PUT → finalize; the text file is refused.
    files = tmp_path / "files"
    files.mkdir()
    (files / "alpha.jpg").write_bytes(make_image(96, 64, ".jpg"))
    (files / "beta.png").write_bytes(make_image(80, 80, ".png"))
    (files / "notes.txt").write_text("not an image")
    await _nav(page, "Upload")
    await page.set_input_files(
        "#u-files", [str(files / n) for n in ("alpha.jpg", "beta.png", "notes.txt")]
    )
    uploads = page.locator(".uploads li")
    await expect(uploads).to_have_count(3)
    await expect(page.locator(".uploads li.done")).to_have_count(2)
    refused = page.locator(".uploads li.failed")
    await expect(refused).to_have_count(1)
    await expect(refused).to_contain_text("notes.txt")
    await expect(refused).to_contain_text("text/plain is not supported")
    await expect(page.get_by_text("2 of 3 uploaded, 1 failed")).to_be_visible()
    await _shot(page, "upload", tmp_path)

    # Thumbnails: one GraphQL request for the page, images that really decode.
    await _nav(page, "Library")
    tiles = page.locator(".grid .tile")
    await expect(tiles).to_have_count(2)
    thumbs = page.locator(".grid .tile img")
    await expect(thumbs).to_have_count(2)
    for i in range(2):
        await expect(thumbs.nth(i)).to_have_js_property("complete", True)
        assert await thumbs.nth(i).evaluate("img => img.naturalWidth") > 0
    await _shot(page, "library", tmp_path)

    # Search.
    await page.get_by_label("Search").fill("alph")
    await expect(tiles).to_have_count(1)
    await expect(tiles.first).to_contain_text("alpha.jpg")

    # Rename in the detail panel.
    opener = page.get_by_role("button", name="Open alpha.jpg")
    await opener.click()
    panel = page.get_by_role("dialog")
    await expect(panel).to_be_focused()
    await expect(panel.get_by_label("Name")).to_have_value("alpha.jpg")
    await panel.get_by_label("Name").fill("hero shot")
    await panel.get_by_role("button", name="Save").click()
    await expect(panel.get_by_text("Saved.")).to_be_visible()
    await expect(panel.get_by_role("link", name="Original file")).to_be_visible()
    await _shot(page, "detail", tmp_path)
    await page.keyboard.press("Escape")
    await expect(panel).to_have_count(0)
    await expect(page.get_by_role("button", name="Open hero shot")).to_be_focused()
    await page.get_by_label("Search").fill("")
    await expect(tiles).to_have_count(2)
    await expect(page.get_by_text("hero shot")).to_be_visible()

    # A collection with a parent; put the renamed asset in it; filter the grid by it.
    await _nav(page, "Collections")
    await page.get_by_label("Name").fill("Campaigns")
    await page.get_by_role("button", name="Create collection").click()
    tree = page.get_by_role("list", name="Collections")
    await expect(tree.get_by_role("link", name="Campaigns")).to_be_visible()
    await page.get_by_label("Name").fill("Spring")
    await page.get_by_label("Parent").select_option(label="Campaigns")
    await page.get_by_role("button", name="Create collection").click()
    # Nested under its parent.
    parent_item = tree.get_by_role("listitem").filter(has_text="Campaigns").first
    await expect(parent_item.get_by_role("list").get_by_role("link", name="Spring")).to_be_visible()
    await _shot(page, "collections", tmp_path)

    await _nav(page, "Library")
    await page.get_by_role("button", name="Open hero shot").click()
    panel = page.get_by_role("dialog")
    spring_id = (
        await panel.get_by_label("Collection")
        .locator("option", has_text="Spring")
        .get_attribute("value")
    )
    await panel.get_by_label("Collection").select_option(spring_id)
    await panel.get_by_role("button", name="Save").click()
    await expect(panel.get_by_text("Saved.")).to_be_visible()
    await page.keyboard.press("Escape")
    await _nav(page, "Collections")
    await page.get_by_role("link", name="Spring").click()
    await expect(page.get_by_role("heading", name="Library", level=1)).to_be_visible()
    await expect(tiles).to_have_count(1)
    await expect(tiles.first).to_contain_text("hero shot")
    await page.get_by_label("Collection").select_option("")
    await expect(tiles).to_have_count(2)

    # A preset, then both assets as a ZIP with it.
    await _nav(page, "Export presets")
    await page.get_by_label("Name").fill("small-webp")
    await page.get_by_label("Format").select_option("WEBP")
    await page.get_by_label("Max width (px)").fill("40")
    await page.get_by_role("button", name="Save preset").click()
    await expect(page.get_by_role("rowheader", name="small-webp")).to_be_visible()
    await _shot(page, "presets", tmp_path)
    await _nav(page, "Library")
    await expect(tiles).to_have_count(2)
    for i in range(2):
        await tiles.nth(i).get_by_role("checkbox").check()
    await page.get_by_label("Preset").select_option("small-webp")
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Download ZIP").click()
    download = await waiting.value
    archive = zipfile.ZipFile(io.BytesIO(await asyncio.to_thread(_read, await download.path())))
    assert sorted(archive.namelist()) == ["alpha.webp", "beta.webp"]
    assert all(archive.read(n)[8:12] == b"WEBP" for n in archive.namelist())

    # API keys: create one (shown once, with a copy button), then revoke it.
    await _nav(page, "API keys")
    await page.get_by_label("Name").fill("ci build")
    await page.get_by_role("checkbox", name="write").check()
    await page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("API key")
    await expect(secret).to_be_visible()
    plain = await secret.input_value()
    assert API_KEY.match(plain), plain
    await expect(page.get_by_role("button", name="Copy")).to_be_visible()
    await expect(page.get_by_text("shown only this once")).to_be_visible()
    await _shot(page, "api-keys", tmp_path)
    async with httpx.AsyncClient(base_url=base) as api:
        fresh = await api.get("/api/v1/assets", headers={"Authorization": f"Bearer {plain}"})
    assert fresh.status_code == 200
    await page.get_by_role("button", name="Done, hide it").click()
    assert plain not in await page.content()
    row = page.get_by_role("row").filter(has_text="ci build")
    await expect(row).to_contain_text("active")
    await row.get_by_role("button", name="Revoke ci build").click()
    await row.get_by_role("button", name="Yes, revoke").click()
    await expect(row).to_contain_text("revoked")
    async with httpx.AsyncClient(base_url=base) as api:
        revoked = await api.get("/api/v1/assets", headers={"Authorization": f"Bearer {plain}"})
    assert revoked.status_code == 401

    await _nav(page, "Usage")
    await expect(page.get_by_text("ENTERPRISE", exact=True)).to_be_visible()
    await expect(page.get_by_role("meter")).to_be_visible()
    await _shot(page, "usage", tmp_path)

    # Usable at a phone's width.
    await page.set_viewport_size({"width": 390, "height": 844})
    await _nav(page, "Library")
    await expect(tiles).to_have_count(2)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await _shot(page, "library-phone", tmp_path)

    # Sign out forgets the key.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("API key")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0
    assert await context.cookies() == []
    assert not any(live.key in u or plain in u for u in net.urls)
    assert net.blocked == [] and net.errors == []
    await context.close()


@survives_one_wedge(WEDGED_SECONDS)
async def test_sign_in_shows_the_apis_own_messages(live: LiveServer, browser: Chromium) -> None:
    from playwright.async_api import expect

    net = Offline()
    context, page = await net.open(browser)
    await _sign_in(page, live.base, "ak_live_" + "x" * 40)
    await expect(page.get_by_role("alert")).to_contain_text("invalid or revoked API key")
    # The prefix the keys page shows, and a key with a zero-width space from a chat app:
    # fetch refuses such a header, which the form took for "the server cannot be reached".
    for pasted in (live.key[:12] + "\u2026", live.key[:20] + "\u200b" + live.key[20:]):
        await _sign_in(page, live.base, pasted)
        await expect(page.get_by_role("alert")).to_contain_text("paste the whole key")
    assert await page.evaluate("sessionStorage.length") == 0
    free_org = live.cli("orgs", "create", "--name", "Free org", "--plan", "FREE").strip()
    await _sign_in(page, live.base, live.new_key("read", plan_org=free_org))
    await expect(page.get_by_role("alert")).to_contain_text("upgrade required")
    # A read-only key gets the library, and the keys page says which scope it lacks.
    await _sign_in(page, live.base, live.new_key("read"))
    await expect(page.get_by_role("heading", name="Library", level=1)).to_be_visible()
    await _nav(page, "API keys")
    await expect(page.get_by_role("note")).to_contain_text("admin")
    # Revoked while signed in: the next call signs the tab out, with the API's message.
    await page.get_by_role("button", name="Sign out").click()
    victim = live.new_key("read,write", name="revoked while in use")
    await _sign_in(page, live.base, victim)
    await expect(page.get_by_role("heading", name="Library", level=1)).to_be_visible()
    async with httpx.AsyncClient(base_url=live.base) as api:
        admin = {"Authorization": f"Bearer {live.key}"}
        keys = await api.post("/graphql", json={"query": "{ apiKeys { id name } }"}, headers=admin)
        victim_id = next(
            k["id"] for k in keys.json()["data"]["apiKeys"] if k["name"] == "revoked while in use"
        )
        query = "mutation($id: ID!) { revokeApiKey(id: $id) { id } }"
        revoked = await api.post(
            "/graphql", json={"query": query, "variables": {"id": victim_id}}, headers=admin
        )
    assert revoked.json()["data"]["revokeApiKey"]["id"] == victim_id
    await _nav(page, "Collections")
    await expect(page.get_by_role("alert")).to_contain_text(
        "Signed out: invalid or revoked API key"
    )
    await expect(page.get_by_label("API key")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0
    assert net.blocked == [] and net.errors == []
    await context.close()


@survives_one_wedge(WEDGED_SECONDS)
async def test_keyboard_reaches_sign_in(live: LiveServer, browser: Chromium) -> None:
    from playwright.async_api import expect

    context, page = await Offline().open(browser)
    await page.goto(live.base + "/")
    await expect(page.get_by_label("API key")).to_be_focused()
    await page.keyboard.type(live.key)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Library", level=1)).to_be_focused()
    await page.keyboard.press("Tab")  # from the page's heading to its first control
    await expect(page.get_by_label("Search")).to_be_focused()
    await page.reload()  # still signed in (the tab's sessionStorage); the skip link first
    await expect(page.get_by_role("heading", name="Library", level=1)).to_be_visible()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#main")).to_be_focused()
    await context.close()


@survives_one_wedge(WEDGED_SECONDS)
async def test_graphiql_runs_offline_with_the_tab_header(
    live: LiveServer, browser: Chromium, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    net = Offline()
    context, page = await net.open(browser)
    # No key needed for the page itself.
    page_answer = await page.goto(live.base + "/graphql")
    assert page_answer is not None and page_answer.status == 200
    headers = page.locator(".graphiql-editor-tool .graphiql-editor").last
    await expect(page.locator(".graphiql-container")).to_be_visible()
    await expect(page.get_by_text("ak_live_REPLACE_ME")).to_be_visible()
    # Signed in to the console in this tab: the header template carries that key.
    await page.evaluate(f"sessionStorage.setItem('pixelwand.apiKey', {live.key!r})")
    for k in await page.evaluate("Object.keys(sessionStorage)"):
        if k.startswith("graphiql:"):
            await page.evaluate(f"sessionStorage.removeItem({k!r})")
    await page.reload()
    await page.locator(".graphiql-execute-button").click()
    await expect(page.locator(".graphiql-response")).to_contain_text('"plan": "ENTERPRISE"')
    await _shot(page, "graphiql", tmp_path)
    assert await page.evaluate("localStorage.length") == 0  # the tab only
    assert await context.cookies() == []
    del headers
    assert net.blocked == [] and net.errors == []
    await context.close()


@survives_one_wedge(WEDGED_SECONDS)
async def test_rest_docs_page_renders_offline(
    live: LiveServer, browser: Chromium, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    net = Offline()
    context, page = await net.open(browser)
    answer = await page.goto(live.base + "/api/v1/docs")
    assert answer is not None and answer.status == 200
    # Swagger UI over /api/v1/openapi.json (no key, no validator badge calling out).
    await expect(page.locator(".swagger-ui .info .title")).to_be_visible()
    await expect(page.locator(".opblock").first).to_be_visible()
    await expect(page.get_by_text("/api/v1/assets/{id}").first).to_be_visible()
    await _shot(page, "api-docs", tmp_path)
    assert net.blocked == [] and net.errors == []
    await context.close()


@survives_one_wedge(WEDGED_SECONDS)
async def test_a_team_key_waits_out_429s(
    live: LiveServer, browser: Chromium, tmp_path: Path
) -> None:
    """TEAM: 3 requests a second. Six uploads (two GraphQL calls each, three at a time) run
    into 429s; the console waits as Retry-After says and every file arrives."""
    from playwright.async_api import expect

    net = Offline()
    context, page = await net.open(browser)
    team_org = live.cli("orgs", "create", "--name", "Team org", "--plan", "TEAM").strip()
    refusals: list[str] = []
    page.on("response", lambda r: r.status == 429 and refusals.append(r.url))
    team_key = live.new_key("read,write", plan_org=team_org)
    await _sign_in(page, live.base, team_key)
    await expect(page.get_by_role("heading", name="Library", level=1)).to_be_visible()
    files = []
    for i in range(6):
        f = tmp_path / f"team{i}.png"
        f.write_bytes(make_image(30 + i, 20, ".png"))
        files.append(str(f))
    await _nav(page, "Upload")
    # Spend the key's allowance first, so the console's first calls are surely refused.
    async with httpx.AsyncClient(base_url=live.base) as api:
        auth = {"Authorization": f"Bearer {team_key}"}
        drained = await asyncio.gather(*(api.get("/api/v1/assets", headers=auth) for _ in range(8)))
    assert 429 in {r.status_code for r in drained}
    await page.set_input_files("#u-files", files)
    await expect(page.locator(".uploads li.done")).to_have_count(6, timeout=60_000)
    await expect(page.locator(".uploads li.failed")).to_have_count(0)
    assert refusals, "the console's first calls met the spent allowance"
    await _nav(page, "Library")
    await expect(page.locator(".grid .tile img")).to_have_count(6)
    assert net.blocked == [] and net.errors == []
    await context.close()


def _seed(live: LiveServer, key: str, folder: Path, count: int, *, video: bool = False) -> None:
    """`count` distinct images (and a video: its thumbnail is its poster) uploaded with the
    command-line client (faster than the page)."""
    folder.mkdir()
    for i in range(count):
        (folder / f"seed{i:02d}.png").write_bytes(make_image(40 + i, 30, ".png"))
    if video:
        (folder / "clip.mp4").write_bytes(make_mp4(1.0, 160, 120))
    live.cli("upload", str(folder), "--url", live.base, "--api-key", key, "--json")


def _is_listing(body: str | None) -> bool:
    return body is not None and "assets(" in body and "Library" in body


@survives_one_wedge(WEDGED_SECONDS)
async def test_a_page_of_thumbnails_is_one_request(
    live: LiveServer, browser: Chromium, tmp_path: Path
) -> None:
    """More assets than a page (13 images, a video): each page is one GraphQL request with
    its thumbnails, within the server's query cost limit (a render costs 4,000 of 50,000),
    and every thumbnail decodes, the video's poster included. A server with a lower limit
    (QUERY_TOO_COMPLEX over 4 renders, here) still gets every thumbnail, in smaller
    requests."""
    from playwright.async_api import expect

    _, key = live.org_and_key("ENTERPRISE", "read,write,admin")
    _seed(live, key, tmp_path / "seed", 13, video=True)
    net = Offline()
    context, page = await net.open(browser, viewport={"width": 1280, "height": 800})
    refused: list[str] = []
    page.on("response", lambda r: r.status >= 400 and refused.append(f"{r.status} {r.url}"))
    await _sign_in(page, live.base, key)
    tiles = page.locator(".grid .tile")
    thumbs = page.locator(".grid .tile img")
    await expect(page.get_by_text("14 assets, newest first")).to_be_visible()
    await expect(thumbs).to_have_count(await tiles.count())
    first = await tiles.count()
    assert 10 <= first < 14
    for i in range(await thumbs.count()):
        await expect(thumbs.nth(i)).to_have_js_property("complete", True)
        assert await thumbs.nth(i).evaluate("img => img.naturalWidth") > 0
    sent = [body for _, url, body in net.requests if url.endswith("/graphql")]
    assert sum(_is_listing(body) for body in sent) == 1
    # From the sign-in to a page of thumbnails: who the key is (with what the server
    # offers), the collections and presets for the filters, the page. A TEAM key has 3.
    assert len(sent) == 3, sent
    before = len(net.requests)
    await page.get_by_role("button", name="Next").click()
    await expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    await expect(tiles).to_have_count(14 - first)
    await expect(thumbs).to_have_count(14 - first)
    for i in range(14 - first):
        await expect(thumbs.nth(i)).to_have_js_property("complete", True)
        assert await thumbs.nth(i).evaluate("img => img.naturalWidth") > 0
    graphql = [body for _, url, body in net.requests[before:] if url.endswith("/graphql")]
    assert len(graphql) == 1 and _is_listing(graphql[0])
    assert refused == []

    def renders(body: str | None) -> int:
        sent = json.loads(body or "{}")
        each = sent.get("query", "").count("rendition(")
        return each * (sent["variables"]["pageSize"] if _is_listing(body) else 1)

    async def strict(route: Any) -> None:  # a server whose limit is 4 renders a request
        if route.request.method == "POST" and renders(route.request.post_data) > 4:
            error = {"message": "over the limit", "extensions": {"code": "QUERY_TOO_COMPLEX"}}
            await route.fulfill(status=400, json={"errors": [error]})
        else:
            await route.fallback()

    await page.route("**/graphql", strict)
    split_from = len(net.requests)
    await page.get_by_role("button", name="Previous").click()
    await expect(page.get_by_text("Page 1 of 2")).to_be_visible()
    await expect(thumbs).to_have_count(await tiles.count())
    for i in range(await thumbs.count()):
        await expect(thumbs.nth(i)).to_have_js_property("complete", True)
        assert await thumbs.nth(i).evaluate("img => img.naturalWidth") > 0
    smaller = [b for _, _, b in net.requests[split_from:] if 0 < renders(b) <= 4]
    assert len(smaller) >= 3  # 12 thumbnails: 6 + 6 refused, then 3 + 3 + 3 + 3
    assert net.blocked == [] and net.errors == []
    await context.close()


@survives_one_wedge(WEDGED_SECONDS)
async def test_each_scope_signs_in_and_each_page_says_what_it_lacks(
    live: LiveServer, browser: Chromium, tmp_path: Path
) -> None:
    """Each scope grants only itself, `viewer` included (read). A write-only key (uploads)
    and an admin-only key (key management) sign in too; every page either works or names
    the scope it needs."""
    from playwright.async_api import expect

    org, admin = live.org_and_key("ENTERPRISE", "read,write,admin")
    _seed(live, admin, tmp_path / "seed", 1)
    net = Offline()
    context, page = await net.open(browser)

    writer = live.new_key("write", plan_org=org)
    await _sign_in(page, live.base, writer)
    await expect(page.get_by_role("note")).to_contain_text("Browsing the library needs")
    await expect(page.get_by_role("note")).to_contain_text("read")
    await _nav(page, "Upload")
    (tmp_path / "w.png").write_bytes(make_image(33, 22, ".png"))
    await page.set_input_files("#u-files", [str(tmp_path / "w.png")])
    await expect(page.locator(".uploads li.done")).to_have_count(1)
    for name, lacking in (("Collections", "Listing collections"), ("Export presets", "Listing")):
        await _nav(page, name)
        await expect(page.get_by_role("note")).to_contain_text(lacking)
    await _nav(page, "API keys")
    await expect(page.get_by_role("note")).to_contain_text("admin")
    await _nav(page, "Usage")
    await expect(page.get_by_role("note")).to_contain_text("read")
    await expect(page.get_by_role("banner")).to_contain_text("A key with the write scope")
    await page.reload()  # still signed in, still told apart
    await expect(page.get_by_role("banner")).to_contain_text("A key with the write scope")
    await page.get_by_role("button", name="Sign out").click()

    manager = live.new_key("admin", plan_org=org, name="keys only")
    await _sign_in(page, live.base, manager)
    await expect(page.get_by_role("note")).to_contain_text("read")
    await _nav(page, "Upload")
    await expect(page.get_by_role("note")).to_contain_text("Uploading needs")
    await _nav(page, "API keys")
    await expect(page.get_by_role("row").filter(has_text="keys only")).to_contain_text("active")
    await expect(page.get_by_role("banner")).to_contain_text("A key with the admin scope")
    await page.get_by_role("button", name="Sign out").click()
    both = live.new_key("write,admin", plan_org=org, name="writes and manages")
    await _sign_in(page, live.base, both)
    await expect(page.get_by_role("banner")).to_contain_text("A key with the write, admin scopes")
    await _nav(page, "Upload")
    await expect(page.get_by_label("Tags for these uploads")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()

    reader = live.new_key("read", plan_org=org)
    await _sign_in(page, live.base, reader)
    await expect(page.locator(".grid .tile")).to_have_count(2)
    await page.locator(".grid .tile .thumb").first.click()
    panel = page.get_by_role("dialog")
    await expect(panel.get_by_role("link", name="Original file")).to_be_visible()
    await expect(panel.get_by_role("note")).to_contain_text("write")
    await expect(panel.get_by_role("button", name="Save")).to_have_count(0)
    await expect(panel.get_by_role("button", name="Delete asset…")).to_have_count(0)
    assert net.blocked == [] and net.errors == []
    await context.close()


PAGES = ("Library", "Upload", "Collections", "Export presets", "API keys", "Usage")


async def _axe(page: Any) -> list[str]:
    """axe-core's violations on the page as it is: rule, and the first elements."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes'][:3]]}"
        for v in results.response["violations"]
    ]


async def _focused(page: Any) -> str:
    return str(
        await page.evaluate(
            "(() => { const e = document.activeElement;"
            " return (e.closest('[role=dialog]') ? 'dialog ' : '') + e.tagName; })()"
        )
    )


@survives_one_wedge(WEDGED_SECONDS)
async def test_every_page_passes_axe_works_by_keyboard_and_fits_a_phone(
    live: LiveServer, browser: Chromium, tmp_path: Path
) -> None:
    """axe-core finds no violation on any page, the detail panel or the upload list; the
    panel keeps Tab inside it; focus is never dropped on the page's body (a deleted asset,
    a hidden secret); the hidden file input shows its focus; at 375 px nothing scrolls
    sideways on any page."""
    from playwright.async_api import expect

    _, key = live.org_and_key("ENTERPRISE", "read,write,admin")
    _seed(live, key, tmp_path / "seed", 3)
    async with httpx.AsyncClient(base_url=live.base) as api:
        preset = {"name": "a-preset-with-a-long-name", "format": "WEBP", "maxWidth": 200}
        made = await api.post(
            "/api/v1/export-presets", json=preset, headers={"Authorization": f"Bearer {key}"}
        )
    assert made.status_code in (200, 201), made.text
    net = Offline()
    context, page = await net.open(browser, viewport={"width": 1280, "height": 800})
    try:
        await _sign_in(page, live.base, key)
        await expect(page.locator(".grid .tile img")).to_have_count(3)
        violations: dict[str, list[str]] = {}
        for name in PAGES:
            await _nav(page, name)
            await expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
            await expect(page.get_by_text("Loading…")).to_have_count(0)
            violations[name] = await _axe(page)

        await _nav(page, "Upload")
        (tmp_path / "notes.txt").write_text("not an image")
        await page.set_input_files("#u-files", [str(tmp_path / "notes.txt")])
        await expect(page.locator(".uploads li.failed")).to_have_count(1)
        violations["upload list"] = await _axe(page)
        # The file input is visually hidden: keyboard focus shows on its label.
        await page.get_by_label("Into collection").focus()
        await page.keyboard.press("Tab")
        await expect(page.locator("#u-files")).to_be_focused()
        outline = await page.locator("label[for=u-files]").evaluate(
            "e => getComputedStyle(e).outlineStyle"
        )
        assert outline not in ("", "none")

        await _nav(page, "Library")
        await expect(page.locator(".grid .tile img")).to_have_count(3)
        await page.locator(".grid .tile .thumb").first.focus()
        await page.keyboard.press("Enter")
        panel = page.get_by_role("dialog")
        await expect(panel.get_by_role("button", name="Delete asset…")).to_be_visible()
        violations["detail panel"] = await _axe(page)
        assert violations == {k: [] for k in violations}
        controls = await panel.locator("a[href], button, input, select").count()
        for _ in range(controls + 2):  # past the last control: back to the first, not the page
            await page.keyboard.press("Tab")
            assert await _focused(page) != "BODY" and (await _focused(page)).startswith("dialog")
        await page.keyboard.press("Shift+Tab")
        assert (await _focused(page)).startswith("dialog")
        await panel.get_by_role("button", name="Delete asset…").focus()
        await page.keyboard.press("Enter")
        await panel.get_by_role("button", name="Yes, delete").focus()
        await page.keyboard.press("Enter")
        await expect(panel).to_have_count(0)
        await expect(page.locator(".grid .tile")).to_have_count(2)
        await expect(page.get_by_role("heading", name="Library", level=1)).to_be_focused()

        await _nav(page, "API keys")
        await page.get_by_role("button", name="Create key").click()
        await page.get_by_role("button", name="Done, hide it").click()
        await expect(page.get_by_role("heading", name=re.compile("^Keys of"))).to_be_focused()

        await page.set_viewport_size({"width": 375, "height": 740})
        wide: dict[str, int] = {}
        for name in PAGES:
            await _nav(page, name)
            await expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
            await expect(page.get_by_text("Loading…")).to_have_count(0)
            wide[name] = await page.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert wide == {name: 0 for name in PAGES}
        assert net.blocked == [] and net.errors == []
    finally:
        await context.close()


@survives_one_wedge(WEDGED_SECONDS)
async def test_a_preset_is_kept_whole_when_edited_and_zipped(
    live: LiveServer, browser: Chromium, tmp_path: Path
) -> None:
    """Saving a preset replaces all of it: editing one in the console keeps the settings the
    form does not show (AUTO's candidates), and a ZIP with it is that preset — here a crop
    with gravity `attention`, which keeps the off-centre red subject a centre crop cuts."""
    from playwright.async_api import expect

    _, key = live.org_and_key("ENTERPRISE", "read,write,admin")
    folder = tmp_path / "subject"
    folder.mkdir()
    (folder / "subject.png").write_bytes(subject_image(400, 100, 0.9, 0.5, ".png"))
    live.cli("upload", str(folder), "--url", live.base, "--api-key", key, "--json")
    auth = {"Authorization": f"Bearer {key}"}
    preset = {
        "name": "smart",
        "format": "AUTO",
        "formats": ["WEBP", "JPEG"],
        "perceptual": "auto:high",
        "maxWidth": 60,
        "maxHeight": 60,
        "preserveAspect": False,
        "gravity": "attention",
    }
    async with httpx.AsyncClient(base_url=live.base, headers=auth) as api:
        assert (await api.post("/api/v1/export-presets", json=preset)).status_code == 201

    net = Offline()
    context, page = await net.open(browser, viewport={"width": 1280, "height": 800})
    await _sign_in(page, live.base, key)
    await _nav(page, "Export presets")
    await page.get_by_role("button", name="Edit smart").click()
    await expect(page.get_by_label("Crop keeps (gravity)")).to_have_value("attention")
    await page.get_by_label("Max width (px)").fill("64")
    await page.get_by_label("Max height (px)").fill("64")
    await page.get_by_role("button", name="Save preset").click()
    await expect(page.get_by_text("Updated “smart”.")).to_be_visible()
    async with httpx.AsyncClient(base_url=live.base, headers=auth) as api:
        (saved,) = (await api.get("/api/v1/export-presets")).json()["presets"]
        asset = (await api.get("/api/v1/assets")).json()["items"][0]
        centre = await api.get(
            f"/api/v1/assets/{asset['id']}/export-url",
            params={"format": "PNG", "maxWidth": 64, "maxHeight": 64, "preserveAspect": "false"},
        )
        cut = (await api.get(centre.json()["url"])).content
    assert {k: saved[k] for k in preset} == {**preset, "maxWidth": 64, "maxHeight": 64}

    await _nav(page, "Library")
    await page.locator(".grid .tile").first.get_by_role("checkbox").check()
    await page.get_by_label("Preset").select_option("smart")
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Download ZIP").click()
    download = await waiting.value
    archive = zipfile.ZipFile(io.BytesIO(await asyncio.to_thread(_read, await download.path())))
    (entry,) = archive.namelist()
    assert redness(archive.read(entry)) > redness(cut) + 5
    assert net.blocked == [] and net.errors == []
    await context.close()


@survives_one_wedge(WEDGED_SECONDS)
async def test_deleting_the_last_asset_of_a_page(
    live: LiveServer, browser: Chromium, tmp_path: Path
) -> None:
    """13 assets, 12 a page: page 2 holds one. A search typed and erased leaves the filters
    as they were, so the list stays on page 2 (it went back to page 1 when the search box
    fell idle, as it did after any Next clicked within 0.3 s of the list). Ticked and deleted, that
    asset leaves page 2 empty: the library steps back to page 1 (before: "No assets here
    yet" under "12 assets", with no pager to leave it) and the selection drops it (before:
    "1 selected", a ZIP of a deleted asset)."""
    from playwright.async_api import expect

    _, key = live.org_and_key("ENTERPRISE", "read,write,admin")
    _seed(live, key, tmp_path / "seed", 13)
    net = Offline()
    context, page = await net.open(browser, viewport={"width": 1280, "height": 800})
    await page.clock.install()  # timers still run; run_for moves them on at once
    await _sign_in(page, live.base, key)
    tiles = page.locator(".grid .tile")
    await expect(page.get_by_text("13 assets, newest first")).to_be_visible()
    await page.get_by_role("button", name="Next").click()
    await expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    await expect(tiles).to_have_count(1)
    await page.get_by_label("Search").fill("s")
    await page.get_by_label("Search").fill("")
    await page.clock.run_for(1000)  # the search box's idle moment, on the page's own clock
    await expect(page.get_by_role("button", name="Previous")).to_be_enabled()
    await expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    await tiles.first.get_by_role("checkbox").check()
    await expect(page.get_by_text("1 selected")).to_be_visible()
    await tiles.first.locator("button.thumb").click()
    await page.get_by_role("button", name="Delete").click()
    await page.get_by_role("button", name="Yes, delete").click()
    await expect(page.get_by_text("12 assets, newest first")).to_be_visible()
    await expect(tiles).to_have_count(12)
    await expect(page.get_by_text("No assets here yet")).to_have_count(0)
    await expect(page.get_by_text("Tick assets to download them as a ZIP.")).to_be_visible()
    assert net.blocked == [] and net.errors == []
    await context.close()


@survives_one_wedge(WEDGED_SECONDS)
async def test_an_auto_preset_can_become_a_fixed_format(
    live: LiveServer, browser: Chromium
) -> None:
    """Editing an AUTO preset (with its candidate list) into WEBP: the form carried the
    candidates over whatever the format, and the API refused ("formats needs format AUTO"),
    so an AUTO preset could never change format in the console."""
    from playwright.async_api import expect

    _, key = live.org_and_key("ENTERPRISE", "read,write")
    auth = {"Authorization": f"Bearer {key}"}
    preset = {"name": "flex", "format": "AUTO", "formats": ["WEBP", "JPEG"]}
    async with httpx.AsyncClient(base_url=live.base, headers=auth) as api:
        assert (await api.post("/api/v1/export-presets", json=preset)).status_code == 201
    net = Offline()
    context, page = await net.open(browser, viewport={"width": 1280, "height": 800})
    await _sign_in(page, live.base, key)
    await _nav(page, "Export presets")
    await page.get_by_role("button", name="Edit flex").click()
    await expect(page.get_by_text("AUTO picks among WEBP, JPEG (kept).")).to_be_visible()
    await page.get_by_label("Format").select_option("WEBP")
    await expect(page.get_by_text("AUTO picks among")).to_have_count(0)
    await page.locator("#p-quality").fill("70")
    await page.get_by_role("button", name="Save preset").click()
    await expect(page.get_by_text("Updated “flex”.")).to_be_visible()
    async with httpx.AsyncClient(base_url=live.base, headers=auth) as api:
        (saved,) = (await api.get("/api/v1/export-presets")).json()["presets"]
    assert (saved["format"], saved["quality"], saved["formats"]) == ("WEBP", 70, None)
    assert net.blocked == [] and net.errors == []
    await context.close()


@survives_one_wedge(WEDGED_SECONDS)
async def test_long_names_fit_a_phone(live: LiveServer, browser: Chromium, tmp_path: Path) -> None:
    """Names at the API's limits, without a space to break at, at 375 px: no page scrolls
    sideways (a 200-character collection name made the collection <select>s, and so the
    Library, Upload and Collections pages, 2,141 px wide) and a tile's checkbox keeps its
    size beside a 254-character asset name (it was squeezed to a dot)."""
    from playwright.async_api import expect

    _, key = live.org_and_key("ENTERPRISE", "read,write,admin")
    _seed(live, key, tmp_path / "seed", 1)
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=live.base, headers=auth) as api:
        (asset,) = (await api.get("/api/v1/assets")).json()["items"]
        tags = [f"{'t' * 60}{i}" for i in range(40)]
        changed = {"name": "n" * 250 + ".png", "tags": tags}
        assert (await api.patch(f"/api/v1/assets/{asset['id']}", json=changed)).status_code == 200
        parent = (await api.post("/api/v1/collections", json={"name": "c" * 200})).json()
        child = {"name": "d" * 200, "parentId": parent["id"]}
        assert (await api.post("/api/v1/collections", json=child)).status_code == 201
        preset = {"name": "p" * 100, "format": "PNG"}
        assert (await api.post("/api/v1/export-presets", json=preset)).status_code == 201
    net = Offline()
    context, page = await net.open(browser, viewport={"width": 375, "height": 700})
    await _sign_in(page, live.base, key)
    await expect(page.get_by_text("1 asset, newest first")).to_be_visible()
    box = await page.locator(".grid .tile").first.get_by_role("checkbox").bounding_box()
    assert box is not None and box["width"] >= 12
    wide = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    await page.locator(".grid .tile").first.get_by_role("checkbox").check()
    assert await page.evaluate(wide) == 0, "Library"
    await page.locator(".grid .tile button.thumb").first.click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    assert await page.evaluate(wide) == 0, "detail panel"
    # Escape is heard once the panel has taken focus (its effect runs after the paint that
    # makes it visible: a CI run pressed it before, and the open panel hid the nav after).
    await expect(page.get_by_role("dialog")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_have_count(0)
    shown = {  # what each page shows once its data is in
        "Upload": page.get_by_role("option", name="c" * 200),
        "Collections": page.get_by_role("link", name="d" * 200),
        "Export presets": page.get_by_role("cell", name="p" * 100),
        "API keys": page.get_by_role("cell", name="read, write, admin"),
        "Usage": page.get_by_text("ENTERPRISE", exact=True),
    }
    for name, loaded in shown.items():
        await _nav(page, name)
        await expect(loaded.first).to_be_attached()
        assert await page.evaluate(wide) == 0, name
    assert net.blocked == [] and net.errors == []
    await context.close()
