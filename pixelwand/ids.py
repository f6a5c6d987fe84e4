"""cuid-style ids: `c` + 24 lowercase letters/digits (time-ordered prefix, random tail)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_PATTERN = re.compile(r"^c[0-9a-z]{24}$")


def _base36(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def id_at(millis: int, choice: Callable[[str], str] = secrets.choice) -> str:
    """An id whose prefix orders by `millis`, its tail drawn with `choice` (seedable)."""
    return "c" + _base36(millis, 9) + "".join(choice(_ALPHABET) for _ in range(15))


def new_id() -> str:
    return id_at(time.time_ns() // 1_000_000)


def is_valid_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value))
