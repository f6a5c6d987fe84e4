"""Run hostile files through a real app in this process and report statuses and peak RSS.

    python -m tests.imaging.hostile_runner CASES_DIR WORK_DIR

CASES_DIR holds files named `<case>.<ext>` (tests/imaging/hostile_media.py writes them).
For each: presign → PUT → finalize; then, for every finalized asset, export-url twice
(`format=WEBP&maxWidth=800`, and unresized in the source's format) and one ZIP export of
them all (WEBP, maxWidth 800); then waits for the facts worker to have been through every
finalized file. Prints one JSON object: the peak RSS of this process after
start-up and at the end, every status seen per step, and the requests that answered 5xx.
The caller sets the PIXELWAND_* budget variables in the environment.
"""

from __future__ import annotations

import asyncio
import collections
import io
import json
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx

BASE_URL = "http://testserver"
MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "tif": "image/tiff",
    "avif": "image/avif",
}


def peak_rss() -> int:
    """This process's own high-water mark: ru_maxrss carries the parent's (pytest's) over
    exec, so growth measured with it was hidden below the parent's size."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


async def main(files: list[tuple[Path, bytes]], work: Path) -> dict[str, Any]:
    from pixelwand import db
    from pixelwand.app import create_app
    from pixelwand.config import Settings
    from pixelwand.plans import Plan
    from pixelwand.services import api_keys, organizations

    env = {
        **os.environ,
        "PIXELWAND_DATA_DIR": str(work),
        "PIXELWAND_DATABASE_URL": f"sqlite://{work}/pixelwand.db",
        "PIXELWAND_STORAGE_URL": f"local:{work}/storage",
        "PIXELWAND_SECRET_KEY": "hostile",
        "PIXELWAND_PUBLIC_URL": BASE_URL,
        "PIXELWAND_SWEEP_INTERVAL_SECONDS": "0",
        # Memory is measured here, not the rate limit: sequential export-urls of cached or
        # refused files can outpace ENTERPRISE's 100 a second (CI once got 97 429s).
        "PIXELWAND_PLAN_ENTERPRISE_RPS": "1000000",
    }
    settings = Settings.from_env(env)
    await db.migrate(settings.database_url)
    await db.disconnect()
    app = create_app(settings, run_sweeper=False)
    statuses: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    server_errors: list[str] = []
    refused: dict[str, str] = {}

    def seen(step: str, case: str, r: httpx.Response) -> None:
        statuses[step][r.status_code] += 1
        if r.status_code >= 500:
            server_errors.append(f"{step} {case}: {r.status_code} {r.text[:200]}")

    async with app.router.lifespan_context(app):
        org = await organizations.create_org("hostile", Plan.ENTERPRISE)
        _, key = await api_keys.create_key(org.id, "read,write", "hostile")
        auth = {"Authorization": f"Bearer {key}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=600) as http:
            started = peak_rss()
            assets: dict[str, str] = {}
            for path, data in files:
                case, ext = path.stem, path.suffix[1:]
                body = {"originalName": path.name, "mimeType": MIME[ext], "size": len(data)}
                r = await http.post(
                    "/api/v1/assets", json={"mode": "presign", **body}, headers=auth
                )
                seen("presign", case, r)
                if r.status_code != 200:
                    continue
                ticket = r.json()
                r = await http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
                seen("put", case, r)
                finalize = {"mode": "finalize", "storageKey": ticket["storageKey"], **body}
                r = await http.post("/api/v1/assets", json=finalize, headers=auth)
                seen("finalize", case, r)
                if r.status_code == 201:
                    assets[case] = r.json()["id"]
            for case, asset_id in assets.items():
                for step, params in (
                    ("export-webp-800", {"format": "WEBP", "maxWidth": "800"}),
                    ("export-unresized", {"quality": "80"}),
                ):
                    r = await http.get(
                        f"/api/v1/assets/{asset_id}/export-url", params=params, headers=auth
                    )
                    seen(step, case, r)
                    if r.status_code == 400:
                        refused[f"{step} {case}"] = r.json()["error"]
            # All at once, in groups: the renders share the process's total budget.
            items = list(assets.items())
            for start in range(0, len(items), 8):
                group = items[start : start + 8]
                answers = await asyncio.gather(
                    *(
                        http.get(
                            f"/api/v1/assets/{asset_id}/export-url",
                            params={"format": "JPEG", "maxWidth": "640"},
                            headers=auth,
                        )
                        for _, asset_id in group
                    )
                )
                for (case, _), r in zip(group, answers, strict=True):
                    seen("export-concurrent", case, r)
            ids = list(assets.values())
            for start in range(0, len(ids), 500):
                r = await http.post(
                    "/api/v1/exports",
                    json={
                        "assetIds": ids[start : start + 500],
                        "config": {"format": "webp", "maxWidth": 800},
                    },
                    headers=auth,
                )
                seen("zip", "batch", r)
                if r.status_code == 200:
                    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
                    statuses["zip-entries"][len(names)] += 1
        # The facts worker decodes every finalized image too (a thumbnail for its placeholders
        # and focal point): its peak counts, so the run waits until it has been through all.
        facts_pending = await _facts_drained(600)
    return {
        "facts_pending": facts_pending,
        "peak_rss_after_start": started,
        "peak_rss": peak_rss(),
        "statuses": {step: dict(c) for step, c in statuses.items()},
        "server_errors": server_errors,
        "finalized": len(assets),
        "refused": refused,
    }


async def _facts_drained(seconds: float) -> int:
    """Wait for the facts worker to finish every job; how many are left after `seconds`."""
    from pixelwand.services import facts

    for _ in range(int(seconds / 0.2)):
        pending = await facts.pending_count()
        if not pending:
            return 0
        await asyncio.sleep(0.2)
    return await facts.pending_count()


if __name__ == "__main__":
    paths = sorted(Path(sys.argv[1]).iterdir())
    result = asyncio.run(main([(p, p.read_bytes()) for p in paths], Path(sys.argv[2])))
    print(json.dumps(result))
