"""Scratch (issue 12, fourth pass): AVIF encoding routes at equal SSIMULACRA2.

Each bench image's 800 px resize (the pixels the perceptual path encodes, prepared as
`render_perceptual` does for format=AUTO) is encoded by each route at a few qualities around
the target; the bytes at score exactly 80 (product metric) are interpolated in log bytes
between the nearest passing and failing qualities. Encode CPU (process time, all threads) is
recorded per encode. Results are appended to a JSON-lines file; `--report` prints the table.

    .venv/bin/python bench/scratch_avif_routes.py --routes vips444,pil444 --out /tmp/r.jsonl
    .venv/bin/python bench/scratch_avif_routes.py --report /tmp/r.jsonl

Routes needing pillow-avif-plugin (svt, rav1e) import it only when asked for (it replaces
Pillow's own AVIF save handler): run them in a separate invocation. pillow-avif-plugin and
imagecodecs are not project dependencies (Pillow is, through the dev-only `ssimulacra2`):

    .venv/bin/pip install --no-deps --target /tmp/extra pillow-avif-plugin imagecodecs
    PYTHONPATH=/tmp/extra .venv/bin/python bench/scratch_avif_routes.py --plugin \
        --routes svt420iq,rav1e444 --out /tmp/r.jsonl

Results of the fourth pass: docs/benchmarks.md "Perceptual quality, fourth pass".
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")

import numpy as np
import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_optimise import BOX, corpus
from pixelwand.imaging import pipeline
from pixelwand.imaging.params import parse_transform
from pixelwand.imaging.ssimulacra2 import Reference, to_array

pyvips.cache_set_max(0)
TARGET = 80.0


def base_image(data: bytes, mime: str) -> pyvips.Image:
    """The resize render_perceptual encodes for format=AUTO (opaque alpha dropped)."""
    params = parse_transform(max_width=BOX, max_height=BOX)
    header = pipeline._load(data, mime, 100_000_000)
    has_alpha = pipeline._has_alpha(header, mime)
    shrunk = pipeline._shrink(
        pipeline._thumbnailer(data),
        params,
        "PNG" if has_alpha else "JPEG",
        pipeline._is_colour_managed(header),
        pipeline.upright_size(header),
        None,
    )
    base = pipeline._colour(shrunk, "PNG").copy_memory()
    if base.hasalpha() and base[base.bands - 1].min() >= 255:
        base = base.extract_band(0, n=base.bands - 1).copy_memory()
    return base


def _vips(**opts):
    def enc(image: pyvips.Image, q: int) -> bytes:
        return image.heifsave_buffer(Q=q, keep="none", compression="av1", **opts)

    return enc


def _pil(codec: str = "aom", **opts):
    def enc(image: pyvips.Image, q: int) -> bytes:
        from PIL import Image

        arr = to_array(image)
        pim = Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB")
        out = io.BytesIO()
        kw = {"quality": q, "speed": 6, "subsampling": "4:4:4", "max_threads": 1}
        kw.update(opts)
        if codec != "aom":
            kw["codec"] = codec
        pim.save(out, "AVIF", **kw)
        return out.getvalue()

    return enc


def _imagecodecs(**opts):
    def enc(image: pyvips.Image, q: int) -> bytes:
        import imagecodecs

        return imagecodecs.avif_encode(to_array(image), level=q, numthreads=1, **opts)

    return enc


ROUTES = {
    "vips444": _vips(effort=3, bitdepth=8, subsample_mode="off"),
    "vips420": _vips(effort=3, bitdepth=8, subsample_mode="on"),
    "vips444e4": _vips(effort=4, bitdepth=8, subsample_mode="off"),
    "pil444": _pil(),
    "pil420": _pil(subsampling="4:2:0"),
    "pil444s5": _pil(speed=5),
    "pil444s7": _pil(speed=7),
    "pil444s4": _pil(speed=4),
    "pil444ssim2": _pil(advanced={"tune": "ssimulacra2"}),
    "pil444ssim": _pil(advanced={"tune": "ssim"}),
    "pil444sharp2": _pil(advanced={"sharpness": "2"}),
    "pil444sharp4": _pil(advanced={"sharpness": "4"}),
    "pil444cdq": _pil(advanced={"enable-chroma-deltaq": "1"}),
    "pil444dq3": _pil(advanced={"deltaq-mode": "3"}),
    "pil444dq0": _pil(advanced={"deltaq-mode": "0"}),
    "pil444qm": _pil(advanced={"enable-qm": "1", "qm-min": "0", "qm-max": "15"}),
    "pil444qm8": _pil(advanced={"enable-qm": "1", "qm-min": "4", "qm-max": "10"}),
    "pil444noqm": _pil(advanced={"enable-qm": "0"}),
    # SVT-AV1 (pillow-avif-plugin) encodes 4:2:0 only ("Only support 420 now").
    "svt420": _pil("svt", subsampling="4:2:0"),
    "svt420iq": _pil("svt", subsampling="4:2:0", advanced={"tune": "3"}),
    "svt420iq_s4": _pil("svt", subsampling="4:2:0", speed=4, advanced={"tune": "3"}),
    "svt420iq_s2": _pil("svt", subsampling="4:2:0", speed=2, advanced={"tune": "3"}),
    "rav1e444": _pil("rav1e"),
    "ic_aom": _imagecodecs(speed=6),
}


def decode(data: bytes) -> np.ndarray:
    image = pyvips.Image.new_from_buffer(data, "")
    if image.format != "uchar":
        image = image.cast("uchar")
    return to_array(image)


def measure(route: str, image: pyvips.Image, ref: Reference, start: int) -> dict:
    enc = ROUTES[route]
    points: dict[int, tuple[float, int, float]] = {}

    def at(q: int) -> float:
        q = min(max(q, 1), 100)
        if q not in points:
            t = time.process_time()
            data = enc(image, q)
            cpu = time.process_time() - t
            points[q] = (ref.score(decode(data)), len(data), cpu)
        return points[q][0]

    q = start
    for _ in range(9):
        at(q)
        passing = [k for k, v in points.items() if v[0] >= TARGET]
        failing = [k for k, v in points.items() if v[0] < TARGET]
        hi = min(passing) if passing else None
        lo = max((k for k in failing if hi is None or k < hi), default=None)
        if hi is not None and lo is not None and hi - lo <= 2:
            break
        if hi is not None and (hi == 1 or points[hi][0] - TARGET < 0.15):
            break
        if hi is None and lo == 100:
            break
        if hi is not None and lo is not None:
            s_lo, s_hi = points[lo][0], points[hi][0]
            frac = (TARGET - s_lo) / (s_hi - s_lo) if s_hi > s_lo else 0.5
            q = lo + round(frac * (hi - lo))
            q = min(max(q, lo + 1), hi - 1)
        elif hi is None:
            q = lo + max(3, math.ceil((TARGET - points[lo][0]) / 0.8))
        else:
            q = hi - max(3, math.ceil((points[hi][0] - TARGET) / 0.8))
        if q in points:
            break
    passing = [k for k, v in points.items() if v[0] >= TARGET]
    failing = [k for k, v in points.items() if v[0] < TARGET]
    hi = min(passing) if passing else None
    lo = max((k for k in failing if hi is None or k < hi), default=None)
    if hi is None:
        at80 = None
    elif lo is None:
        at80 = float(points[hi][1])
    else:
        (s0, b0, _), (s1, b1, _) = points[lo], points[hi]
        f = (TARGET - s0) / (s1 - s0) if s1 > s0 else 1.0
        at80 = math.exp(math.log(b0) + f * (math.log(b1) - math.log(b0)))
    cpu = statistics.median(points[k][2] for k in (lo, hi) if k is not None)
    return {"at80": at80, "cpu": cpu, "points": {str(k): v for k, v in sorted(points.items())}}


def run(routes: list[str], count: int, only: str | None, out: Path) -> None:
    for name, data, mime in corpus(count):
        if only and not any(name.startswith(p) for p in only.split(",")):
            continue
        image = base_image(data, mime)
        ref = Reference(to_array(image))
        jpeg85 = len(
            pipeline._encode(
                image.flatten(background=[255] * 3) if image.hasalpha() else image, "JPEG", 85
            )
        )
        for route in routes:
            start = 45 if "gradient" in name or "flat" in name or "text" in name else 68
            found = measure(route, image, ref, start)
            row = {"image": name, "route": route, "jpeg85": jpeg85, **found}
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(
                name,
                route,
                row["at80"] and round(row["at80"]),
                round(row["cpu"] * 1000),
                "ms",
                flush=True,
            )


def report(path: Path, base: str) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by: dict[str, dict[str, dict]] = {}
    for r in rows:
        by.setdefault(r["route"], {})[r["image"]] = r
    baseline = by[base]
    print(f"| route | images | bytes at 80 vs {base} | photos only | encode CPU median ratio |")
    print("|---|---:|---:|---:|---:|")
    for route, per in by.items():
        common = [i for i in per if i in baseline and per[i]["at80"] and baseline[i]["at80"]]
        tot = sum(per[i]["at80"] for i in common) / sum(baseline[i]["at80"] for i in common)
        photos = [i for i in common if "photo" in i]
        ptot = (
            sum(per[i]["at80"] for i in photos) / sum(baseline[i]["at80"] for i in photos)
            if photos
            else float("nan")
        )
        cpu = statistics.median(per[i]["cpu"] / baseline[i]["cpu"] for i in common)
        print(f"| {route} | {len(common)} | {tot:.3f} | {ptot:.3f} | {cpu:.2f}x |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", default="vips444,pil444")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--only", help="comma-separated image name prefixes (e.g. 00,01)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/avif_routes.jsonl"))
    ap.add_argument("--report", type=Path)
    ap.add_argument("--base", default="vips444")
    ap.add_argument("--plugin", action="store_true", help="use pillow-avif-plugin (svt, rav1e)")
    args = ap.parse_args()
    if args.report:
        report(args.report, args.base)
    else:
        if args.plugin:
            import pillow_avif  # noqa: F401
        run(args.routes.split(","), args.images, args.only, args.out)
