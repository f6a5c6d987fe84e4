"""cuid-style ids: `c` + 24 lowercase letters/digits (time-ordered prefix, random tail)."""

from __future__ import annotations

import re
import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_PATTERN = re.compile(r"^c[0-9a-z]{24}$")


def _base36(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def new_id() -> str:
    millis = time.time_ns() // 1_000_000
    return "c" + _base36(millis, 9) + "".join(secrets.choice(_ALPHABET) for _ in range(15))


def is_valid_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value))
