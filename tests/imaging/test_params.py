from __future__ import annotations

import dataclasses

import pytest

from pixelwand.errors import BadRequest
from pixelwand.imaging.params import (
    TransformParams,
    extension_for,
    mime_for,
    params_key,
    parse_transform,
    resolve_format,
)

# --- parse_transform --------------------------------------------------------------------


def test_defaults() -> None:
    assert parse_transform() == TransformParams(
        format=None, quality=85, max_width=None, max_height=None, preserve_aspect=True
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("jpeg", "JPEG"),
        ("JPG", "JPEG"),
        ("jpg", "JPEG"),
        ("Png", "PNG"),
        ("webp", "WEBP"),
        ("AVIF", "AVIF"),
        (" webp ", "WEBP"),
    ],
)
def test_format_any_case_and_jpg_alias(given: str, expected: str) -> None:
    assert parse_transform(format=given).format == expected


@pytest.mark.parametrize("given", ["gif", "tiff", "heic", "", "jpe g", 5])
def test_unknown_format(given: object) -> None:
    with pytest.raises(BadRequest, match=r"^format must be one of JPEG, PNG, WEBP, AVIF$"):
        parse_transform(format=given)  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "expected"), [(1, 1), (100, 100), (60, 60), ("90", 90)])
def test_quality_in_range(given: object, expected: int) -> None:
    assert parse_transform(quality=given).quality == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("given", [0, 101, -5, "abc", "", "8.5", 85.0, True])
def test_quality_out_of_range(given: object) -> None:
    with pytest.raises(BadRequest, match=r"^quality must be between 1 and 100$"):
        parse_transform(quality=given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "name"), [("max_width", "maxWidth"), ("max_height", "maxHeight")]
)
@pytest.mark.parametrize("given", [0, 16385, -1, "wide", False])
def test_dimension_out_of_range(field: str, name: str, given: object) -> None:
    with pytest.raises(BadRequest, match=rf"^{name} must be between 1 and 16384$"):
        parse_transform(**{field: given})  # type: ignore[arg-type]


def test_dimension_bounds_accepted() -> None:
    params = parse_transform(max_width=1, max_height="16384")
    assert (params.max_width, params.max_height) == (1, 16384)


@pytest.mark.parametrize("dims", [{}, {"max_width": 100}, {"max_height": 100}])
def test_crop_needs_both_dimensions(dims: dict[str, int]) -> None:
    with pytest.raises(
        BadRequest, match=r"^preserveAspect false needs both maxWidth and maxHeight$"
    ):
        parse_transform(preserve_aspect=False, **dims)  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "expected"), [(False, False), ("false", False), ("0", False)])
def test_preserve_aspect_false(given: object, expected: bool) -> None:
    params = parse_transform(max_width=10, max_height=20, preserve_aspect=given)  # type: ignore[arg-type]
    assert params.preserve_aspect is expected


@pytest.mark.parametrize("given", [True, "true", "TRUE", "1"])
def test_preserve_aspect_true(given: object) -> None:
    assert parse_transform(preserve_aspect=given).preserve_aspect is True  # type: ignore[arg-type]


@pytest.mark.parametrize("given", ["yes", "", 2, 0])
def test_preserve_aspect_not_a_boolean(given: object) -> None:
    with pytest.raises(BadRequest, match=r"^preserveAspect must be true or false$"):
        parse_transform(preserve_aspect=given)  # type: ignore[arg-type]


def test_bad_request_code_for_transports() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_transform(quality=0)
    assert caught.value.code == "BAD_REQUEST"
    assert caught.value.status == 400


def test_params_are_frozen_and_parse_alias_agrees() -> None:
    params = TransformParams.parse(format="jpg", quality=70, max_width=10)
    assert params == parse_transform(format="jpg", quality=70, max_width=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.quality = 10  # type: ignore[misc]


# --- resolve_format ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mime", "has_alpha", "expected"),
    [
        ("image/jpeg", False, "JPEG"),
        ("image/png", False, "PNG"),
        ("image/png", True, "PNG"),
        ("image/webp", True, "WEBP"),
        ("image/avif", False, "AVIF"),
        ("image/gif", True, "PNG"),
        ("image/gif", False, "JPEG"),
        ("image/tiff", True, "PNG"),
        ("image/tiff", False, "JPEG"),
    ],
)
def test_source_format_kept_unless_asked(mime: str, has_alpha: bool, expected: str) -> None:
    assert resolve_format(parse_transform(), mime, has_alpha) == expected


@pytest.mark.parametrize("mime", ["image/jpeg", "image/gif", "image/tiff"])
def test_asked_format_wins(mime: str) -> None:
    assert resolve_format(parse_transform(format="avif"), mime, True) == "AVIF"


def test_video_has_no_image_format() -> None:
    with pytest.raises(BadRequest):
        resolve_format(parse_transform(), "video/mp4", False)


# --- params_key -------------------------------------------------------------------------


def test_key_is_short_stable_hex() -> None:
    params = parse_transform(format="webp", quality=80, max_width=800, max_height=600)
    key = params_key(params, "WEBP")
    assert key == params_key(parse_transform("WEBP", "80", "800", "600", "true"), "WEBP")
    assert len(key) <= 64
    int(key, 16)
    # Pinned: a key that changed between releases would orphan every cached rendition.
    assert key == "01f91884d84dd84d952105888c139882"


def test_key_differs_for_each_parameter() -> None:
    base = dict(format="webp", quality=80, max_width=800, max_height=600, preserve_aspect=True)
    variants = [
        base,
        {**base, "quality": 81},
        {**base, "max_width": 801},
        {**base, "max_height": None},
        {**base, "max_width": None},
        {**base, "preserve_aspect": False},
        {**base, "max_width": 600, "max_height": 800},
    ]
    keys = {params_key(parse_transform(**v), "WEBP") for v in variants}  # type: ignore[arg-type]
    assert len(keys) == len(variants)
    assert params_key(parse_transform(**base), "AVIF") not in keys  # type: ignore[arg-type]


def test_key_uses_the_resolved_format() -> None:
    implicit = params_key(parse_transform(max_width=100), "JPEG")
    explicit = params_key(parse_transform(format="jpg", max_width=100), "JPEG")
    assert implicit == explicit
    assert params_key(parse_transform(max_width=100), "PNG") != implicit


def test_png_key_ignores_quality() -> None:
    assert params_key(parse_transform(quality=10), "PNG") == params_key(
        parse_transform(quality=90), "PNG"
    )
    assert params_key(parse_transform(quality=10), "JPEG") != params_key(
        parse_transform(quality=90), "JPEG"
    )


def test_key_rejects_unknown_format() -> None:
    with pytest.raises(ValueError):
        params_key(parse_transform(), "GIF")


# --- extensions and mime types ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "extension", "mime"),
    [
        ("JPEG", "jpg", "image/jpeg"),
        ("PNG", "png", "image/png"),
        ("WEBP", "webp", "image/webp"),
        ("AVIF", "avif", "image/avif"),
    ],
)
def test_extension_and_mime(fmt: str, extension: str, mime: str) -> None:
    assert extension_for(fmt) == extension
    assert mime_for(fmt) == mime


def test_extension_of_unknown_format() -> None:
    with pytest.raises(ValueError):
        extension_for("GIF")
    with pytest.raises(ValueError):
        mime_for("jpeg")
