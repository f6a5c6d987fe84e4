"""Hostile media (tests/imaging/hostile_media.py, seeded) through a real app in a subprocess:
export-url (resized, unresized, concurrently), a ZIP export of every file that finalized, and
the facts worker's decode of each.
Never a 5xx, never a hang, and the subprocess's peak RSS stays within the configured render
budget (with a generous margin for the interpreter, the app and allocator slack)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.imaging.hostile_media import hostile_media

MIB = 1024 * 1024
PER_RENDER = 256 * MIB
TOTAL = 512 * MIB
MARGIN = 128 * MIB
SEED = 11
_ROOT = Path(__file__).resolve().parents[2]


def test_hostile_media_stay_within_the_render_budget(tmp_path: Path) -> None:
    cases_dir, work = tmp_path / "cases", tmp_path / "work"
    cases_dir.mkdir()
    work.mkdir()
    cases = hostile_media(SEED)
    for case in cases:
        (cases_dir / f"{case.name}.{case.extension}").write_bytes(case.data)
    env = {
        **os.environ,
        "PIXELWAND_RENDER_MEMORY_BYTES": str(PER_RENDER),
        "PIXELWAND_RENDER_MEMORY_TOTAL_BYTES": str(TOTAL),
        "PIXELWAND_IMAGE_WORKERS": "2",
        "PIXELWAND_LOG_LEVEL": "ERROR",
    }
    run = subprocess.run(
        [sys.executable, "-m", "tests.imaging.hostile_runner", str(cases_dir), str(work)],
        cwd=_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # a hang fails the test instead of the suite
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["server_errors"] == []
    assert report["facts_pending"] == 0  # the facts worker went through every file
    statuses = report["statuses"]
    assert statuses["presign"] == {"200": len(cases)}
    assert set(statuses["finalize"]) <= {"201", "400"}
    for step in ("export-webp-800", "export-unresized", "export-concurrent"):
        assert set(statuses[step]) <= {"200", "400"}, (step, statuses[step])
        assert statuses[step].get("200", 0) > 40  # the valid and odd files render
    assert statuses["zip"] == {"200": 1}
    # The shapes are refused from their headers, not rendered.
    refused = report["refused"]
    for name in ("png-10000000x10-rgba16", "png-1081440x64-rgba16", "png-25000000x4-grey8"):
        assert refused[f"export-webp-800 {name}"] == "image too large to render"
    growth = report["peak_rss"] - report["peak_rss_after_start"]
    print(f"peak RSS {report['peak_rss'] / MIB:.0f} MiB, growth {growth / MIB:.0f} MiB")
    assert growth <= TOTAL + MARGIN, f"peak RSS grew {growth / MIB:.0f} MiB"
