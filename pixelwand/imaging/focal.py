"""What an image's pixels say about it: focal point, placeholders, dominant colour.

One shrink-on-load decode to a small thumbnail (~80 ms for a 12 MP JPEG, the cost of the
whole step) feeds everything:

- focal point: libvips' attention (the smartcrop that `gravity=attention` uses: edges,
  skin tones and saturated colour, blurred), read as its `attention_x/y` centre on a
  FOCAL_SIDE thumbnail; stored as fractions of the upright image;
- thumbhash (standard base64) from a THUMBHASH_SIDE thumbnail with alpha, through
  `fast-thumbhash` (the ThumbHash author's Rust crate; the pure-Python `thumbhash` 0.1.2
  raised TypeError on every image with transparency);
- blurhash (4x3 components) from a BLURHASH_SIDE RGB thumbnail, through blurhash-python's C
  encoder (< 1 ms; the pure-Python `blurhash` takes ~5 ms);
- dominant colour: the most populated cell of a 8x8x8 RGB grid over the blurhash thumbnail,
  averaged (a mean colour of a red subject on blue sky is a purple that is in neither); of
  its visible pixels only, when it has transparency;
- a featureless (flat) image has its focal point in the centre.

Blocking; run it off the event loop.
"""

from __future__ import annotations

import base64
import dataclasses
from collections import Counter
from pathlib import Path

import pyvips

from pixelwand.imaging.errors import UndecodableImage
from pixelwand.imaging.pipeline import check_source

FOCAL_SIDE = 192
# The encoder keeps at most 7 DCT terms a side, and it is pure Python (its time grows with
# the pixels: ~45 ms at 32 px, ~15 ms at 20 px): 20 px sample each term's wave 3 times over.
THUMBHASH_SIDE = 20
BLURHASH_SIDE = 32
BLURHASH_COMPONENTS = (4, 3)


@dataclasses.dataclass(frozen=True, slots=True)
class ImageFacts:
    thumbhash: str
    blurhash: str
    dominant_color: str
    focal: tuple[float, float]


def image_facts(source: Path, *, source_mime: str, max_pixels: int) -> ImageFacts:
    """Facts of an image file; UndecodableImage / ImageTooLarge when there are none."""
    try:
        colour_managed = check_source(source, source_mime, max_pixels)
        options: dict[str, object] = {"height": FOCAL_SIDE, "size": "down"}
        if colour_managed:
            options["output_profile"] = "srgb"
        thumb = pyvips.Image.thumbnail_source(
            pyvips.Source.new_from_file(str(source)),
            FOCAL_SIDE,
            option_string="fail_on=error",
            **options,
        )
        thumb = _srgb(thumb).copy_memory()  # decoded once, read by every step below
        small = _blurhash_pixels(thumb).copy_memory()
        return ImageFacts(
            thumbhash=thumbhash_of(thumb),
            blurhash=blurhash_of(small),
            dominant_color=dominant_color_of(thumb),
            focal=attention_point(thumb),
        )
    except pyvips.Error:
        raise UndecodableImage() from None


