"""A seeded generator of hostile image files: the same seed gives the same bytes.

Families, for every accepted input format (PNG, JPEG, WEBP, GIF, TIFF, AVIF):

- bombs: small files whose headers declare huge canvases (header fields rewritten, checksums
  fixed where the format has them), and real, highly compressed extreme shapes (the issue's
  10,000,000 x 10 RGBA16 PNG and its kin, written row by row through zlib without ever
  holding the pixels);
- extreme shapes and bit depths: 1-pixel lines, 16-bit, float and 1-bit samples, grey with
  alpha, CMYK, palettes, interlaced/progressive encodings;
- truncations of valid files at seeded offsets;
- mutations of valid files: seeded byte flips, and header fields set to edge values.

`hostile_media(seed)` returns `Case(name, data, mime)` items; tests/imaging/test_hostile_media.py
renders every one through export-url and a ZIP export in a subprocess and asserts its peak
RSS. Run this module to write the cases to a directory for manual runs:
`python -m tests.imaging.hostile_media OUT_DIR [SEED]`.
"""

from __future__ import annotations

import dataclasses
import random
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pyvips

MIME_BY_FORMAT = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "tiff": "image/tiff",
    "avif": "image/avif",
}


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    mime: str

    @property
    def extension(self) -> str:
        return {"image/jpeg": "jpg", "image/tiff": "tif"}.get(self.mime, self.mime.split("/")[1])


# --- valid seeds --------------------------------------------------------------------------


def _picture(width: int, height: int, bands: int = 3, seed: int = 0) -> pyvips.Image:
    """Structured content (gradients and noise), so encoders do real work."""
    x = pyvips.Image.xyz(width, height)
    planes = [
        (x[0] * 255 / max(width - 1, 1)),
        (x[1] * 255 / max(height - 1, 1)),
        pyvips.Image.gaussnoise(width, height, mean=128, sigma=40, seed=seed),
        (x[0] + x[1]) % 256,
    ]
    image = planes[0].bandjoin(planes[1:bands]) if bands > 1 else planes[0]
    interpretation = "srgb" if bands >= 3 else "b-w"
    return image.cast("uchar").copy(interpretation=interpretation)


def valid_files() -> dict[str, bytes]:
    """One small valid file per format and notable encoding (the material for mutations)."""
    rgb = _picture(96, 64)
    rgba = _picture(96, 64, 4)
    out = {
        "png": rgb.pngsave_buffer(),
        "png-rgba-interlaced": rgba.pngsave_buffer(interlace=True),
        "png-palette": rgb.pngsave_buffer(palette=True),
        "jpeg": rgb.jpegsave_buffer(Q=80),
        "jpeg-progressive": rgb.jpegsave_buffer(Q=80, interlace=True),
        "webp": rgb.webpsave_buffer(Q=80),
        "webp-lossless-alpha": rgba.webpsave_buffer(lossless=True),
        "gif": rgb.gifsave_buffer(),
        "tiff": rgb.tiffsave_buffer(),
        "tiff-deflate-alpha": rgba.tiffsave_buffer(compression="deflate"),
        "avif": rgb.heifsave_buffer(Q=50, compression="av1", effort=0),
    }
    return out


def _format_of(name: str) -> str:
    return name.split("-", 1)[0]


# --- bombs: headers that declare huge canvases ---------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_shape(width: int, height: int, bit_depth: int, colour_type: int) -> bytes:
    """A real PNG of zero-valued pixels of any shape, written row by row (never held whole)."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row_bytes = (width * channels * bit_depth + 7) // 8
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    # Every row is the same zeros: deflate one row from a fresh compressor, ending in a full
    # flush (no reference reaches across it), and repeat its bytes: a valid zlib stream made
    # in milliseconds instead of compressing every row.
    row = bytes(row_bytes + 1)  # the filter byte, then the row
    if len(row) < 4096:  # narrow: the whole stream is small enough to deflate as usual
        rows_per_chunk = max(1, (1 << 20) // len(row))
        compressor = zlib.compressobj(9)
        parts = [
            compressor.compress(row * min(rows_per_chunk, height - done))
            for done in range(0, height, rows_per_chunk)
        ]
        return _png(ihdr, b"".join(parts) + compressor.flush(), colour_type)
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = raw.compress(row) + raw.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(height):
        checksum = zlib.adler32(row, checksum)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    idat = b"\x78\xda" + block * height + end + struct.pack(">I", checksum)
    return _png(ihdr, idat, colour_type)


def _png(ihdr: bytes, idat: bytes, colour_type: int) -> bytes:
    plte = _png_chunk(b"PLTE", bytes(3)) if colour_type == 3 else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + plte
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def png_declaring(data: bytes, width: int, height: int, bit_depth: int, colour_type: int) -> bytes:
    """A valid PNG's IHDR rewritten (CRC fixed): the header lies, the pixel data is tiny."""
    assert data[12:16] == b"IHDR"
    ihdr = bytearray(data[16:29])
    struct.pack_into(">IIBB", ihdr, 0, width, height, bit_depth, colour_type)
    return data[:16] + bytes(ihdr) + _crc(b"IHDR", ihdr) + data[33:]


