"""Media intelligence benchmark: facts, posters and smart crops against their baselines.

    make bench-media      # = .venv/bin/python bench/bench_media.py

Two servers are started as a user would (`pixelwand migrate`, `pixelwand serve --no-migrate`,
SQLite + local disk in a temporary directory), one with the facts worker off
(PIXELWAND_FACTS_WORKER=0, the baseline: finalize as before facts existed) and one with it on.

1. finalize p50 of a 12 MP JPEG (4000x3000, ~3-4 MB), worker off vs on. With the worker on,
   each finalize is followed by polling the asset until its facts are filled, which gives
2. the time from the finalize answer to facts filled (p50), polled every 10 ms.
3. Poster of a generated 12 s 1080p H.264 clip at ~6 Mbps, keyframe every 2 s (PyAV's libx264
   encoder): export-url with a new `posterAt` each time (uncached), default JPEG output.
4. export-url with `gravity=attention` against the centre crop of the same 12 MP JPEG, each
   request a new size (uncached), preserveAspect false.

Timed loops have fixed counts; nothing asserts on time. Prints a markdown report and writes it
into docs/benchmarks.md under "## Media intelligence" (the rest of the file is kept).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyvips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.procfs import free_port  # noqa: E402

BIN = Path(sys.executable).parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Media intelligence"
API_KEY = re.compile(r"^ak_live_[A-Za-z0-9]{32,}$")


def photo_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    """Photo-like: smooth gradients, noise, and an off-centre subject."""
    x = pyvips.Image.xyz(width, height)
    noise = pyvips.Image.gaussnoise(width, height, mean=0, sigma=12)
    r = (x[0] * 200 / width + noise).cast("uchar")
    g = (x[1] * 200 / height + noise).cast("uchar")
    b = (((x[0] + x[1]) * 120 / (width + height)) + 60 + noise).cast("uchar")
    image = r.bandjoin([g, b]).copy(interpretation="srgb")
    disc = ((x[0] - width * 0.25) ** 2 + (x[1] - height * 0.3) ** 2) < (height * 0.12) ** 2
    return disc.ifthenelse([220, 40, 30], image).jpegsave_buffer(Q=90)


def clip_1080p(seconds: int = 12, fps: int = 30, bitrate: int = 6_000_000) -> bytes:
    import av

    width, height = 1920, 1080
    # Photo-like pixels (gradients, texture), computed once; each frame scrolls them.
    x = pyvips.Image.xyz(width, height)
    noise = pyvips.Image.gaussnoise(width, height, mean=0, sigma=20)
    base = (
        (x[0] * 255 / width + noise)
        .bandjoin([x[1] * 255 / height + noise, (x[0] + x[1]) % 256])
        .cast("uchar")
        .copy(interpretation="srgb")
        .copy_memory()
    )
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bitrate
        stream.codec_context.gop_size = 2 * fps
        stream.options = {"preset": "ultrafast", "sc_threshold": "0"}
        for i in range(seconds * fps):
            shifted = base.wrap(x=i * 8, y=i * 3)
            frame = av.VideoFrame(width, height, "rgb24")
            data = bytes(shifted.write_to_memory())
            assert frame.planes[0].line_size == width * 3
            frame.planes[0].update(data)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


@contextlib.contextmanager
def server(tmp: Path, *, facts: bool) -> Iterator[httpx.Client]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env.update(
        PIXELWAND_DATA_DIR=str(tmp),
        PIXELWAND_PORT=str(port),
        PIXELWAND_SECRET_KEY="bench-media",
        PIXELWAND_PLAN_TEAM_RPS="10000",
        PIXELWAND_PLAN_TEAM_QUOTA_BYTES=str(1 << 40),
        PIXELWAND_SWEEP_INTERVAL_SECONDS="0",
        PIXELWAND_FACTS_WORKER="1" if facts else "0",
    )
    subprocess.run([BIN / "pixelwand", "migrate"], env=env, check=True, capture_output=True)
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [BIN / "pixelwand", "serve", "--no-migrate"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        key = next(ln.strip() for ln in log.read_text().splitlines() if API_KEY.match(ln.strip()))
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as client:
            yield client
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def upload(client: httpx.Client, data: bytes, name: str, mime: str) -> tuple[str, float]:
    """(asset id, seconds the finalize request took)."""
    r = client.post(
        "/api/v1/assets",
        json={"mode": "presign", "originalName": name, "mimeType": mime, "size": len(data)},
    )
    r.raise_for_status()
    ticket = r.json()
    httpx.put(ticket["uploadUrl"], content=data, headers=ticket["headers"]).raise_for_status()
    body = {
        "mode": "finalize",
        "originalName": name,
        "mimeType": mime,
        "size": len(data),
        "storageKey": ticket["storageKey"],
    }
    began = time.perf_counter()
    r = client.post("/api/v1/assets", json=body)
    took = time.perf_counter() - began
    assert r.status_code == 201, r.text
    return r.json()["id"], took


def wait_facts(client: httpx.Client, asset_id: str) -> float:
    began = time.perf_counter()
    while True:
        if client.get(f"/api/v1/assets/{asset_id}").json()["contentHash"] is not None:
            return time.perf_counter() - began
        time.sleep(0.01)


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rounds = args.rounds
    work = Path(tempfile.mkdtemp(prefix="pixelwand-bench-media-"))
    rows: list[tuple[str, str, str]] = []
    try:
        photo = photo_jpeg()
        print(f"12 MP JPEG: {len(photo) / 1e6:.1f} MB", flush=True)
        began = time.perf_counter()
        clip = clip_1080p()
        print(f"clip: {len(clip) / 1e6:.1f} MB ({time.perf_counter() - began:.0f} s)", flush=True)

        # Both servers run at once and their finalizes alternate, so that the load of this
        # shared machine weighs on the two figures alike.
        with server(work / "off", facts=False) as plain, server(work / "on", facts=True) as client:
            upload(plain, photo, "warm.jpg", "image/jpeg")
            wait_facts(client, upload(client, photo, "warm.jpg", "image/jpeg")[0])
            off, on, filled = [], [], []
            for i in range(rounds):
                off.append(upload(plain, photo, f"p{i}.jpg", "image/jpeg")[1])
                asset_id, took = upload(client, photo, f"p{i}.jpg", "image/jpeg")
                on.append(took)
                filled.append(wait_facts(client, asset_id))
            rows.append(("finalize, 12 MP JPEG, facts worker off (before facts)", ms(off), ""))
            rows.append(
                (
                    "finalize, 12 MP JPEG, facts worker on",
                    ms(on),
                    f"{statistics.median(on) / statistics.median(off) - 1:+.0%} (target ≤ +15%)",
                )
            )
            rows.append(("finalize answer → facts filled", ms(filled), "target ≤ 300 ms"))

            video_id, _ = upload(client, clip, "clip.mp4", "video/mp4")
            wait_facts(client, video_id)
            posters = []
            for i in range(rounds):
                at = f"{0.5 + (i * 0.53) % 11:.2f}"  # distinct: each one uncached
                began = time.perf_counter()
                r = client.get(f"/api/v1/assets/{video_id}/export-url", params={"posterAt": at})
                posters.append(time.perf_counter() - began)
                assert r.status_code == 200 and not r.json()["cached"], r.text
            rows.append(
                ("poster, 12 s 1080p H.264 6 Mbps, 2 s GOP, JPEG 1920x1080, uncached",
                 ms(posters), "target ≤ 150 ms")
            )  # fmt: skip

            image_id = upload(client, photo, "crop.jpg", "image/jpeg")[0]
            wait_facts(client, image_id)
            timings: dict[str, list[float]] = {"center": [], "attention": [], "focal": []}
            for i in range(rounds):
                for gravity in timings:
                    params = {
                        "format": "jpeg",
                        "maxWidth": 400 + i,
                        "maxHeight": 400,
                        "preserveAspect": "false",
                        "gravity": gravity,
                    }
                    began = time.perf_counter()
                    r = client.get(f"/api/v1/assets/{image_id}/export-url", params=params)
                    timings[gravity].append(time.perf_counter() - began)
                    assert r.status_code == 200 and not r.json()["cached"], r.text
            centre = statistics.median(timings["center"])
            for gravity in ("center", "attention", "focal"):
                ratio = statistics.median(timings[gravity]) / centre
                rows.append(
                    (
                        f"export-url 12 MP JPEG → 400x400 crop, gravity={gravity}, uncached",
                        ms(timings[gravity]),
                        f"{ratio:.2f}x centre"
                        + (" (target ≤ 1.2x)" if gravity == "attention" else ""),
                    )
                )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)

    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[1]
    lines = [
        SECTION,
        "",
        f"`make bench-media`, {stamp}, {platform.machine()}, {os.cpu_count()} cores "
        f"(5-minute load average {load:.1f} at the end: the machine is shared by other work), "
        "SQLite + local disk, "
        f"p50 of {rounds} requests each, client and server on the same machine.",
        "",
        "| measurement | p50 ms | note |",
        "|---|---:|---|",
        *(f"| {name} | {value} | {note} |" for name, value, note in rows),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
        pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
        if pattern.search(text):  # replaced where it is, so the file keeps its order
            text = pattern.sub(lambda _: report + "\n", text, count=1).rstrip() + "\n"
        else:
            text = text.rstrip() + "\n\n" + report
        DOC.write_text(text)


if __name__ == "__main__":
    main()
