"""The public pages (DESIGN.md "Public pages"): the console, its static files, GraphiQL and
the REST docs page need no key and are not rate-limited; what they call does."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Tenant

HTML = {"Accept": "text/html,application/xhtml+xml"}
PAGES = ["/", "/graphql", "/api/v1/docs"]


async def test_pages_need_no_key(http: httpx.AsyncClient) -> None:
    for path in PAGES:
        r = await http.get(path, headers=HTML)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"].startswith("text/html")
        assert "ratelimit-limit" not in r.headers
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        # Everything the page loads comes from this origin: no CDN.
        for src in re.findall(r'(?:src|href)="([^"]+)"', r.text):
            assert src.startswith("/"), (path, src)


async def test_the_pages_scripts_are_served(http: httpx.AsyncClient) -> None:
    page = (await http.get("/", headers=HTML)).text
    graphiql = (await http.get("/graphql", headers=HTML)).text
    docs = (await http.get("/api/v1/docs")).text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page + graphiql + docs)
    assert len(assets) >= 8
    for path in assets:
        r = await http.get(path)
        assert r.status_code == 200, path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert len(r.content) > 100
    module = await http.get("/static/console/app.js")
    assert module.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert (await http.get("/static/console/nope.js")).status_code == 404
    assert (await http.get("/static/../pixelwand/app.py")).status_code == 404


async def test_pages_do_not_spend_the_keys_allowance(make_tenant) -> None:
    team: Tenant = await make_tenant("TEAM")  # 3 requests/second
    for _ in range(3):
        for path in PAGES:
            r = await team.get(path, headers=HTML)
            assert r.status_code == 200 and "ratelimit-limit" not in r.headers
    # The API itself is still gated: its first call has the whole burst left.
    r = await team.get("/api/v1/assets")
    assert r.status_code == 200
    assert r.headers["ratelimit-remaining"] == "2"


async def test_what_the_pages_call_needs_a_key(http: httpx.AsyncClient) -> None:
    r = await http.post("/graphql", json={"query": "{ viewer { plan } }"})
    assert r.status_code == 401
    assert (await http.get("/api/v1/assets")).status_code == 401
    # Only the documented page is public, not its neighbours.
    assert (await http.get("/api/v1/docs/x")).status_code == 401


async def test_a_page_typed_with_a_trailing_slash_needs_no_key(http: httpx.AsyncClient) -> None:
    """`/api/v1/docs/` as a new user types it: redirected to the page, as `/graphql/` is
    (it answered 401 "missing API key", the slash-less page being public)."""
    for path in ("/api/v1/docs/", "/api/v1/openapi.json/", "/graphql/"):
        r = await http.get(path, headers=HTML)
        assert r.status_code == 307, (path, r.status_code, r.text)
        assert r.headers["location"].endswith(path.rstrip("/"))
        page = await http.get(path.rstrip("/"), headers=HTML)
        assert page.status_code == 200
    # Only those: other paths under the API with a slash still need a key.
    assert (await http.get("/api/v1/assets/", headers=HTML)).status_code == 401
