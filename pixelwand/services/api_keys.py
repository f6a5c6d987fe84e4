"""API key management: create (shown once), list, revoke."""

from __future__ import annotations

from pixelwand.auth import format_scopes, generate_key, hash_key, parse_scopes
from pixelwand.errors import BadRequest, NotFound
from pixelwand.ids import is_valid_id
from pixelwand.models import ApiKey
from pixelwand.services import organizations
from pixelwand.services.records import ApiKeyRecord, utcnow_ms
from pixelwand.services.validation import check_text

# Every key, revoked ones too, is listed in one answer (`apiKeys`): bounded well under the
# GraphQL object limit (50,000), so the listing never becomes too large to answer.
MAX_API_KEYS = 10_000


def _record(key: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=sorted(parse_scopes(key.scopes), key=("read", "write", "admin").index),
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


async def create_key(
    org_id: str, scopes: list[str] | str, name: str = ""
) -> tuple[ApiKeyRecord, str]:
    """(record, plain key). The plain key is not stored anywhere."""
    for scope in [scopes] if isinstance(scopes, str) else scopes:
        check_text(scope, "scopes", 64)
    try:
        scope_set = parse_scopes(scopes)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    check_text(name, "name", 200)
    plain = generate_key()
    async with organizations.locked(org_id):  # the count and the insert: one step
        if await ApiKey.filter(organization_id=org_id).count() >= MAX_API_KEYS:
            raise BadRequest(
                f"an organization may have at most {MAX_API_KEYS} API keys (revoked ones count)"
            )
        key = await ApiKey.create(
            organization_id=org_id,
            name=name.strip(),
            key_hash=hash_key(plain),
            prefix=plain[:12],
            scopes=format_scopes(scope_set),
        )
    return _record(key), plain


async def list_keys(org_id: str) -> list[ApiKeyRecord]:
    return [_record(k) for k in await ApiKey.filter(organization_id=org_id).order_by("created_at")]


async def revoke_key(org_id: str, key_id: str) -> ApiKeyRecord:
    if not is_valid_id(key_id):
        raise NotFound(f"API key {key_id} not found")
    key = await ApiKey.filter(id=key_id, organization_id=org_id).first()
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        await ApiKey.filter(id=key_id, revoked_at=None).update(revoked_at=utcnow_ms())
        await key.refresh_from_db()
    return _record(key)
