"""API keys and the principal a request acts as.

Keys are `ak_live_` + 40 base62 characters, stored as SHA-256 with a short display
prefix; the plain key exists only in the answer that created it. A resolved key is cached
for at most one second (PIXELWAND_AUTH_CACHE_SECONDS), so a revocation or plan change made
by any process is seen everywhere within a second, and at once by the process that made it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
import string
import time

from pixelwand.errors import Unauthenticated
from pixelwand.models import ApiKey
from pixelwand.plans import Plan

KEY_PREFIX = "ak_live_"
SCOPES = ("read", "write", "admin")
_ALPHABET = string.ascii_letters + string.digits
_KEY_PATTERN = re.compile(r"^ak_live_[A-Za-z0-9]{32,128}$")


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: one key of one organization."""

    key_id: str
    org_id: str
    org_name: str
    plan: Plan
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes


def generate_key() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(40))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(value: str | list[str] | tuple[str, ...]) -> frozenset[str]:
    """`read,write` or a list → a validated scope set (ValueError on unknown/empty)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    scopes = {s.strip().lower() for s in items if s.strip()}
    unknown = scopes - set(SCOPES)
    if unknown:
        raise ValueError(
            f"unknown scope {sorted(unknown)[0]!r}; expected some of {', '.join(SCOPES)}"
        )
    if not scopes:
        raise ValueError("at least one scope is required")
    return frozenset(scopes)


def format_scopes(scopes: frozenset[str]) -> str:
    return ",".join(s for s in SCOPES if s in scopes)


class Authenticator:
    """Resolves `Authorization` headers to principals, with a short per-process cache."""

    def __init__(self, cache_seconds: float = 1.0) -> None:
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("missing API key: send Authorization: Bearer ak_live_...")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("malformed Authorization header: expected Bearer ak_live_...")
        if not _KEY_PATTERN.match(token):
            raise Unauthenticated("malformed API key: keys start with ak_live_")
        digest = hash_key(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            principal = cached[1]
        else:
            principal = await self._load(digest)
            if self._ttl > 0:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now + self._ttl, principal)
        if principal is None:
            raise Unauthenticated("invalid or revoked API key")
        return principal

    @staticmethod
    async def _load(digest: str) -> Principal | None:
        key = (
            await ApiKey.filter(key_hash=digest, revoked_at=None)
            .select_related("organization")
            .first()
        )
        if key is None:
            return None
        return Principal(
            key_id=key.id,
            org_id=key.organization_id,
            org_name=key.organization.name,
            plan=Plan(key.organization.plan),
            scopes=parse_scopes(key.scopes),
        )

    def forget_all(self) -> None:
        """Drop every cached principal (after a revocation or plan change here)."""
        self._cache.clear()
