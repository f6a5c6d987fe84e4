"""Deterministic photo-like JPEG corpus for the benchmarks, generated with pyvips.

The generator follows the peer-benchmark harness (`make_images.py`): multi-octave Perlin
noise, colour gradients, soft-edged shapes, chroma texture and seeded film grain, so that
JPEG Q90 lands at ~0.8-1 byte per pixel like a real photo (flat synthetic images decode and
encode much faster than photos and would flatter every figure). Same seeds as the peers use
(6000x4000: seed 1; set image i: seed 100 + i), so the files are the same images.

Every random input is seeded, so two runs give byte-identical files. Files are generated once
into a cache directory (default /tmp/pixelwand-bench/images) and kept; MANIFEST.txt records
sizes and md5 sums.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pyvips

DEFAULT_DIR = Path(os.environ.get("PIXELWAND_BENCH_DIR", "/tmp/pixelwand-bench")) / "images"
JPEG_Q = 90


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    width: int
    height: int
    size: int


def _fbm(w: int, h: int, base_cell: float, octaves: int, seed: int, persistence: float = 0.55):
    """Fractal Brownian motion from seeded Perlin octaves, roughly in [-1, 1]."""
    acc = None
    amp = 1.0
    total = 0.0
    cell = base_cell
    for k in range(octaves):
        layer = pyvips.Image.perlin(w, h, cell_size=max(2, int(cell)), seed=seed * 97 + k) * amp
        acc = layer if acc is None else acc + layer
        total += amp
        amp *= persistence
        cell /= 2.0
    return acc / total


def _smoothstep(x, lo: float, hi: float):
    t = (x - lo) / (hi - lo)
    t = (t < 0).ifthenelse(0.0, (t > 1).ifthenelse(1.0, t))
    return t * t * (t * -2.0 + 3.0)


def photo(w: int, h: int, seed: int, grain: float = 3.0) -> pyvips.Image:
    """A uchar sRGB photo-like image, deterministic for a given seed."""
    rnd = random.Random(seed)
    m = min(w, h)
    detail_amp = rnd.uniform(70.0, 110.0)
    chroma_amp = 0.7

    # Low-frequency content at 1/4 scale, upscaled (it is smooth).
    lw, lh, lm = max(8, w // 4), max(8, h // 4), max(8, m // 4)
    top = [rnd.uniform(60, 230) for _ in range(3)]
    bot = [rnd.uniform(20, 180) for _ in range(3)]
    side = [rnd.uniform(-40, 40) for _ in range(3)]
    xyz = pyvips.Image.xyz(lw, lh)
    fx = xyz[0] / float(lw)
    fy = xyz[1] / float(lh)
    grad = (fy * (bot[0] - top[0]) + top[0] + fx * side[0]).bandjoin(
        [fy * (bot[c] - top[c]) + top[c] + fx * side[c] for c in (1, 2)]
    )
    lum = _fbm(lw, lh, lm / 3.0, 4, seed, persistence=0.55).copy_memory()
    tint = _fbm(lw, lh, lm / 2.0, 2, seed + 5000)
    base = grad + lum * 60.0 + tint.bandjoin([tint * -1.0, tint * 0.5]) * 25.0
    region = _smoothstep(_fbm(lw, lh, lm / 4.0, 2, seed + 7000), -0.35, 0.15)

    # Shapes ("objects"), drawn at 1/4 scale; upscaling softens their edges like optics do.
    shapes = pyvips.Image.black(lw, lh, bands=3)
    mask = pyvips.Image.black(lw, lh)
    for i in range(rnd.randint(30, 60)):
        colour = [rnd.uniform(0, 255) for _ in range(3)]
        big = i < 8
        if rnd.random() < 0.6:
            cx, cy = rnd.randrange(lw), rnd.randrange(lh)
            r = rnd.randint(lm // 30, lm // 6) if big else rnd.randint(2, max(3, lm // 60))
            shapes = shapes.draw_circle(colour, cx, cy, r, fill=True)
            mask = mask.draw_circle([255], cx, cy, r, fill=True)
        else:
            x, y = rnd.randrange(lw), rnd.randrange(lh)
            if big:
                rw, rh = rnd.randint(lm // 20, lm // 4), rnd.randint(lm // 20, lm // 4)
            else:
                rw, rh = rnd.randint(2, max(3, lm // 40)), rnd.randint(2, max(3, lm // 40))
            shapes = shapes.draw_rect(colour, x, y, rw, rh, fill=True)
            mask = mask.draw_rect([255], x, y, rw, rh, fill=True)
    mask = mask / 255.0
    base = base * (1.0 - mask * 0.75) + shapes * 0.75 + lum * 40.0 * mask
    region = region * (1.0 - mask * 0.5)

    def up(img):
        img = img.copy_memory()
        return img.resize(w / lw, vscale=h / lh, kernel="linear").crop(0, 0, w, h)

    base = up(base)
    region = up(region)
    mask = up(mask)

    # Full-resolution texture: luma octaves + blurred noise; independent chroma detail.
    fine = _fbm(w, h, 32, 4, seed + 3000, persistence=0.8)
    noise = pyvips.Image.gaussnoise(w, h, sigma=1.0, mean=0.0, seed=seed + 13).copy_memory()
    speckle = noise.gaussblur(0.7, precision="float")
    hw, hh = (w + 1) // 2, (h + 1) // 2
    cnoise = pyvips.Image.gaussnoise(hw, hh, sigma=1.0, mean=0.0, seed=seed + 17).bandjoin(
        pyvips.Image.gaussnoise(hw, hh, sigma=1.0, mean=0.0, seed=seed + 19)
    )
    cnoise = cnoise.resize(2, kernel="linear").crop(0, 0, w, h)
    cfine = _fbm(w, h, 16, 3, seed + 4000, persistence=0.8).bandjoin(
        _fbm(w, h, 16, 3, seed + 4500, persistence=0.8)
    )
    chroma = (cnoise * 0.5 + cfine) * region * (detail_amp * chroma_amp)
    luma = (fine * 0.6 + speckle * 1.2) * region * detail_amp
    detail = (luma + chroma[0]).bandjoin(
        [luma * 0.9 - chroma[0] * 0.5 + chroma[1], luma * 0.75 - chroma[1]]
    )
    img = base + detail
    if grain > 0:
        img = img + noise * grain
    return img.cast("uchar").copy(interpretation="srgb")


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _ensure_jpeg(path: Path, w: int, h: int, seed: int) -> tuple[CorpusFile, bool]:
    made = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.jpg")
        photo(w, h, seed).jpegsave(str(tmp), Q=JPEG_Q, keep="none")
        os.replace(tmp, path)
        made = True
    return CorpusFile(path, w, h, path.stat().st_size), made


def ensure_corpus(
    out: Path = DEFAULT_DIR, *, set_count: int = 100, log=print
) -> tuple[CorpusFile, list[CorpusFile]]:
    """(the 6000x4000 photo, `set_count` 2000x1500 photos), generating what is missing."""
    t0 = time.perf_counter()
    big, made = _ensure_jpeg(out / "photo_6000x4000.jpg", 6000, 4000, 1)
    made_count = int(made)
    files = []
    for i in range(set_count):
        f, made = _ensure_jpeg(out / "set" / f"img_{i:03d}.jpg", 2000, 1500, 100 + i)
        files.append(f)
        made_count += int(made)
    if made_count:
        with open(out / "MANIFEST.txt", "w") as fh:
            fh.write(f"# pyvips {pyvips.__version__}, libvips {libvips_version()}, Q{JPEG_Q}\n")
            for f in [big, *files]:
                name = f.path.relative_to(out)
                fh.write(f"{name}\t{f.width}x{f.height}\t{f.size}\t{_md5(f.path)}\n")
    log(
        f"corpus in {out}: {made_count} generated, {1 + set_count - made_count} cached "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    return big, files


def libvips_version() -> str:
    return f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
