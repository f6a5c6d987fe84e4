"""Inputs made with pyvips at test time (no binary fixtures), and a decoder for outputs."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import pytest
import pyvips


class Images:
    """Builders for test inputs and checks on outputs. Colours are (r, g, b) tuples, 0-255."""

    RED = (220, 20, 30)
    GREEN = (20, 200, 40)
    BLUE = (30, 40, 210)
    WHITE = (255, 255, 255)

    @staticmethod
    def solid(width: int, height: int, colour: Sequence[int] = (220, 20, 30)) -> pyvips.Image:
        image = pyvips.Image.black(width, height, bands=len(colour)) + list(colour)
        interpretation = "srgb" if len(colour) >= 3 else "b-w"
        return image.cast("uchar").copy(interpretation=interpretation)

    @classmethod
    def stripes(cls, width: int, height: int, colours: Sequence[Sequence[int]]) -> pyvips.Image:
        """Vertical stripes of equal width, left to right."""
        step = width // len(colours)
        image = cls.solid(width, height, colours[-1])
        for i, colour in enumerate(colours[:-1]):
            image = image.draw_rect(list(colour), i * step, 0, step, height, fill=True)
        return image

    @staticmethod
    def noise(width: int, height: int) -> pyvips.Image:
        """Incompressible content, so that a truncated file loses most of its pixels."""
        bands = [pyvips.Image.gaussnoise(width, height, mean=128, sigma=50) for _ in range(3)]
        return bands[0].bandjoin(bands[1:]).cast("uchar").copy(interpretation="srgb")

    @staticmethod
    def encode(image: pyvips.Image, suffix: str, **options: object) -> bytes:
        return image.write_to_buffer(suffix, **options)

    @staticmethod
    def decode(data: bytes) -> pyvips.Image:
        """Decode fully (random access), so assertions can read any pixel."""
        return pyvips.Image.new_from_buffer(data, "").copy_memory()

    @staticmethod
    def near(pixel: Sequence[float], colour: Sequence[int], tolerance: int = 12) -> bool:
        """Every channel within `tolerance` (lossy codecs move colours a little)."""
        return len(pixel) >= len(colour) and all(
            abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False)
        )

    # --- hostile inputs -------------------------------------------------------------------

    @staticmethod
    def png_declaring(width: int, height: int) -> bytes:
        """A ~100-byte PNG whose header declares widthxheight RGB pixels (one row of data)."""

        def chunk(kind: bytes, payload: bytes) -> bytes:
            body = kind + payload
            return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        idat = zlib.compress(b"\0" + bytes(width * 3), 9)
        return (
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
        )

    @classmethod
    def jpeg_declaring(cls, width: int, height: int) -> bytes:
        """A small real JPEG with its frame header (SOF0) patched to declare widthxheight."""
        data = bytearray(cls.encode(cls.solid(16, 16), ".jpg", keep="none"))
        sof = data.index(b"\xff\xc0")
        struct.pack_into(">HH", data, sof + 5, height, width)
        return bytes(data)

    @classmethod
    def gif_declaring(cls, width: int, height: int) -> bytes:
        """A small real GIF whose screen and first image descriptor declare widthxheight."""
        data = bytearray(cls.encode(cls.solid(16, 16), ".gif"))
        struct.pack_into("<HH", data, 6, width, height)
        flags = data[10]
        table = 3 * (2 ** ((flags & 0x07) + 1)) if flags & 0x80 else 0
        pos = 13 + table
        while data[pos] == 0x21:  # skip extension blocks up to the image descriptor
            pos += 2
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        assert data[pos] == 0x2C
        struct.pack_into("<HH", data, pos + 5, width, height)
        return bytes(data)

    @staticmethod
    def heic_container(width: int = 64, height: int = 48) -> bytes:
        """A well-formed HEIF file holding one HEVC-coded ('hvc1') item.

        The coded data is a stub: libheif parses everything up to choosing a decoder, which is
        as far as a real HEIC would get with a libvips that has no HEVC decoder.
        """

        def box(kind: bytes, payload: bytes = b"") -> bytes:
            return struct.pack(">I4s", 8 + len(payload), kind) + payload

        def full_box(kind: bytes, version: int, payload: bytes) -> bytes:
            return box(kind, struct.pack(">I", version << 24) + payload)

        coded = b"\x00\x00\x00\x02\x26\x01"
        hvcc = (
            bytes([1, 0x01])
            + struct.pack(">I", 0x60000000)
            + bytes(6)
            + bytes([90])
            + struct.pack(">H", 0xF000)
            + bytes([0xFC, 0xFD, 0xF8, 0xF8])
            + struct.pack(">H", 0)
            + bytes([0x0F, 0])
        )
        ftyp = box(b"ftyp", b"heic" + bytes(4) + b"mif1heic")

        def meta(data_offset: int) -> bytes:
            hdlr = full_box(b"hdlr", 0, bytes(4) + b"pict" + bytes(12) + b"\0")
            pitm = full_box(b"pitm", 0, struct.pack(">H", 1))
            extent = struct.pack(">HHHHII", 1, 1, 0, 1, data_offset, len(coded))
            iloc = full_box(b"iloc", 0, bytes([0x44, 0x00]) + extent)
            infe = full_box(b"infe", 2, struct.pack(">HH", 1, 0) + b"hvc1\0")
            iinf = full_box(b"iinf", 0, struct.pack(">H", 1) + infe)
            ispe = full_box(b"ispe", 0, struct.pack(">II", width, height))
            ipco = box(b"ipco", box(b"hvcC", hvcc) + ispe)
            ipma = full_box(b"ipma", 0, struct.pack(">IHB", 1, 1, 2) + bytes([0x81, 0x02]))
            return full_box(b"meta", 0, hdlr + pitm + iloc + iinf + box(b"iprp", ipco + ipma))

        data_offset = len(ftyp) + len(meta(0)) + 8
        return ftyp + meta(data_offset) + box(b"mdat", coded)


@pytest.fixture(scope="session")
def images() -> type[Images]:
    return Images
