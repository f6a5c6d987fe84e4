"""Benchmark data for `bench/bench_api.py`: realistic asset rows, inserted in bulk.

    .venv/bin/python bench/seed.py sqlite --data-dir /tmp/x      # 200 assets, one organization
    .venv/bin/python bench/seed.py postgres [--url URL] [--reseed]

* The schema comes from the product: `pixelwand migrate` runs first; organizations and API
  keys are made with `pixelwand orgs create` / `pixelwand keys create`, as a user would.
* Asset rows are generated from a seeded RNG (the same rows every run, apart from the ids'
  random tails and the keys): camera/phone/export-style file names, JPEG/PNG/WEBP/GIF images
  with real-world pixel sizes, MP4/MOV videos (no pixel size, like the product's finalize),
  log-normal byte sizes, uploads spread over three years at millisecond precision, 0-5 tags
  per asset (a subject tag related to the name plus Zipf-weighted workflow tags) with their
  `asset_tags` rows, about a third of the assets in one of the organization's collections,
  and no soft-deleted rows (the server's sweeper removes those rows within a minute of the
  deletion, so a live database holds almost none).
* SQLite: 200 live assets in one organization (to match the Directus peer run's file count).
  Plain `sqlite3` executemany, values stored in Tortoise's own text formats.
* PostgreSQL: one "target" organization with 100,000 live assets among four other
  organizations of 20,000 each (180,000 live rows in all), loaded with COPY
  (asyncpg `copy_records_to_table`) into the migrated, already indexed tables, then
  VACUUM ANALYZE (what autovacuum would have done on a table of that age). An existing
  database whose seed marker and counts match is reused (new API key only); `--reseed` drops
  and recreates it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pixelwand.ids import id_at  # noqa: E402
from pixelwand.storage.keys import sanitize_filename  # noqa: E402

BIN = Path(sys.executable).parent
SEED_VERSION = "v2"
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/pixelwand_bench"
SQLITE_ASSETS = 200
PG_TARGET_ASSETS = 100_000
PG_TARGET_DELETED = 0  # the server's sweeper hard-deletes soft-deleted rows within a minute
PG_OTHER_ORGS = 4
PG_OTHER_ASSETS = 20_000
COLLECTIONS_PER_ORG = 24


SUBJECTS = [
    "beach", "sunset", "sunrise", "mountain", "skyline", "portrait", "headshot", "product",
    "sneaker", "watch", "coffee", "pizza", "salad", "wedding", "concert", "festival", "drone",
    "aerial", "forest", "river", "lake", "snow", "desert", "garden", "sunflower", "bridge",
    "street", "market", "office", "team", "meeting", "workshop", "kitchen", "interior",
    "facade", "car", "bike", "dog", "cat", "bird", "ocean", "harbor", "night", "rain",
    "autumn", "spring", "summer", "winter", "studio", "logo", "banner", "hero", "texture",
    "lifestyle", "fashion", "jewelry", "bottle", "packaging", "sunny-terrace", "rooftop",
]  # fmt: skip
ADJECTIVES = [
    "blue", "red", "golden", "misty", "bright", "dark", "warm", "cold", "vintage", "modern",
    "minimal", "wide", "close-up", "final", "edit", "v2", "retouched", "crop", "hires", "web",
]  # fmt: skip
WORKFLOW_TAGS = [
    "approved", "social", "web", "draft", "instagram", "hero", "print", "banner", "archive",
    "final", "retouched", "raw", "newsletter", "homepage", "blog", "ads", "brand", "stock",
    "ugc", "2023", "2024", "2025", "campaign-q1", "campaign-q2", "campaign-q3", "campaign-q4",
    "client-acme", "client-globex", "client-initech", "legal-cleared", "needs-review",
    "press", "event", "team", "product-launch", "holiday", "black-friday", "spring-sale",
]  # fmt: skip
COLLECTION_NAMES = [
    "Brand", "Campaigns", "Social", "Website", "Press kit", "Events", "Products", "Team",
    "Archive", "Stock", "Drafts", "Blog", "Newsletter", "Ads", "Print", "Video", "Clients",
    "Holiday 2024", "Spring sale", "Launch", "Retouch queue", "UGC", "Backgrounds", "Logos",
]  # fmt: skip
IMAGE_MIMES = [("image/jpeg", 0.62), ("image/png", 0.18), ("image/webp", 0.06), ("image/gif", 0.02)]
VIDEO_MIMES = [("video/mp4", 0.09), ("video/quicktime", 0.03)]
RESOLUTIONS = [
    (6000, 4000), (4032, 3024), (3024, 4032), (1920, 1080), (1080, 1080), (1080, 1350),
    (2048, 1365), (1200, 628), (800, 600), (2560, 1440), (5472, 3648), (1600, 900),
]  # fmt: skip
COLORS = ["#6366f1", "#ef4444", "#10b981", "#f59e0b", "#3b82f6", "#8b5cf6"]


@dataclasses.dataclass
class Seeded:
    backend: str
    database_url: str
    org_id: str
    key: str
    live_assets: int  # in org_id
    deleted_assets: int  # in org_id
    total_assets: int  # every organization, live + deleted
    organizations: int
    tag_rows: int
    seconds: float
    reused: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)


# --- rows -------------------------------------------------------------------------------


def _asset_id(rng: random.Random, when: dt.datetime) -> str:
    """Like pixelwand.ids.new_id: time-ordered prefix (here: the upload time) + random tail."""
    return id_at(int(when.timestamp() * 1000), rng.choice)


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _file_name(rng: random.Random, subject: str, mime: str, n: int, when: dt.datetime) -> str:
    ext = {
        "image/jpeg": rng.choice(["jpg", "jpg", "jpeg", "JPG"]),
        "image/png": "png",
        "image/webp": "webp",
        "image/gif": "gif",
        "video/mp4": "mp4",
        "video/quicktime": "mov",
    }[mime]
    style = rng.random()
    if mime.startswith("video/"):
        if style < 0.5:
            return f"{subject}-clip-{n % 1000:03d}.{ext}"
        return f"{subject}_{rng.choice(ADJECTIVES)}_{when:%Y%m%d}.{ext}"
    if style < 0.18:
        return f"IMG_{n % 10000:04d}.{ext}"
    if style < 0.28:
        return f"DSC{n % 100000:05d}.{ext}"
    if style < 0.36 and ext == "png":
        return f"Screenshot {when:%Y-%m-%d} at {when:%H.%M.%S}.png"
    if style < 0.70:
        return f"{subject}-{rng.choice(ADJECTIVES)}-{n % 10000:04d}.{ext}"
    if style < 0.90:
        second = rng.choice(SUBJECTS)
        return f"{subject}_{second}_{when:%Y}_{n % 1000:03d}.{ext}"
    return f"{subject.replace('-', ' ').title()} {rng.choice(ADJECTIVES)} {n % 100}.{ext}"


def _tags(rng: random.Random, subject: str) -> list[str]:
    out: list[str] = []
    if rng.random() < 0.6:
        out.append(subject)
    k = rng.choice([0, 1, 1, 2, 2, 2, 3, 3, 4])
    # Zipf-like: workflow tag i has weight 1/(i+1).
    weights = [1.0 / (i + 1) for i in range(len(WORKFLOW_TAGS))]
    for tag in rng.choices(WORKFLOW_TAGS, weights=weights, k=k):
        if tag not in out:
            out.append(tag)
    return out


ASSET_COLUMNS = (
    "id", "organization_id", "name", "original_name", "size", "mime_type", "media_type",
    "storage_key", "tags", "collection_id", "location_x", "location_y", "width", "height",
    "uploaded_at", "deleted_at",
)  # fmt: skip


@dataclasses.dataclass
class AssetRow:
    id: str
    organization_id: str
    name: str
    original_name: str
    size: int
    mime_type: str
    media_type: str
    storage_key: str
    tags: list[str]
    collection_id: str | None
    location_x: float
    location_y: float
    width: int | None
    height: int | None
    uploaded_at: dt.datetime
    deleted_at: dt.datetime | None


def _asset_values(r: AssetRow, ts: Callable[[Any], Any]) -> tuple:
    """The row in ASSET_COLUMNS order; tags as compact JSON text, timestamps through `ts`."""
    out: list[Any] = [getattr(r, c) for c in ASSET_COLUMNS]
    out[8] = json.dumps(r.tags, separators=(",", ":"))
    out[14] = ts(r.uploaded_at)
    out[15] = ts(r.deleted_at)
    return tuple(out)


def collection_rows(rng: random.Random, org_id: str, now: dt.datetime) -> list[tuple]:
    out = []
    for i, name in enumerate(COLLECTION_NAMES[:COLLECTIONS_PER_ORG]):
        created = now - dt.timedelta(days=1100 - i * 7)
        out.append((_asset_id(rng, created), org_id, name, None, rng.choice(COLORS), created))
    return out


def asset_rows(
    rng: random.Random,
    org_id: str,
    count: int,
    collection_ids: list[str],
    now: dt.datetime,
    *,
    deleted: int = 0,
) -> Iterator[AssetRow]:
    span_ms = 3 * 365 * 86400 * 1000
    mimes = IMAGE_MIMES + VIDEO_MIMES
    for n in range(count + deleted):
        when = now - dt.timedelta(milliseconds=rng.randrange(span_ms))
        subject = rng.choice(SUBJECTS)
        mime = _pick(rng, mimes)
        media = "VIDEO" if mime.startswith("video/") else "IMAGE"
        original = _file_name(rng, subject, mime, n, when)
        name = original if rng.random() < 0.8 else original.rsplit(".", 1)[0].replace("_", " ")
        if media == "IMAGE":
            w, h = rng.choice(RESOLUTIONS)
            size = int(min(40e6, max(20e3, rng.lognormvariate(math.log(w * h * 0.35), 0.5))))
        else:
            w = h = None
            size = int(min(2e9, max(1e6, rng.lognormvariate(math.log(60e6), 1.0))))
        key_uuid = uuid.UUID(int=rng.getrandbits(128), version=4)
        storage_key = f"orgs/{org_id}/{when:%Y}/{when:%m}/{key_uuid}-{sanitize_filename(original)}"
        collection = rng.choice(collection_ids) if rng.random() < 0.35 else None
        yield AssetRow(
            id=_asset_id(rng, when),
            organization_id=org_id,
            name=name,
            original_name=original,
            size=size,
            mime_type=mime,
            media_type=media,
            storage_key=storage_key,
            tags=_tags(rng, subject),
            collection_id=collection,
            location_x=round(rng.uniform(0, 4000), 1),
            location_y=round(rng.uniform(0, 3000), 1),
            width=w,
            height=h,
            uploaded_at=when,
            deleted_at=(when + dt.timedelta(days=1)) if n >= count else None,
        )


# --- product CLI --------------------------------------------------------------------------


def cli(env: dict[str, str], *args: str) -> str:
    """Run `pixelwand ARGS` with `env`; its stdout's last line."""
    proc = subprocess.run(
        [str(BIN / "pixelwand"), *args], env=env, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pixelwand {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1].strip()


def create_org_and_key(env: dict[str, str], name: str) -> tuple[str, str]:
    org_id = cli(env, "orgs", "create", "--name", name, "--plan", "ENTERPRISE")
    key = cli(env, "keys", "create", "--org", org_id, "--scopes", "read,write", "--name", "bench")
    return org_id, key


def server_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env.update(
        PIXELWAND_DATA_DIR=str(data_dir),
        PIXELWAND_DATABASE_URL=database_url,
        PIXELWAND_STORAGE_URL=f"local:{data_dir}/storage",
        PIXELWAND_LOG_LEVEL="WARNING",
    )
    return env


# --- SQLite -------------------------------------------------------------------------------


def _sqlite_ts(value: dt.datetime | None) -> str | None:
    # Tortoise stores aware datetimes on SQLite as str(value): "2024-05-01 12:00:00.123000+00:00"
    return None if value is None else str(value)


def seed_sqlite(data_dir: Path, count: int = SQLITE_ASSETS) -> Seeded:
    t0 = time.perf_counter()
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / "pixelwand.db"
    url = f"sqlite://{db_path}"
    env = server_env(url, data_dir)
    cli(env, "migrate")
    org_id, key = create_org_and_key(env, f"bench-sqlite-{SEED_VERSION}")
    rng = random.Random(20261125)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    cols = collection_rows(rng, org_id, now)[:6]
    rows = list(asset_rows(rng, org_id, count, [c[0] for c in cols], now))
    con = sqlite3.connect(db_path)
    try:
        with con:
            con.executemany(
                'INSERT INTO "collections" ("id","organization_id","name","parent_id","color",'
                '"created_at") VALUES (?,?,?,?,?,?)',
                [(*c[:5], _sqlite_ts(c[5])) for c in cols],
            )
            con.executemany(
                f'INSERT INTO "assets" ({",".join(ASSET_COLUMNS)}) '
                f"VALUES ({','.join('?' * len(ASSET_COLUMNS))})",
                [_asset_values(r, _sqlite_ts) for r in rows],
            )
            tag_rows = [(org_id, t, r.id) for r in rows for t in r.tags]
            con.executemany(
                'INSERT INTO "asset_tags" ("organization_id","tag","asset_id") VALUES (?,?,?)',
                tag_rows,
            )
        con.execute("ANALYZE")
    finally:
        con.close()
    return Seeded(
        backend="sqlite",
        database_url=url,
        org_id=org_id,
        key=key,
        live_assets=count,
        deleted_assets=0,
        total_assets=count,
        organizations=1,
        tag_rows=len(tag_rows),
        seconds=time.perf_counter() - t0,
    )


# --- PostgreSQL ---------------------------------------------------------------------------


def _split_pg_url(url: str) -> tuple[str, str]:
    base, _, name = url.rpartition("/")
    return base + "/postgres", name.split("?", 1)[0]


async def _pg_reset_database(url: str, drop: bool) -> None:
    import asyncpg

    admin_url, name = _split_pg_url(url)
    con = await asyncpg.connect(admin_url.replace("postgres://", "postgresql://", 1))
    try:
        exists = await con.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and drop:
            await con.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = False
        if not exists:
            await con.execute(f'CREATE DATABASE "{name}"')
    finally:
        await con.close()


async def _pg_existing(url: str) -> tuple[str, int, int] | None:
    """(target org id, live, deleted) when the seed marker and counts match."""
    import asyncpg

    con = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        orgs = await con.fetch(
            "SELECT id, name FROM organizations WHERE name LIKE 'bench-pg-%' ORDER BY name"
        )
        names = [r["name"] for r in orgs]
        want = [f"bench-pg-{SEED_VERSION}-target"] + [
            f"bench-pg-{SEED_VERSION}-other-{i}" for i in range(PG_OTHER_ORGS)
        ]
        if sorted(names) != sorted(want):
            return None
        target = next(r["id"] for r in orgs if r["name"].endswith("-target"))
        live = await con.fetchval(
            "SELECT count(*) FROM assets WHERE organization_id = $1 AND deleted_at IS NULL", target
        )
        deleted = await con.fetchval(
            "SELECT count(*) FROM assets WHERE organization_id = $1 AND deleted_at IS NOT NULL",
            target,
        )
        total = await con.fetchval("SELECT count(*) FROM assets")
        expect_total = PG_TARGET_ASSETS + PG_TARGET_DELETED + PG_OTHER_ORGS * PG_OTHER_ASSETS
        if live != PG_TARGET_ASSETS or deleted != PG_TARGET_DELETED or total != expect_total:
            return None
        return target, live, deleted
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await con.close()


async def _pg_copy(url: str, orgs: list[tuple[str, int, int]]) -> tuple[int, int]:
    """COPY collections, assets and asset_tags for (org_id, live, deleted) each."""
    import asyncpg

    con = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        n_assets = n_tags = 0
        for i, (org_id, live, deleted) in enumerate(orgs):
            rng = random.Random(1000 + i)
            cols = collection_rows(rng, org_id, now)
            await con.copy_records_to_table(
                "collections",
                records=cols,
                columns=["id", "organization_id", "name", "parent_id", "color", "created_at"],
            )
            assets: list[tuple] = []
            tags: list[tuple] = []
            for r in asset_rows(rng, org_id, live, [c[0] for c in cols], now, deleted=deleted):
                assets.append(_asset_values(r, lambda v: v))
                tags.extend((org_id, t, r.id) for t in r.tags)
            await con.copy_records_to_table(
                "assets",
                records=assets,
                columns=list(ASSET_COLUMNS),
            )
            await con.copy_records_to_table(
                "asset_tags", records=tags, columns=["organization_id", "tag", "asset_id"]
            )
            n_assets += len(assets)
            n_tags += len(tags)
        await con.execute("VACUUM ANALYZE")
        return n_assets, n_tags
    finally:
        await con.close()


def seed_postgres(url: str, data_dir: Path, *, reseed: bool = False) -> Seeded:
    t0 = time.perf_counter()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = server_env(url, data_dir)
    asyncio.run(_pg_reset_database(url, drop=reseed))
    cli(env, "migrate")  # also applies migrations added since an earlier seed
    found = None if reseed else asyncio.run(_pg_existing(url))
    if found is not None:
        org_id, live, deleted = found
        key = cli(env, "keys", "create", "--org", org_id, "--scopes", "read,write", "--name", "b")
        asyncio.run(_pg_analyze(url))
        return Seeded(
            backend="postgres",
            database_url=url,
            org_id=org_id,
            key=key,
            live_assets=live,
            deleted_assets=deleted,
            total_assets=PG_TARGET_ASSETS + PG_TARGET_DELETED + PG_OTHER_ORGS * PG_OTHER_ASSETS,
            organizations=1 + PG_OTHER_ORGS,
            tag_rows=asyncio.run(_pg_count(url, "asset_tags")),
            seconds=time.perf_counter() - t0,
            reused=True,
        )
    if not reseed:  # a partial or older seed: start over
        asyncio.run(_pg_reset_database(url, drop=True))
        cli(env, "migrate")
    org_id, key = create_org_and_key(env, f"bench-pg-{SEED_VERSION}-target")
    others = [
        cli(env, "orgs", "create", "--name", f"bench-pg-{SEED_VERSION}-other-{i}", "--plan", "TEAM")
        for i in range(PG_OTHER_ORGS)
    ]
    plan = [(org_id, PG_TARGET_ASSETS, PG_TARGET_DELETED)] + [
        (o, PG_OTHER_ASSETS, 0) for o in others
    ]
    n_assets, n_tags = asyncio.run(_pg_copy(url, plan))
    return Seeded(
        backend="postgres",
        database_url=url,
        org_id=org_id,
        key=key,
        live_assets=PG_TARGET_ASSETS,
        deleted_assets=PG_TARGET_DELETED,
        total_assets=n_assets,
        organizations=1 + PG_OTHER_ORGS,
        tag_rows=n_tags,
        seconds=time.perf_counter() - t0,
    )


async def _pg_analyze(url: str) -> None:
    import asyncpg

    con = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await con.execute("ANALYZE")
    finally:
        await con.close()


async def _pg_count(url: str, table: str) -> int:
    import asyncpg

    con = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        return int(await con.fetchval(f'SELECT count(*) FROM "{table}"'))
    finally:
        await con.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="backend", required=True)
    s = sub.add_parser("sqlite")
    s.add_argument("--data-dir", type=Path, required=True)
    s.add_argument("--assets", type=int, default=SQLITE_ASSETS)
    p = sub.add_parser("postgres")
    p.add_argument("--url", default=DEFAULT_PG_URL)
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/pixelwand-bench-api/pg-seed"))
    p.add_argument("--reseed", action="store_true")
    args = ap.parse_args()
    if args.backend == "sqlite":
        seeded = seed_sqlite(args.data_dir, args.assets)
    else:
        seeded = seed_postgres(args.url, args.data_dir, reseed=args.reseed)
    print(json.dumps(dataclasses.asdict(seeded), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
