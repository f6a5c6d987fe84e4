"""Tortoise ORM models: the database schema (migrations live in pixelwand/migrations)."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from pixelwand.ids import new_id


class Organization(Model):
    id = fields.CharField(max_length=25, primary_key=True, default=new_id)
    name = fields.CharField(max_length=200)
    plan = fields.CharField(max_length=16, default="TEAM")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "organizations"


class ApiKey(Model):
    id = fields.CharField(max_length=25, primary_key=True, default=new_id)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="api_keys", on_delete=fields.CASCADE
    )
    organization_id: str
    name = fields.CharField(max_length=200, default="")
    key_hash = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=16)
    scopes = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_keys"


class Collection(Model):
    id = fields.CharField(max_length=25, primary_key=True, default=new_id)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="collections", on_delete=fields.CASCADE
    )
    organization_id: str
    name = fields.CharField(max_length=200)
    parent: fields.ForeignKeyNullableRelation[Collection] = fields.ForeignKeyField(
        "models.Collection", related_name="children", null=True, on_delete=fields.SET_NULL
    )
    parent_id: str | None
    color = fields.CharField(max_length=7, default="#6366f1")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "collections"
        unique_together = (("organization", "name"),)
        indexes = (Index(fields=("organization_id", "parent_id")),)


class Asset(Model):
    id = fields.CharField(max_length=25, primary_key=True, default=new_id)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="assets", on_delete=fields.CASCADE
    )
    organization_id: str
    name = fields.CharField(max_length=255)
    original_name = fields.CharField(max_length=255)
    size = fields.BigIntField()
    mime_type = fields.CharField(max_length=64)
    media_type = fields.CharField(max_length=8)
    storage_key = fields.CharField(max_length=512, unique=True)
    # Tags are read from this denormalized list (one column, no join per row) and
    # filtered through AssetTag rows (an index per tag, on every database).
    tags: fields.Field[list[str]] = fields.JSONField(default=list)
    collection: fields.ForeignKeyNullableRelation[Collection] = fields.ForeignKeyField(
        "models.Collection", related_name="assets", null=True, on_delete=fields.SET_NULL
    )
    collection_id: str | None
    location_x = fields.FloatField(default=0)
    location_y = fields.FloatField(default=0)
    width = fields.IntField(null=True)
    height = fields.IntField(null=True)
    uploaded_at = fields.DatetimeField()
    deleted_at = fields.DatetimeField(null=True)
    # Facts, filled after finalize by services/facts.py (migration 0008); null until then.
    content_hash = fields.CharField(max_length=71, null=True)
    thumbhash = fields.CharField(max_length=64, null=True)
    blurhash = fields.CharField(max_length=32, null=True)
    dominant_color = fields.CharField(max_length=7, null=True)
    duration_seconds = fields.FloatField(null=True)
    video_codec = fields.CharField(max_length=32, null=True)
    frame_rate = fields.FloatField(null=True)
    focal_auto_x = fields.FloatField(null=True)  # the automatic focal point (a fact)
    focal_auto_y = fields.FloatField(null=True)
    focal_x = fields.FloatField(null=True)  # the manual one, which wins when set
    focal_y = fields.FloatField(null=True)

    class Meta:
        table = "assets"
        indexes = (
            Index(fields=("organization_id", "deleted_at", "uploaded_at", "id")),
            Index(fields=("organization_id", "media_type", "uploaded_at")),
            Index(fields=("collection_id", "uploaded_at")),
            Index(fields=("deleted_at",)),
        )


class AssetTag(Model):
    id = fields.BigIntField(primary_key=True)
    asset: fields.ForeignKeyRelation[Asset] = fields.ForeignKeyField(
        "models.Asset", related_name="tag_rows", on_delete=fields.CASCADE
    )
    asset_id: str
    organization_id = fields.CharField(max_length=25)
    tag = fields.CharField(max_length=64)

    class Meta:
        table = "asset_tags"
        unique_together = (("asset", "tag"),)
        indexes = (Index(fields=("organization_id", "tag")),)


# Database triggers (migration 0004) bump an organization's generation in the same
# transaction as any write to its `assets` or `asset_tags` rows, so a listing total cached
# under a generation is exact for as long as that generation is current
# (services/asset_totals.py). No foreign key: an organization's cascade delete fires the
# triggers while its row is going away.
class AssetGeneration(Model):
    """Per-organization counter of writes to assets and asset tags."""

    organization_id = fields.CharField(max_length=25, primary_key=True)
    generation = fields.BigIntField(default=0)

    class Meta:
        table = "asset_generations"


class Upload(Model):
    """A presigned upload: the proof that a storage key was issued to this organization."""

    id = fields.CharField(max_length=25, primary_key=True, default=new_id)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="uploads", on_delete=fields.CASCADE
    )
    organization_id: str
    storage_key = fields.CharField(max_length=512, unique=True)
    original_name = fields.CharField(max_length=255)
    mime_type = fields.CharField(max_length=64)
    size = fields.BigIntField()
    created_at = fields.DatetimeField()
    asset_id = fields.CharField(max_length=25, null=True)
    # The finalize lease (migration 0007): who pins and checks this upload's bytes now.
    finalizing_by = fields.CharField(max_length=32, null=True)
    finalizing_until = fields.DatetimeField(null=True)

    class Meta:
        table = "uploads"
        indexes = (
            Index(fields=("organization_id", "asset_id", "created_at")),
            Index(fields=("asset_id", "created_at")),
        )


class MultipartUpload(Model):
    """A multipart upload: started, then parts PUT by the client, then completed or aborted.

    Its size counts against the quota from start until it completes (then the asset
    counts), is aborted, or expires. A completed row is kept, so that completing again
    answers the same asset.
    """

    id = fields.CharField(max_length=25, primary_key=True, default=new_id)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="multipart_uploads", on_delete=fields.CASCADE
    )
    organization_id: str
    storage_key = fields.CharField(max_length=512, unique=True)
    # The store's own id of the upload (S3 UploadId; the local store's parts directory).
    backend_upload_id = fields.CharField(max_length=1024)
    original_name = fields.CharField(max_length=255)
    mime_type = fields.CharField(max_length=64)
    size = fields.BigIntField()
    part_size = fields.BigIntField()
    part_count = fields.IntField()
    # pending → completing → completed, or pending → aborting → (row deleted).
    state = fields.CharField(max_length=16, default="pending")
    # While completing: another complete may take over after this (the first one died).
    lease_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    asset_id = fields.CharField(max_length=25, null=True)

    class Meta:
        table = "multipart_uploads"
        indexes = (
            Index(fields=("organization_id", "asset_id", "expires_at")),
            Index(fields=("asset_id", "created_at")),
        )


class ExportPreset(Model):
    id = fields.CharField(max_length=25, primary_key=True, default=new_id)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="export_presets", on_delete=fields.CASCADE
    )
    organization_id: str
    name = fields.CharField(max_length=100)
    format = fields.CharField(max_length=8)
    quality = fields.IntField(default=85)
    max_width = fields.IntField(null=True)
    max_height = fields.IntField(null=True)
    preserve_aspect = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    gravity = fields.CharField(max_length=16, default="center", null=True)  # null: center
    perceptual = fields.CharField(max_length=16, null=True)  # migration 0010
    formats = fields.CharField(max_length=32, null=True)  # format AUTO's candidates

    class Meta:
        table = "export_presets"
        unique_together = (("organization", "name"),)


class Rendition(Model):
    """A stored transformed copy of an asset, one per (asset, normalized parameters)."""

    id = fields.CharField(max_length=25, primary_key=True, default=new_id)
    asset: fields.ForeignKeyRelation[Asset] = fields.ForeignKeyField(
        "models.Asset", related_name="renditions", on_delete=fields.CASCADE
    )
    asset_id: str
    params_key = fields.CharField(max_length=128)
    format = fields.CharField(max_length=8)
    storage_key = fields.CharField(max_length=512, unique=True)
    size = fields.BigIntField()
    width = fields.IntField()
    height = fields.IntField()
    etag = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Migration 0010 (docs/perceptual.md): null on rows made before it.
    quality = fields.IntField(null=True)  # encoder setting used
    score = fields.FloatField(null=True)  # SSIMULACRA2 reached; null without a target
    perceptual = fields.CharField(max_length=16, null=True)  # normalised target

    class Meta:
        table = "renditions"
        unique_together = (("asset", "params_key"),)


class SweepLock(Model):
    """One row per sweeper job: a lease so that one process sweeps at a time."""

    name = fields.CharField(max_length=32, primary_key=True)
    holder = fields.CharField(max_length=64)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "sweep_locks"


class ExportJob(Model):
    """A validated batch export, streamed by whoever holds its signed link."""

    id = fields.CharField(max_length=25, primary_key=True, default=new_id)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="export_jobs", on_delete=fields.CASCADE
    )
    organization_id: str
    asset_ids: fields.Field[list[str]] = fields.JSONField()
    config: fields.Field[dict] = fields.JSONField()
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()

    class Meta:
        table = "export_jobs"
        indexes = (Index(fields=("expires_at",)),)


class WebhookEndpoint(Model):
    """Where an organization wants its events sent, signed with the endpoint's secret."""

    id = fields.CharField(max_length=25, primary_key=True, default=new_id)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="webhook_endpoints", on_delete=fields.CASCADE
    )
    organization_id: str
    url = fields.CharField(max_length=2048)
    events: fields.Field[list[str]] = fields.JSONField(default=list)
    # The HMAC key: it must be kept in the clear to sign with (like Stripe's), and it is
    # shown to the organization once, at creation.
    secret = fields.CharField(max_length=64)
    enabled = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "webhook_endpoints"
        indexes = (Index(fields=("organization_id", "created_at")),)


