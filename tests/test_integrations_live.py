"""Webhooks, metrics and logs of `pixelwand serve --workers 2`, over TCP, on SQLite and on
PostgreSQL: queued events survive a kill -9 of every process, go out once at a time,
/metrics adds up both workers, and JSON log lines name each request's id."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest

from tests.conftest import fresh_database
from tests.support.live_server import LiveServer
from tests.support.receiver import Receiver, running_receiver

pytestmark = pytest.mark.slow

API_KEY = re.compile(r"^ak_live_[A-Za-z0-9]{32,}$")
TOKEN = "live-metrics-token"
EVENTS = 20


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture(scope="module")
async def live_postgres_url(postgres_url: str) -> AsyncIterator[str]:
    async with fresh_database(postgres_url, "pixelwand_live") as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request, tmp_path_factory) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path_factory.mktemp('live')}/pixelwand.db"
    return request.getfixturevalue("live_postgres_url")


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("serve")
    env = {
        "PIXELWAND_DATABASE_URL": database_url,
        "PIXELWAND_STORAGE_URL": f"local:{tmp}/storage",
        "PIXELWAND_DATA_DIR": str(tmp / "data"),
        "PIXELWAND_SECRET_KEY": f"live-{uuid.uuid4().hex}",
        "PIXELWAND_SWEEP_INTERVAL_SECONDS": "0",
        "PIXELWAND_LOG_FORMAT": "json",
        "PIXELWAND_ACCESS_LOG": "1",
        "PIXELWAND_METRICS_TOKEN": TOKEN,
        "PIXELWAND_WEBHOOK_ALLOW_PRIVATE": "1",
        "PIXELWAND_WEBHOOK_POLL_SECONDS": "0.2",
        "PIXELWAND_WEBHOOK_RETRY_BASE_SECONDS": "0.5",
        "PIXELWAND_WEBHOOK_TIMEOUT_SECONDS": "2",
    }
    with LiveServer(env, tmp, workers=2) as srv:
        yield srv


@pytest.fixture(scope="module")
def admin_key(server: LiveServer) -> str:
    # JSON logging applies to log records; the first-start key is printed on stdout.
    keys = [line.strip() for line in server.output().splitlines() if API_KEY.match(line.strip())]
    assert len(keys) == 1, server.output()
    return keys[0]


async def test_queued_events_survive_kill_9_and_go_out_once_at_a_time(
    server: LiveServer, admin_key: str, receiver: Receiver
) -> None:
    auth = {"Authorization": f"Bearer {admin_key}"}
    path = f"/live/{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=server.base, timeout=30, headers=auth) as http:
        r = await http.post(
            "/api/v1/webhooks",
            json={"url": receiver.url(path), "events": ["collection.created"]},
        )
        assert r.status_code == 201, r.text
        receiver.release.clear()
        receiver.hold.set()  # deliveries hang: every event is still queued at the kill
        for i in range(EVENTS):
            r = await http.post("/api/v1/collections", json={"name": f"c{i}"})
            assert r.status_code == 201, r.text
        await receiver.wait_for(path, 1)
    server.kill()
    killed_at = time.monotonic()
    receiver.hold.clear()
    receiver.release.set()
    server.start()
    received = await receiver.wait_for(path, EVENTS, within=90)
    # A request torn by the kill (its body cut short) is no delivery.
    while len({g.headers["pixelwand-event-id"] for g in receiver.on(path) if g.complete}) < EVENTS:
        await asyncio.sleep(0.1)
        assert time.monotonic() - killed_at < 120, "events lost after kill -9"
    received = [g for g in receiver.on(path) if g.complete]
    ids = {g.headers["pixelwand-event-id"] for g in received}
    assert len(ids) == EVENTS
    bodies = {orjson.loads(g.body)["data"]["name"] for g in received}
    assert bodies == {f"c{i}" for i in range(EVENTS)}
    # After the restart, no event is ever in flight twice at once (two workers poll).
    spans = defaultdict(list)
    for g in received:
        if g.started > killed_at:
            spans[g.headers["pixelwand-event-id"]].append((g.started, g.finished or 1e18))
    for event_id, intervals in spans.items():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert start >= end, f"{event_id} was delivered twice at once"


async def test_metrics_add_up_both_workers(server: LiveServer, admin_key: str) -> None:
    auth = {"Authorization": f"Bearer {admin_key}"}
    n = 30
    for _ in range(n):  # a connection each: the kernel spreads them over the workers
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            assert (await http.get("/api/v1/export-presets", headers=auth)).status_code == 200
    totals = set()
    for _ in range(6):  # scrapes answered by either worker agree
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            r = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        line = next(
            line
            for line in r.text.splitlines()
            if line.startswith("http_server_request_duration_seconds_count{")
            and 'http_route="/api/v1/export-presets"' in line
        )
        totals.add(float(line.rsplit(" ", 1)[1]))
    assert totals == {float(n)}


async def test_json_log_lines_name_the_request(server: LiveServer, admin_key: str) -> None:
    rid = f"live-{uuid.uuid4().hex[:12]}"
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        r = await http.get(
            "/api/v1/assets",
            headers={"Authorization": f"Bearer {admin_key}", "X-Request-Id": rid},
        )
    assert r.headers["x-request-id"] == rid
    for _ in range(50):
        lines = [ln for ln in server.output().splitlines() if rid in ln]
        if lines:
            break
        await asyncio.sleep(0.1)
    [line] = lines
    entry = orjson.loads(line)
    assert entry["request_id"] == rid and entry["route"] == "/api/v1/assets"
    assert entry["status"] == 200 and entry["duration_ms"] >= 0
    assert entry["key"] == admin_key[:12] and entry["org_id"].startswith("c")
    assert entry["level"] == "INFO" and entry["time"].endswith("Z")
    assert admin_key not in server.output().replace(admin_key, "", 1)  # printed once only


async def test_renders_leave_libvips_chatter_out_of_the_log(
    server: LiveServer, admin_key: str
) -> None:
    """libvips narrates every render at INFO ("VIPS: thumbnailing source"): not logged."""
    from tests.helpers import make_image

    auth = {"Authorization": f"Bearer {admin_key}"}
    data = make_image(64, 48, ".png")
    declared = {"originalName": "chatter.png", "mimeType": "image/png", "size": len(data)}
    async with httpx.AsyncClient(base_url=server.base, timeout=30, headers=auth) as http:
        ticket = (await http.post("/api/v1/assets", json={"mode": "presign", **declared})).json()
        put = await http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
        assert put.status_code in (200, 201, 204)
        body = {"mode": "finalize", **declared, "storageKey": ticket["storageKey"]}
        asset = (await http.post("/api/v1/assets", json=body)).json()
        r = await http.get(f"/api/v1/assets/{asset['id']}/export-url?format=WEBP&maxWidth=32")
        assert r.status_code == 200, r.text
        assert (await http.get(r.json()["url"])).status_code == 200
    assert "VIPS:" not in server.output()


async def test_every_line_of_a_json_server_is_json(server: LiveServer, admin_key: str) -> None:
    """With PIXELWAND_LOG_FORMAT=json a log shipper reading the server's output (stdout and
    stderr, as a container runtime collects them) parses every line, the start-up ones
    included; only the first-start key, shown once to the operator, is plain text."""
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        await http.get("/api/v1/assets/%0A%22%7D", headers={"X-Request-Id": 'q"}\\'})
    first_start = ("First start: ", "Admin API key (shown once", admin_key)
    for line in server.output().splitlines():
        if line.startswith(first_start):
            continue
        assert isinstance(orjson.loads(line), dict), line
