"""Soak: minutes of mixed load against a live server, one key among them abusive.

    .venv/bin/python bench/soak.py [--minutes 3]        (make soak; not run in CI)

A live server (`pixelwand serve`, SQLite + local disk, in a temporary directory). Three
well-behaved organizations run lists (REST and GraphQL), uploads (presign → PUT →
finalize), export-url renders (new parameters each time, so they render) and ZIP exports,
each at a steady pace. A fourth key sends, in turn: the issue's costly GraphQL queries,
a 20 MiB JSON body, a 60,000-character filter, an export of a 10,000,000 x 10 RGBA16 PNG,
malformed JSON and a document of 5,000 tokens. Every 5 s the server's RSS is sampled.

Prints the other tenants' p50/p99 per kind of request, every status the abuser got, error
counts (5xx for anyone, any failure for the tenants) and the RSS slope (least squares over
the run's second half, MiB per minute).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.live import LiveServer, live_server, percentile
from tests.helpers import make_image
from tests.imaging.hostile_media import png_shape

COSTLY = (
    "{ assets { items { collection { assets { collection { assets { collection "
    "{ assets { id } } } } } } } } }"
)


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.statuses: dict[str, collections.Counter[int]] = collections.defaultdict(
            collections.Counter
        )
        self.failures: list[str] = []

    def record(self, kind: str, started: float, r: httpx.Response, ok: tuple[int, ...]) -> None:
        self.latency[kind].append((time.perf_counter() - started) * 1000)
        self.statuses[kind][r.status_code] += 1
        if r.status_code not in ok:
            self.failures.append(f"{kind}: {r.status_code} {r.text[:120]}")


async def upload(http: httpx.AsyncClient, data: bytes, name: str, stats: Stats) -> str | None:
    t0 = time.perf_counter()
    body = {"originalName": name, "mimeType": "image/jpeg", "size": len(data)}
    r = await http.post("/api/v1/assets", json={"mode": "presign", **body})
    if r.status_code != 200:
        stats.record("upload", t0, r, (200,))
        return None
    ticket = r.json()
    put = await http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    if put.status_code != 200:
        stats.record("upload", t0, put, (200,))
        return None
    r = await http.post(
        "/api/v1/assets",
        json={"mode": "finalize", "storageKey": ticket["storageKey"], **body},
    )
    stats.record("upload", t0, r, (201,))
    return r.json()["id"] if r.status_code == 201 else None


async def tenant(base: str, key: str, until: float, stats: Stats, seed: int) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        ids: list[str] = []
        for i in range(3):
            if asset := await upload(http, make_image(1600, 1200), f"seed-{i}.jpg", stats):
                ids.append(asset)
        n = 0
        while time.perf_counter() < until:
            n += 1
            t0 = time.perf_counter()
            kind = rng.choice(("list", "list", "graphql-list", "render", "upload", "zip"))
            if kind == "list":
                r = await http.get("/api/v1/assets", params={"pageSize": "50"})
                stats.record(kind, t0, r, (200,))
            elif kind == "graphql-list":
                q = "{ assets(pageSize: 20) { items { id name collection { id } } } viewer { plan } }"  # noqa: E501
                r = await http.post("/graphql", json={"query": q})
                stats.record(kind, t0, r, (200,))
            elif kind == "render" and ids:
                params = {"format": rng.choice(("WEBP", "JPEG")), "maxWidth": str(200 + n % 600)}
                r = await http.get(f"/api/v1/assets/{rng.choice(ids)}/export-url", params=params)
                stats.record(kind, t0, r, (200,))
            elif kind == "upload":
                w = rng.randrange(400, 1400)
                if asset := await upload(http, make_image(w, w * 3 // 4), f"u{n}.jpg", stats):
                    ids.append(asset)
            elif kind == "zip" and ids:
                pick = rng.sample(ids, min(5, len(ids)))
                r = await http.post(
                    "/api/v1/exports",
                    json={"assetIds": pick, "config": {"format": "webp", "maxWidth": 640}},
                )
                stats.record(kind, t0, r, (200,))
            await asyncio.sleep(rng.uniform(0.05, 0.25))


async def abuser(base: str, key: str, until: float, stats: Stats) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        wide = png_shape(10_000_000, 10, 16, 6)
        ticket = (
            await http.post(
                "/api/v1/assets",
                json={
                    "mode": "presign",
                    "originalName": "wide.png",
                    "mimeType": "image/png",
                    "size": len(wide),
                },
            )
        ).json()
        await http.put(ticket["uploadUrl"], content=wide, headers=ticket["headers"])
        r = await http.post(
            "/api/v1/assets",
            json={
                "mode": "finalize",
                "originalName": "wide.png",
                "mimeType": "image/png",
                "size": len(wide),
                "storageKey": ticket["storageKey"],
            },
        )
        wide_id = r.json().get("id", "c000000000000000000000000")
        big_body = b'{"name": "' + b"x" * (20 * 1024 * 1024) + b'"}'
        attacks: list[tuple[str, Any]] = [
            ("costly-query", lambda: http.post("/graphql", json={"query": COSTLY})),
            ("huge-body", lambda: http.post("/api/v1/collections", content=big_body)),
            (
                "long-filter",
                lambda: http.get("/api/v1/collections", params={"name": "n" * 60_000}),
            ),
            (
                "wide-png-render",
                lambda: http.get(f"/api/v1/assets/{wide_id}/export-url", params={"format": "WEBP"}),
            ),
            ("bad-json", lambda: http.post("/graphql", content=b'{"query": "{ viewer {')),
            (
                "many-tokens",
                lambda: http.post(
                    "/graphql", json={"query": "{ viewer { " + "plan " * 5000 + "} }"}
                ),
            ),
        ]
        n = 0
        while time.perf_counter() < until:
            kind, send = attacks[n % len(attacks)]
            n += 1
            t0 = time.perf_counter()
            try:
                r = await send()
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                stats.statuses[kind][0] += 1
                stats.failures.append(f"{kind}: {type(exc).__name__}")
                continue
            stats.record(kind, t0, r, tuple(range(200, 500)))
            await asyncio.sleep(0.1)


async def sample_rss(server: LiveServer, until: float, samples: list[tuple[float, int]]) -> None:
    start = time.perf_counter()
    while time.perf_counter() < until:
        samples.append((time.perf_counter() - start, server.rss_bytes()))
        await asyncio.sleep(5)


def slope_mib_per_min(samples: list[tuple[float, int]]) -> float:
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return float("nan")
    xs = [t for t, _ in half]
    ys = [r / 2**20 for _, r in half]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


async def soak(server: LiveServer, minutes: float) -> None:
    keys = [server.org_key(f"tenant-{i}", "ENTERPRISE")[1] for i in range(3)]
    _, abusive = server.org_key("abuser", "BUSINESS")
    until = time.perf_counter() + minutes * 60
    tenants, abuse = Stats(), Stats()
    samples: list[tuple[float, int]] = []
    await asyncio.gather(
        *(tenant(server.base, key, until, tenants, i) for i, key in enumerate(keys)),
        abuser(server.base, abusive, until, abuse),
        sample_rss(server, until, samples),
    )
    print(f"soak: {minutes:g} min, 3 tenants + 1 abusive key, server pid {server.proc.pid}")
    print("other tenants:")
    for kind, values in sorted(tenants.latency.items()):
        print(
            f"  {kind:<13} n={len(values):5d}  p50 {percentile(values, 50):8.1f} ms  "
            f"p99 {percentile(values, 99):8.1f} ms  statuses {dict(tenants.statuses[kind])}"
        )
    print("abusive key:")
    for kind, counts in sorted(abuse.statuses.items()):
        print(f"  {kind:<16} {dict(counts)}")
    server_errors = sum(
        n
        for stats in (tenants, abuse)
        for c in stats.statuses.values()
        for s, n in c.items()
        if s >= 500 and s != 503
    )
    print(f"errors: tenants {len(tenants.failures)}, 5xx (not 503) for anyone {server_errors}")
    for failure in (tenants.failures + abuse.failures)[:10]:
        print("   ", failure)
    rss = [r / 2**20 for _, r in samples]
    print(
        f"RSS: start {rss[0]:.0f} MiB, peak {max(rss):.0f} MiB, end {rss[-1]:.0f} MiB; "
        f"slope over the second half {slope_mib_per_min(samples):+.1f} MiB/min"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    with live_server({"PIXELWAND_PLAN_ENTERPRISE_RPS": "100"}) as server:
        server.start()
        asyncio.run(soak(server, args.minutes))


if __name__ == "__main__":
    main()
