"""GraphQL types and inputs of multipart uploads (docs/multipart.md)."""

from __future__ import annotations

import datetime as dt

import strawberry

from schema.scalars import Long


@strawberry.input(description="What the client is about to upload in parts.")
class StartMultipartUploadInput:
    original_name: str = strawberry.field(description="The file's name.")
    mime_type: str = strawberry.field(description="One of the accepted image/video types.")
    size: Long = strawberry.field(
        description="Exact size in bytes, up to the server's multipart limit (5 TiB default)."
    )


@strawberry.input(description="Which parts to get PUT URLs for.")
class SignMultipartPartsInput:
    upload_id: strawberry.ID = strawberry.field(description="From startMultipartUpload.")
    part_numbers: list[int] | None = strawberry.field(
        default=None,
        description="Part numbers, 1..partCount, at most 1000; omitted: every part "
        "(when there are at most 1000).",
    )


@strawberry.input(description="A part the client sent, as its PUT answered.")
class CompletedPartInput:
    part_number: int = strawberry.field(description="1..partCount.")
    etag: str | None = strawberry.field(
        default=None, description="The ETag the part's PUT answered; checked when given."
    )


@strawberry.input(description="Join the parts and turn them into an asset.")
class CompleteMultipartUploadInput:
    upload_id: strawberry.ID = strawberry.field(description="From startMultipartUpload.")
    parts: list[CompletedPartInput] | None = strawberry.field(
        default=None,
        description="Optional: every part with its ETag; refused unless it names exactly the "
        "parts stored.",
    )
    tags: list[str] | None = strawberry.field(default=None, description="Tags to attach.")
    collection_id: strawberry.ID | None = strawberry.field(
        default=None, description="A collection of this workspace."
    )
    name: str | None = strawberry.field(
        default=None, description="Display name; defaults to originalName."
    )


@strawberry.type(description="A started multipart upload: PUT its parts, then complete it.")
class MultipartUpload:
    upload_id: strawberry.ID = strawberry.field(description="Names the upload in later calls.")
    storage_key: str = strawberry.field(description="Where the joined file will be stored.")
    part_size: Long = strawberry.field(
        description="Bytes in every part but the last (the last holds the rest)."
    )
    part_count: int = strawberry.field(description="Parts, numbered 1..partCount.")
    expires_at: dt.datetime = strawberry.field(
        description="Not completed by then, the upload is aborted and its parts removed."
    )


@strawberry.type(description="Where and how to PUT one part.")
class SignedPart:
    part_number: int = strawberry.field(description="1..partCount.")
    url: str = strawberry.field(description="Presigned URL to PUT the part's bytes to.")
    method: str = strawberry.field(description="Always PUT.")
    headers: strawberry.scalars.JSON = strawberry.field(
        description="Headers the PUT must carry besides Content-Length (none today)."
    )
    expires_at: dt.datetime = strawberry.field(description="The URL is refused after this.")


@strawberry.type(description="Signed part URLs.")
class SignedParts:
    parts: list[SignedPart] = strawberry.field(description="One per part number asked for.")


@strawberry.type(description="A part the store has received.")
class UploadedPart:
    part_number: int = strawberry.field(description="1..partCount.")
    size: Long = strawberry.field(description="Bytes received.")
    etag: str = strawberry.field(description="The store's tag of this version of the part.")


@strawberry.type(description="The parts received so far (resume by sending the others).")
class UploadedParts:
    parts: list[UploadedPart] = strawberry.field(description="By part number.")


@strawberry.type(description="The outcome of abortMultipartUpload.")
class AbortMultipartUploadResult:
    upload_id: strawberry.ID = strawberry.field(description="The aborted upload.")
    aborted: bool = strawberry.field(description="Always true.")