def _crc(kind: bytes, body: bytes | bytearray) -> bytes:
    return struct.pack(">I", zlib.crc32(kind + bytes(body)))


def jpeg_declaring(data: bytes, width: int, height: int) -> bytes:
    """The SOFn segment's dimensions rewritten."""
    i = 2
    while i < len(data) - 9:
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            out = bytearray(data)
            struct.pack_into(">HH", out, i + 5, height, width)
            return bytes(out)
        i += 2 + length
    raise ValueError("no SOF segment")


def gif_declaring(data: bytes, width: int, height: int) -> bytes:
    """Logical screen and first image descriptor rewritten."""
    out = bytearray(data)
    struct.pack_into("<HH", out, 6, width, height)
    j = out.find(b"\x2c", 13)
    if j > 0:
        struct.pack_into("<HH", out, j + 5, width, height)
    return bytes(out)


def webp_declaring(data: bytes, width: int, height: int) -> bytes:
    """The VP8 frame header's 14-bit dimensions (and a VP8X canvas, where present)."""
    out = bytearray(data)
    j = out.find(b"VP8 ")
    if j > 0:
        struct.pack_into("<HH", out, j + 8 + 6, width & 0x3FFF, height & 0x3FFF)
    k = out.find(b"VP8X")
    if k > 0:
        w, h = width - 1, height - 1
        out[k + 12 : k + 18] = bytes(
            [w & 255, (w >> 8) & 255, (w >> 16) & 255, h & 255, (h >> 8) & 255, (h >> 16) & 255]
        )
    return bytes(out)


def tiff_declaring(data: bytes, width: int, height: int) -> bytes:
    """ImageWidth/ImageLength (and RowsPerStrip) of the first IFD rewritten."""
    out = bytearray(data)
    endian = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(endian + "I", data[4:8])
    (count,) = struct.unpack(endian + "H", data[ifd : ifd + 2])
    for n in range(count):
        at = ifd + 2 + 12 * n
        tag, kind = struct.unpack(endian + "HH", data[at : at + 4])
        value = {256: width, 257: height, 278: height}.get(tag)
        if value is None:
            continue
        if kind == 3:  # SHORT
            struct.pack_into(endian + "H", out, at + 8, min(value, 65535))
        elif kind == 4:  # LONG
            struct.pack_into(endian + "I", out, at + 8, value)
    return bytes(out)


def avif_declaring(data: bytes, width: int, height: int) -> bytes:
    """Every `ispe` box (image spatial extents) rewritten."""
    out = bytearray(data)
    j = out.find(b"ispe")
    while j > 0:
        struct.pack_into(">II", out, j + 8, width, height)
        j = out.find(b"ispe", j + 4)
    return bytes(out)


def header_bombs(valid: dict[str, bytes]) -> Iterator[Case]:
    huge = [(60_000, 60_000), (10_000_000, 10), (1_081_440, 64), (25_000_000, 4), (10, 10_000_000)]
    for w, h in huge:
        yield Case(
            f"png-header-{w}x{h}-rgba16", png_declaring(valid["png"], w, h, 16, 6), "image/png"
        )
        yield Case(
            f"png-header-{w}x{h}-grey8", png_declaring(valid["png"], w, h, 8, 0), "image/png"
        )
    for w, h in [(65_500, 65_500), (65_500, 8), (8, 65_500)]:
        yield Case(f"jpeg-header-{w}x{h}", jpeg_declaring(valid["jpeg"], w, h), "image/jpeg")
        yield Case(
            f"jpeg-progressive-header-{w}x{h}",
            jpeg_declaring(valid["jpeg-progressive"], w, h),
            "image/jpeg",
        )
    for w, h in [(65_535, 65_535), (65_535, 1), (1, 65_535)]:
        yield Case(f"gif-header-{w}x{h}", gif_declaring(valid["gif"], w, h), "image/gif")
    for w, h in [(16_383, 16_383), (16_383, 1)]:
        yield Case(f"webp-header-{w}x{h}", webp_declaring(valid["webp"], w, h), "image/webp")
        yield Case(
            f"webp-lossless-header-{w}x{h}",
            webp_declaring(valid["webp-lossless-alpha"], w, h),
            "image/webp",
        )
    for w, h in [(1_000_000, 1_000_000), (10_000_000, 10), (60_000, 60_000)]:
        yield Case(f"tiff-header-{w}x{h}", tiff_declaring(valid["tiff"], w, h), "image/tiff")
    for w, h in [(65_536, 65_536), (1_000_000, 8)]:
        yield Case(f"avif-header-{w}x{h}", avif_declaring(valid["avif"], w, h), "image/avif")