def _srgb(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB with 3 bands, or 4 with alpha."""
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.bands == 2:  # grey + alpha after a colourspace that kept it
        image = image[0].bandjoin([image[0], image[0], image[1]])
    elif image.bands == 1:
        image = image.bandjoin([image, image])
    return image


def _opaque(image: pyvips.Image) -> pyvips.Image:
    return image.flatten(background=[255, 255, 255]) if image.hasalpha() else image


def attention_point(image: pyvips.Image) -> tuple[float, float]:
    """The centre of attention of an 8-bit sRGB image, as fractions (0-1) of its sides."""
    image = _opaque(image)
    if image.width < 4 or image.height < 4 or _flat(image):
        return (0.5, 0.5)  # too small, or featureless: smartcrop would answer its top left
    _, found = image.smartcrop(
        max(1, image.width // 2),
        max(1, image.height // 2),
        interesting="attention",
        attention_x=True,
        attention_y=True,
    )
    x = (found["attention_x"] + 0.5) / image.width
    y = (found["attention_y"] + 0.5) / image.height
    return (round(min(max(x, 0.0), 1.0), 4), round(min(max(y, 0.0), 1.0), 4))


# An image whose every band deviates less than this (levels, standard deviation) is flat: a
# lossy encoder's ripples on one colour (1.3 in a WebP at Q 50 here) are not a subject; a
# photo's are 4-20.
FLAT_DEVIATION = 2.0


def _flat(image: pyvips.Image) -> bool:
    """Featureless: every band within FLAT_DEVIATION (the image is in memory)."""
    return all(image[b].deviate() < FLAT_DEVIATION for b in range(image.bands))


def thumbhash_of(image: pyvips.Image) -> str:
    from fast_thumbhash import rgba_to_thumb_hash

    small = image.thumbnail_image(THUMBHASH_SIDE, height=THUMBHASH_SIDE)  # ThumbHash: <= 100 px
    if not small.hasalpha():
        small = small.bandjoin(255)
    small = small.cast("uchar")
    hashed = rgba_to_thumb_hash(small.width, small.height, bytes(small.write_to_memory()))
    return base64.b64encode(bytes(hashed)).decode()


def _blurhash_pixels(image: pyvips.Image) -> pyvips.Image:
    """Opaque RGB, at most BLURHASH_SIDE on a side (unchanged when it already is)."""
    if max(image.width, image.height) > BLURHASH_SIDE:
        image = image.thumbnail_image(BLURHASH_SIDE, height=BLURHASH_SIDE)
    return _opaque(image).cast("uchar")


def blurhash_of(image: pyvips.Image) -> str:
    """Through blurhash-python's C encoder, given the RGB bytes directly: its `encode` wants
    a Pillow image and copies it pixel by pixel through Pillow's deprecated `getdata`."""
    import blurhash

    small = _blurhash_pixels(image)
    data = bytes(small.write_to_memory())
    lib = getattr(getattr(blurhash, "_functions", None), "lib", None)
    if lib is None:  # another packaging of the module: its public, Pillow-based encoder
        from PIL import Image

        pil = Image.frombytes("RGB", (small.width, small.height), data)
        return str(blurhash.encode(pil, *BLURHASH_COMPONENTS))
    ffi = blurhash._functions.ffi
    destination = ffi.new("char[]", 2 + 4 + (9 * 9 - 1) * 2 + 1)
    result = lib.create_hash_from_pixels(
        BLURHASH_COMPONENTS[0],
        BLURHASH_COMPONENTS[1],
        small.width,
        small.height,
        ffi.from_buffer("uint8_t[]", data),
        small.width * 3,
        destination,
    )
    if result == ffi.NULL:
        raise UndecodableImage()
    return str(ffi.string(result).decode())


def dominant_color_of(image: pyvips.Image) -> str:
    """Of the visible pixels (alpha at least half) when there are any: a transparent
    background is not a colour of the image (flattened, it would count as white)."""
    pixels: list[bytes] = []
    if image.hasalpha():
        small = image
        if max(image.width, image.height) > BLURHASH_SIDE:
            small = image.thumbnail_image(BLURHASH_SIDE, height=BLURHASH_SIDE)
        rgba = bytes(small.cast("uchar").write_to_memory())
        step = small.bands
        pixels = [rgba[i : i + 3] for i in range(0, len(rgba), step) if rgba[i + step - 1] >= 128]
    if not pixels:  # opaque, or nothing visible: the opaque RGB pixels
        data = bytes(_blurhash_pixels(image).write_to_memory())
        pixels = [data[i : i + 3] for i in range(0, len(data), 3)]
    cells = Counter((p[0] >> 5, p[1] >> 5, p[2] >> 5) for p in pixels)
    cell, _ = cells.most_common(1)[0]
    members = [p for p in pixels if (p[0] >> 5, p[1] >> 5, p[2] >> 5) == cell]
    r, g, b = (round(sum(p[c] for p in members) / len(members)) for c in range(3))
    return f"#{r:02x}{g:02x}{b:02x}"
