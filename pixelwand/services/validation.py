"""Input rules shared by the services; each failure is a BadRequest naming the field."""

from __future__ import annotations

import math
import re
import unicodedata

from pixelwand.errors import BadRequest

MAX_TAGS = 50
MAX_TAG_LENGTH = 64
MAX_NAME_LENGTH = 255
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# Free-text filters (q): as long as the longest name they search.
MAX_QUERY_LENGTH = MAX_NAME_LENGTH
# Any other string a client sends (ids, keys, formats, mime types): a bound for the
# values no field defines one for; a longer value is never valid anywhere.
MAX_STRING_LENGTH = 4096
# What shows nothing on screen: controls, format characters (zero-width space and joiners,
# BOM, bidi marks and overrides) and separators. A name or tag made only of these is empty.
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def is_blank(text: str) -> bool:
    return all(unicodedata.category(c) in _INVISIBLE for c in text)


def check_text(value: str, field: str, max_length: int = MAX_STRING_LENGTH) -> str:
    """A string every backend stores and reads back exactly, or a BadRequest naming the field.

    PostgreSQL cannot store NUL in text or jsonb, and no database stores a lone surrogate
    (a GraphQL literal can spell "\\ud800"); SQLite would store both, so they are refused
    here for every backend alike."""
    if len(value) > max_length:
        raise BadRequest(f"{field} may have at most {max_length} characters")
    if "\x00" in value:
        raise BadRequest(f"{field} must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"{field} must be valid Unicode text (no lone surrogates)") from None
    return value


def check_finite(value: object, field: str) -> float:
    """A float every backend stores and reads back exactly (no inf/NaN; -0.0 as 0.0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{field} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise BadRequest(f"{field} must be a finite number")
    return number + 0.0  # -0.0 + 0.0 == 0.0: SQLite reads a stored -0.0 back as 0.0


def normalize_tags(tags: list[str] | None, *, filtering: bool = False) -> list[str]:
    """Trimmed, empty (or invisible) ones dropped, duplicates removed (first kept), case
    preserved. `filtering`: the list is a filter, not what an asset carries."""
    if tags is None:
        return []
    out: list[str] = []
    seen: set[str] = set()
    for raw in tags:
        if not isinstance(raw, str):
            raise BadRequest("tags must be strings")
        check_text(raw, "tags", MAX_STRING_LENGTH)
        tag = raw.strip()
        if is_blank(tag) or tag in seen:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise BadRequest(f"a tag may have at most {MAX_TAG_LENGTH} characters")
        seen.add(tag)
        out.append(tag)
    if len(out) > MAX_TAGS:
        if filtering:
            raise BadRequest(f"the tags filter may list at most {MAX_TAGS} tags")
        raise BadRequest(f"an asset may carry at most {MAX_TAGS} tags")
    return out


def require_name(value: str | None, field: str, *, max_length: int = MAX_NAME_LENGTH) -> str:
    if value is None:
        raise BadRequest(f"{field} is required")
    name = value.strip()
    if not name:
        raise BadRequest(f"{field} must not be empty")
    check_text(name, field, max_length)
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise BadRequest(f"{field} must not contain control characters")
    if is_blank(name):
        raise BadRequest(f"{field} must have a visible character")
    return name


def require_color(value: str | None) -> str:
    if value is None:
        return "#6366f1"
    if not isinstance(value, str) or not _COLOR.fullmatch(value):
        raise BadRequest("color must be #rrggbb")
    return value.lower()


def require_range(value: int, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{field} must be between {low} and {high}")
    return value


def check_strings(value: object, path: str) -> None:
    """Every string in a decoded JSON value (a REST body, GraphQL variables) passes
    `check_text`: the bound for fields that define none, and no NUL anywhere. Fields with a
    tighter bound are checked again where they are used."""
    if isinstance(value, str):
        check_text(value, path)
    elif isinstance(value, dict):
        for key, sub in value.items():
            check_text(key, f"{path}.{key[:64]}" if path else key[:64])
            check_strings(sub, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            check_strings(sub, f"{path}[{i}]")
