"""Fairness: another organization's `viewer` latency, quiet vs while one key sends the
heaviest queries the cost limit allows, at its plan's rate.

    .venv/bin/python bench/bench_fairness.py [--seconds 20] [--plan TEAM] [--victim-rps 20]

A live server (`pixelwand serve`, one process, SQLite) in a temporary directory. The attacking
organization holds 95 collections of 500 assets (47,500 rows): its query lists every
collection with every asset (47,595 objects, just under the default limit of 50,000 at run
time; the estimate before execution is 10,020). It also sends the issue's refused queries.
The victim sends `{ viewer { plan storageUsed } }` at a fixed rate (open loop) from its own
client; the attacker runs in a process of its own (reading its 1 MB answers in the victim's
event loop was counted as the server's latency). Prints p50/p99 of the victim, quiet and
under attack, and what the attacker got: how many of its requests were answered and how many
refused with 429 (the cost-weighted allowance makes one heavy answer spend many requests of
its plan's rate: docs/hardening.md "Cost-weighted allowance"). The last line is the same as
JSON, for tables.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.live import LiveServer, live_server, percentile, seed_collections

HEAVY = """{ collections { id name assets { id name originalName size mimeType mediaType tags
  uploadedAt width height } } }"""
REFUSED = (
    "{ assets { items { collection { assets { collection { assets { collection "
    "{ assets { id } } } } } } } } }"
)
VIEWER = "{ viewer { plan storageUsed } }"
PLAN_RPS = {"TEAM": 3.0, "BUSINESS": 10.0, "ENTERPRISE": 100.0}


async def victim(base: str, key: str, rps: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        await http.post("/graphql", json={"query": VIEWER})  # warm the key cache

        async def one() -> None:
            t0 = time.perf_counter()
            r = await http.post("/graphql", json={"query": VIEWER})
            if r.status_code == 200 and "errors" not in r.json():
                latencies.append((time.perf_counter() - t0) * 1000)

        tasks = []
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            tasks.append(asyncio.create_task(one()))
            n += 1
            await asyncio.sleep(max(0.0, start + n / rps - time.perf_counter()))
        await asyncio.gather(*tasks)
    return latencies


async def attacker(
    base: str, key: str, rps: float, seconds: float
) -> tuple[list[float], collections.Counter[str]]:
    durations: list[float] = []
    counts: collections.Counter[str] = collections.Counter()
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as http:

        async def one(query: str) -> None:
            t0 = time.perf_counter()
            r = await http.post("/graphql", json={"query": query})
            body = orjson.loads(r.content)
            code = body["errors"][0]["extensions"]["code"] if body.get("errors") else "OK"
            counts[f"{r.status_code} {code}"] += 1
            if query is HEAVY and code == "OK":
                durations.append((time.perf_counter() - t0) * 1000)

        tasks = []
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            # Every fifth request is one of the queries (refused before execution).
            tasks.append(asyncio.create_task(one(REFUSED if n % 5 == 4 else HEAVY)))
            n += 1
            await asyncio.sleep(max(0.0, start + n / rps - time.perf_counter()))
        await asyncio.gather(*tasks)
    return durations, counts


def _attacker_process(base: str, key: str, rps: float, seconds: float, out: Any) -> None:
    """The attacker in its own process: reading its 1 MB answers must not delay the
    victim's client (one event loop for both counted the client's JSON parsing as the
    server's latency)."""
    out.send(asyncio.run(attacker(base, key, rps, seconds)))


def _row(label: str, values: list[float]) -> str:
    return (
        f"{label:<28} n={len(values):5d}  p50 {percentile(values, 50):7.2f} ms  "
        f"p99 {percentile(values, 99):7.2f} ms  max {max(values or [0]):7.2f} ms"
    )


async def measure(server: LiveServer, args: argparse.Namespace) -> None:
    _, victim_key = server.org_key("victim", "BUSINESS")
    attacker_org, attacker_key = server.org_key("attacker", args.plan)
    seed_collections(server, attacker_org, args.collections, 500)
    rps = PLAN_RPS[args.plan]
    print(
        f"server pid {server.proc.pid if server.proc else '?'}; attacker plan {args.plan} "
        f"({rps:g} rps); victim {args.victim_rps:g} rps; {args.seconds:g} s per phase"
    )
    rss0 = server.rss_bytes()
    quiet = await victim(server.base, victim_key, args.victim_rps, args.seconds)
    receiver, sender = multiprocessing.Pipe(duplex=False)
    attack = multiprocessing.Process(
        target=_attacker_process,
        args=(server.base, attacker_key, rps, args.seconds + 4, sender),
    )
    attack.start()
    await asyncio.sleep(2)  # let the attack reach its steady state
    loaded = await victim(server.base, victim_key, args.victim_rps, args.seconds)
    heavy, counts = await asyncio.to_thread(receiver.recv)
    attack.join()
    rss1 = server.rss_bytes()
    print(_row("victim viewer, quiet", quiet))
    print(_row("victim viewer, under attack", loaded))
    ratio = percentile(loaded, 99) / percentile(quiet, 99)
    print(f"p99 under attack / quiet: {ratio:.2f}x (target <= 2x)")
    print(_row("attacker heavy query", heavy))
    attack_seconds = args.seconds + 4
    sent = sum(counts.values())
    limited = sum(n for answer, n in counts.items() if answer.startswith("429"))
    print(
        f"attacker: {sent} requests in {attack_seconds:g} s ({sent / attack_seconds:.2f}/s), "
        f"{len(heavy)} heavy answered ({len(heavy) / attack_seconds:.2f}/s, "
        f"{len(heavy) * (args.collections * 501) / attack_seconds:,.0f} objects/s), "
        f"{limited} x 429; answers: {dict(counts)}"
    )
    print(f"server RSS {rss0 / 2**20:.0f} MiB before, {rss1 / 2**20:.0f} MiB after")
    print(
        "summary "
        + orjson.dumps(
            {
                "collections": args.collections,
                "quiet_p50": percentile(quiet, 50),
                "quiet_p99": percentile(quiet, 99),
                "attacked_p50": percentile(loaded, 50),
                "attacked_p99": percentile(loaded, 99),
                "ratio": ratio,
                "attacker_sent": sent,
                "attacker_ok": len(heavy),
                "attacker_429": limited,
                "attacker_heavy_p50": percentile(heavy, 50),
                "answers": counts,
                "load": os.getloadavg(),
            }
        ).decode()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--plan", choices=sorted(PLAN_RPS), default="TEAM")
    parser.add_argument("--victim-rps", type=float, default=20.0)
    parser.add_argument("--collections", type=int, default=95, help="of 500 assets each")
    parser.add_argument(
        "--unlimited",
        action="store_true",
        help="the attacker's plan allows 1,000 requests/second (it still sends at its plan's "
        "rate): every heavy query is answered, which measures the heavy path, not the allowance",
    )
    parser.add_argument(
        "--database-url",
        help="an empty database to run on (e.g. postgres://…); default: SQLite in the temp dir",
    )
    args = parser.parse_args()
    env = {"PIXELWAND_DATABASE_URL": args.database_url} if args.database_url else {}
    if args.unlimited:
        env[f"PIXELWAND_PLAN_{args.plan}_RPS"] = "1000"
    with live_server(env or None) as server:
        server.start()
        asyncio.run(measure(server, args))


if __name__ == "__main__":
    main()