def shape_bombs(scale: int = 1) -> Iterator[Case]:
    """Real files of extreme shapes (the issue's), highly compressed. `scale` divides widths
    (the tests use the full sizes; a quick manual run may not)."""
    shapes = [
        ("png-10000000x10-rgba16", 10_000_000, 10, 16, 6),
        ("png-1081440x64-rgba16", 1_081_440, 64, 16, 6),
        ("png-25000000x4-grey8", 25_000_000, 4, 8, 0),
        ("png-4x2500000-grey8", 4, 2_500_000, 8, 0),
        ("png-300000x10-rgba16", 300_000, 10, 16, 6),
        # Near a 256 MiB budget, on both sides of it: what renders must stay within it.
        ("png-120000x10-rgba16", 120_000, 10, 16, 6),
        ("png-150000x16-grey8", 150_000, 16, 8, 0),
        ("png-200000x16-grey8", 200_000, 16, 8, 0),
        ("png-16000x6000-rgb8", 16_000, 6_000, 8, 2),
        ("png-8000x8000-rgba16", 8_000, 8_000, 16, 6),
    ]
    for name, w, h, depth, colour in shapes:
        yield Case(name, png_shape(max(1, w // scale), h, depth, colour), "image/png")


# --- extreme shapes and depths, valid ---------------------------------------------------


def odd_files() -> Iterator[Case]:
    line = _picture(20_000, 1)
    column = _picture(1, 20_000)
    yield Case("png-20000x1", line.pngsave_buffer(), "image/png")
    yield Case("png-1x20000", column.pngsave_buffer(), "image/png")
    yield Case("jpeg-20000x1", line.jpegsave_buffer(), "image/jpeg")
    yield Case("webp-16383x1", _picture(16_383, 1).webpsave_buffer(), "image/webp")
    rgb16 = (_picture(256, 128).cast("ushort") * 257).copy(interpretation="rgb16")
    yield Case("png-rgb16", rgb16.pngsave_buffer(), "image/png")
    yield Case("tiff-rgb16", rgb16.tiffsave_buffer(), "image/tiff")
    grey_alpha16 = (_picture(128, 128, 2).cast("ushort") * 257).copy(interpretation="grey16")
    yield Case("png-grey-alpha16", grey_alpha16.pngsave_buffer(), "image/png")
    floats = (_picture(128, 96).cast("float") / 255).copy(interpretation="scrgb")
    yield Case("tiff-float", floats.tiffsave_buffer(), "image/tiff")
    yield Case("tiff-1bit", _picture(128, 96, 1).tiffsave_buffer(bitdepth=1), "image/tiff")
    cmyk = _picture(96, 64, 4).copy(interpretation="cmyk")
    yield Case("jpeg-cmyk", cmyk.jpegsave_buffer(), "image/jpeg")
    yield Case("tiff-cmyk", cmyk.tiffsave_buffer(), "image/tiff")
    yield Case("gif-1x1", _picture(1, 1).gifsave_buffer(), "image/gif")


# --- truncations and mutations ----------------------------------------------------------


def truncations(valid: dict[str, bytes], rng: random.Random) -> Iterator[Case]:
    for name, data in valid.items():
        cuts = sorted({8, 32, len(data) // 2, *(rng.randrange(1, len(data)) for _ in range(2))})
        for cut in cuts:
            yield Case(f"{name}-cut-{cut}", data[:cut], MIME_BY_FORMAT[_format_of(name)])


def mutations(valid: dict[str, bytes], rng: random.Random, per_file: int) -> Iterator[Case]:
    for name, data in valid.items():
        mime = MIME_BY_FORMAT[_format_of(name)]
        for n in range(per_file):
            out = bytearray(data)
            # Magic bytes stay, so the files reach the decoders rather than the sniffer.
            for _ in range(rng.choice((1, 2, 4, 16))):
                at = rng.randrange(12, len(out))
                out[at] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
            yield Case(f"{name}-flip-{n}", bytes(out), mime)


def hostile_media(seed: int = 11, *, per_file: int = 4, shape_scale: int = 1) -> list[Case]:
    """Every case, deterministically for `seed`."""
    rng = random.Random(seed)
    valid = valid_files()
    cases = [
        Case(f"{name}-valid", data, MIME_BY_FORMAT[_format_of(name)])
        for name, data in valid.items()
    ]
    cases += list(header_bombs(valid))
    cases += list(shape_bombs(shape_scale))
    cases += list(odd_files())
    cases += list(truncations(valid, rng))
    cases += list(mutations(valid, rng, per_file))
    return cases


if __name__ == "__main__":
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    for case in hostile_media(int(sys.argv[2]) if len(sys.argv) > 2 else 11):
        (out_dir / f"{case.name}.{case.extension}").write_bytes(case.data)