class WebhookDelivery(Model):
    """The outbox: one event for one endpoint, written in the transaction of the change
    that caused it, then sent (and retried) by the delivery worker."""

    id = fields.CharField(max_length=25, primary_key=True, default=new_id)
    organization_id = fields.CharField(max_length=25)
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "models.WebhookEndpoint", related_name="deliveries", on_delete=fields.CASCADE
    )
    endpoint_id: str
    event_id = fields.CharField(max_length=32)
    event_type = fields.CharField(max_length=32)
    body = fields.TextField()
    status = fields.CharField(max_length=12, default="pending")
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    lease_owner = fields.CharField(max_length=32, null=True)
    lease_until = fields.DatetimeField(null=True)
    response_status = fields.IntField(null=True)
    latency_ms = fields.FloatField(null=True)
    error = fields.CharField(max_length=300, null=True)
    created_at = fields.DatetimeField()
    last_attempt_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_deliveries"
        indexes = (
            Index(fields=("status", "next_attempt_at")),
            Index(fields=("endpoint_id", "created_at")),
        )


class FactJob(Model):
    """An asset whose facts are pending: written with the asset, claimed under a lease."""

    asset: fields.OneToOneRelation[Asset] = fields.OneToOneField(
        "models.Asset", related_name="fact_job", on_delete=fields.CASCADE, primary_key=True
    )
    asset_id: str
    created_at = fields.DatetimeField()
    attempts = fields.IntField(default=0)
    holder = fields.CharField(max_length=64, null=True)
    lease_expires_at = fields.DatetimeField(null=True)

    class Meta:
        table = "fact_jobs"
