"""Test helpers: real image bytes and the documented upload flow, as a client runs it."""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from collections.abc import Iterable
from typing import Any

import pyvips

from pixelwand.ids import new_id


def make_image(width: int = 64, height: int = 48, fmt: str = ".jpg", **save: Any) -> bytes:
    """A small real image with some structure (not a flat colour)."""
    x = pyvips.Image.xyz(width, height)
    r = (x[0] * 255 / max(width - 1, 1)).cast("uchar")
    g = (x[1] * 255 / max(height - 1, 1)).cast("uchar")
    b = ((x[0] + x[1]) % 256).cast("uchar")
    image = r.bandjoin([g, b]).copy(interpretation="srgb")
    return image.write_to_buffer(fmt, **save)


def make_mp4_head(size: int = 4096) -> bytes:
    """Bytes that start like an MP4 file (ftyp isom box); videos are not decoded."""
    ftyp = (24).to_bytes(4, "big") + b"ftypisom" + b"\x00\x00\x02\x00" + b"isomiso2"
    return ftyp + b"\x00" * (size - len(ftyp))


async def presign(tenant, name: str, mime: str, size: int) -> Any:
    return await tenant.post(
        "/api/v1/assets",
        json={"mode": "presign", "originalName": name, "mimeType": mime, "size": size},
    )


