"""Storage key layout: `orgs/<orgId>/<yyyy>/<mm>/<uuid>-<sanitized name>`."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sanitize_filename(name: str, *, max_length: int = 120) -> str:
    """A safe basename: ASCII letters, digits, dot, dash, underscore; never empty."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = _UNSAFE.sub("-", base).strip(".-_") or "file"
    if len(base) > max_length:
        stem, dot, ext = base.rpartition(".")
        if dot and len(ext) <= 10:
            base = stem[: max_length - len(ext) - 1] + "." + ext
        else:
            base = base[:max_length]
    return base


def org_prefix(org_id: str) -> str:
    return f"orgs/{org_id}/"


def new_original_key(org_id: str, original_name: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return (
        f"{org_prefix(org_id)}{now:%Y}/{now:%m}/{uuid.uuid4()}-{sanitize_filename(original_name)}"
    )


def rendition_key(org_id: str, asset_id: str, params_key: str, extension: str) -> str:
    return f"renditions/{org_id}/{asset_id}/{params_key}.{extension}"


def is_safe_key(key: str) -> bool:
    """Keys are relative, slash-separated, and never climb out of their root."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key or len(key) > 1024:
        return False
    return all(part not in ("", ".", "..") for part in key.split("/"))