async def upload(
    tenant,
    data: bytes,
    filename: str = "hero.jpg",
    mime: str = "image/jpeg",
    **finalize: Any,
) -> dict[str, Any]:
    """presign → PUT → finalize; returns the finalized asset JSON."""
    r = await presign(tenant, filename, mime, len(data))
    assert r.status_code == 200, r.text
    ticket = r.json()
    put = await tenant.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
    assert put.status_code == 200, put.text
    r = await tenant.post(
        "/api/v1/assets",
        json={
            "mode": "finalize",
            "originalName": filename,
            "mimeType": mime,
            "size": len(data),
            "storageKey": ticket["storageKey"],
            **finalize,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


async def seed_assets(org_id: str, rows: list[dict[str, Any]]) -> list[str]:
    """Insert asset rows directly (setup for listing tests); returns their ids, in order."""
    from pixelwand.models import Asset, AssetTag

    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assets = []
    tags = []
    for i, row in enumerate(rows):
        asset_id = new_id()
        name = row.get("name", f"asset-{i:04d}.jpg")
        asset = Asset(
            id=asset_id,
            organization_id=org_id,
            name=name,
            original_name=row.get("original_name", name),
            size=row.get("size", 1000 + i),
            mime_type=row.get("mime_type", "image/jpeg"),
            media_type=row.get("media_type", "IMAGE"),
            storage_key=f"orgs/{org_id}/2026/01/{asset_id}-{name}",
            tags=row.get("tags", []),
            collection_id=row.get("collection_id"),
            uploaded_at=row.get("uploaded_at", base + dt.timedelta(seconds=i)),
            width=10,
            height=10,
        )
        assets.append(asset)
        tags += [AssetTag(asset_id=asset_id, organization_id=org_id, tag=t) for t in asset.tags]
    await Asset.bulk_create(assets)
    if tags:
        await AssetTag.bulk_create(tags)
    return [a.id for a in assets]


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A real 1x1 PNG whose IHDR (CRC fixed up) declares a huge canvas."""
    png = pyvips.Image.black(1, 1).cast("uchar").pngsave_buffer()
    assert png[12:16] == b"IHDR"
    ihdr = bytearray(png[16:29])
    struct.pack_into(">II", ihdr, 0, width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return png[:16] + bytes(ihdr) + crc + png[33:]


def truncated_jpeg() -> bytes:
    """The first 60% of a real 600x400 JPEG: the header is intact, the scan is not."""
    data = make_image(600, 400, ".jpg", Q=90)
    return data[: int(len(data) * 0.6)]


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def loader(image: pyvips.Image) -> str:
    """The libvips loader that read `image` (jpegload_buffer, webpload_buffer, ...)."""
    return image.get("vips-loader") if image.get_typeof("vips-loader") else ""


def make_mp4(
    seconds: float = 2.0,
    width: int = 320,
    height: int = 240,
    fps: int = 10,
    gop: int = 10,
    bitrate: int | None = None,
) -> bytes:
    """A real H.264 MP4 (PyAV's libx264): frame i is a flat grey of level (10 * i) % 256, so
    a poster tells which frame it is; a keyframe every `gop` frames."""
    import io

    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "ultrafast", "sc_threshold": "0"}
        if bitrate:
            stream.bit_rate = bitrate
        frames = (grey_frame(width, height, 10 * i) for i in range(round(seconds * fps)))
        encode_frames(container, stream, frames)
    return buffer.getvalue()


def grey_frame(width: int, height: int, level: int) -> Any:
    """A flat grey RGB video frame of `level` (mod 256)."""
    import av

    frame = av.VideoFrame(width, height, "rgb24")
    frame.planes[0].update(bytes([level % 256]) * (frame.planes[0].line_size * height))
    return frame


def encode_frames(container: Any, stream: Any, frames: Iterable[Any]) -> None:
    """Encode `frames` into `stream` (frame i at pts i) and flush the encoder into `container`."""
    for i, frame in enumerate(frames):
        frame.pts = i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def make_growing_mjpeg(
    small: tuple[int, int] = (320, 240), large: tuple[int, int] = (1600, 1200)
) -> bytes:
    """A 1 s, 10 fps Motion-JPEG MP4 whose headers declare `small` (its first frame) while
    every later frame is `large`: a video that lies about its frame size."""
    import fractions
    import io

    import av

    def jpeg(size: tuple[int, int], level: int) -> bytes:
        image = pyvips.Image.black(*size).new_from_image([level] * 3)
        return bytes(image.copy(interpretation="srgb").jpegsave_buffer(Q=50))

    tick = fractions.Fraction(1, 10)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = small[0], small[1], "yuvj420p"
        stream.time_base = tick
        for i in range(10):
            packet = av.Packet(jpeg(small, 10) if i == 0 else jpeg(large, 200))
            packet.pts = packet.dts = i
            packet.stream, packet.time_base, packet.is_keyframe = stream, tick, True
            container.mux(packet)
    return buffer.getvalue()


def subject_image(width: int, height: int, cx: float, cy: float, fmt: str = ".jpg") -> bytes:
    """Grey noise with a saturated red disc centred at (cx, cy) (fractions of the sides):
    an off-centre subject for smart crops."""
    x = pyvips.Image.xyz(width, height)
    noise = pyvips.Image.gaussnoise(width, height, mean=128, sigma=8).cast("uchar")
    image = noise.bandjoin([noise, noise]).copy(interpretation="srgb")
    radius = min(width, height) * 0.12
    disc = ((x[0] - cx * width) ** 2 + (x[1] - cy * height) ** 2) < radius**2
    return disc.ifthenelse([230, 30, 30], image).write_to_buffer(fmt, Q=90)


def redness(data: bytes) -> float:
    """How much of an image is the red subject: mean of (red - green), 0-255."""
    image = pyvips.Image.new_from_buffer(data, "")
    return float((image[0].cast("float") - image[1].cast("float")).avg())


# Filled in by the facts worker after finalize (docs/media.md), so two reads of one asset
# may differ in them; width/height too for videos.
FACT_KEYS = (
    "contentHash",
    "thumbhash",
    "blurhash",
    "dominantColor",
    "durationSeconds",
    "videoCodec",
    "frameRate",
    "focalPoint",
)


def without_facts(asset: dict[str, Any]) -> dict[str, Any]:
    """The asset JSON less what the facts worker may fill in between two reads."""
    drop = set(FACT_KEYS)
    if asset.get("mediaType") == "VIDEO":
        drop |= {"width", "height"}
    return {k: v for k, v in asset.items() if k not in drop}
