"""S3-compatible storage through aiobotocore: AWS S3, SeaweedFS, MinIO.

One long-lived client per process, created on first use. Every call runs under
`asyncio.timeout(timeout_seconds)` on top of botocore's own connect/read timeouts, and every
connection-level failure becomes `StorageUnavailable`, so an unreachable or hung store costs a
request a bounded wait and a 503, never a hang or a 500.

A presigned PUT cannot be revoked, so it never names an asset's object: it writes
`incoming/<key>`, and finalize pins those bytes to `<key>` with a server-side copy (a
multipart copy above 5 GiB, CopyObject's limit), under a timeout of its own. The sweeper
deletes the staged object once its URL has expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import botocore.exceptions
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from pixelwand.errors import StorageUnavailable, map_exceptions
from pixelwand.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    PartInfo,
    PresignedUpload,
    Storage,
    content_disposition,
    staging_key,
)

log = logging.getLogger(__name__)

# DeleteObjects takes at most this many keys per call.
_DELETE_BATCH = 1000

# The client libraries' own "the store did not answer" (as opposed to "the store said no");
# OSErrors and timeouts are recognised by pixelwand.errors.map_exceptions itself.
_CLIENT_FAULTS: tuple[type[BaseException], ...] = (
    botocore.exceptions.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ...
    botocore.exceptions.HTTPClientError,  # ReadTimeoutError, ConnectionClosedError, ...
    aiohttp.ClientError,
)
# CopyObject copies at most 5 GiB; larger objects are copied part by part.
COPY_LIMIT = 5 * 1024**3
COPY_PART_BYTES = 512 * 1024**2

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket", "NoSuchUpload"})

# ListParts answers at most this many parts per call.
_LIST_PARTS_PAGE = 1000
# The sweeper's listing of unfinished multipart uploads: pages of this many, at most this many
# pages per round (the rest waits for the next round).
_REAP_PAGE = 1000
_REAP_MAX_PAGES = 100
# CompleteMultipartUpload may take minutes on AWS for large objects (it answers with
# whitespace until done), so it gets a longer bound than other calls.
_COMPLETE_TIMEOUT_SECONDS = 600.0


class S3Storage(Storage):
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        timeout_seconds: float = 10.0,
        copy_timeout_seconds: float = 900.0,
    ) -> None:
        self.bucket = bucket
        self.copy_timeout_seconds = copy_timeout_seconds
        self.copy_limit = COPY_LIMIT
        self.copy_part_bytes = COPY_PART_BYTES
        self.endpoint_url = endpoint_url
        self.region = region
        self.timeout_seconds = timeout_seconds
        # None lets botocore's usual chain find credentials (AWS_ACCESS_KEY_ID, ...).
        self._access_key = access_key
        self._secret_key = secret_key
        self._config = AioConfig(
            signature_version="s3v4",
            # Custom endpoints (SeaweedFS, MinIO) rarely have wildcard DNS for buckets.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            connect_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
            retries={"total_max_attempts": 2, "mode": "standard"},
            # Only send/verify the flexible checksums S3 requires: S3-compatible stores
            # do not all understand the aws-chunked trailers botocore adds otherwise.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # Server-side copies answer only when done: a client of their own waits as long as
        # the copy timeout for an answer, where the others give up after `timeout_seconds`.
        self._copy_config = self._config.merge(
            AioConfig(read_timeout=copy_timeout_seconds, retries={"total_max_attempts": 1})
        )
        self._client: Any = None
        self._copy_client: Any = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()

    @classmethod
    def from_url(
        cls, url: str, *, timeout_seconds: float = 10.0, copy_timeout_seconds: float = 900.0
    ) -> S3Storage:
        """`s3://BUCKET?endpoint=URL&region=REGION[&access_key=..&secret_key=..]`."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"invalid S3 storage URL {url!r}: use s3://BUCKET?endpoint=...")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region", "access_key", "secret_key"}
        if unknown:
            raise ValueError(f"unknown S3 storage URL parameters: {', '.join(sorted(unknown))}")
        return cls(
            parts.netloc,
            endpoint_url=query.get("endpoint"),
            region=query.get("region", "us-east-1"),
            access_key=query.get("access_key"),
            secret_key=query.get("secret_key"),
            timeout_seconds=timeout_seconds,
            copy_timeout_seconds=copy_timeout_seconds,
        )

    # --- client --------------------------------------------------------------------------

    async def _get_client(self, *, copying: bool = False) -> Any:
        client = self._copy_client if copying else self._client
        if client is not None:
            return client
        async with self._client_lock:
            if self._exit_stack is None:
                self._exit_stack = contextlib.AsyncExitStack()
            if (self._copy_client if copying else self._client) is None:
                created = await self._exit_stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        region_name=self.region,
                        aws_access_key_id=self._access_key,
                        aws_secret_access_key=self._secret_key,
                        config=self._copy_config if copying else self._config,
                    )
                )
                if copying:
                    self._copy_client = created
                else:
                    self._client = created
        return self._copy_client if copying else self._client

    async def close(self) -> None:
        stack, self._exit_stack = self._exit_stack, None
        self._client = self._copy_client = None
        if stack is not None:
            await stack.aclose()

    @contextlib.asynccontextmanager
    async def _guard(self, seconds: float | None = None) -> AsyncIterator[None]:
        """Bound the wait, and turn "the store did not answer" (or answered 5xx: its
        disk full, overloaded) into StorageUnavailable."""
        with map_exceptions(StorageUnavailable, also=_CLIENT_FAULTS):
            try:
                async with asyncio.timeout(seconds or self.timeout_seconds):
                    yield
            except botocore.exceptions.ClientError as exc:
                if _status(exc) >= 500:
                    log.warning("storage error from %s: %s", self._where(), exc)
                    raise StorageUnavailable() from exc
                raise

    def _where(self) -> str:
        return f"{self.endpoint_url or 'aws'}/{self.bucket}"

    # --- signed URLs (computed locally: no request reaches the store) --------------------

    async def presign_put(
        self, key: str, content_type: str, size: int, expires_in: int
    ) -> PresignedUpload:
        # Content-Type and Content-Length become signed headers, so the store refuses a PUT
        # with another type or size (SignatureDoesNotMatch, 403). Clients send Content-Length
        # on their own (browsers may not set it), so it is not among the headers handed out.
        # A store that ignored them would still be caught: finalizing verifies the size.
        client = await self._get_client()
        url = await client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": staging_key(key),
                "ContentType": content_type,
                "ContentLength": size,
            },
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )
        return PresignedUpload(
            url=url,
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in),
        )

    async def presign_get(
        self,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> str:
        # Caches may keep the bytes for as long as the link is valid, and no longer.
        params: dict[str, str] = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseCacheControl": f"private, max-age={expires_in}",
        }
        if content_type:
            params["ResponseContentType"] = content_type
        if filename:
            params["ResponseContentDisposition"] = content_disposition(content_type, filename)
        client = await self._get_client()
        url: str = await client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in, HttpMethod="GET"
        )
        return url

    # --- multipart uploads ---------------------------------------------------------------

    async def create_multipart(self, key: str, content_type: str) -> str:
        client = await self._get_client()
        async with self._guard():
            resp = await client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type
            )
        return str(resp["UploadId"])

    async def presign_part(
        self, key: str, upload_id: str, part_number: int, size: int, expires_in: int
    ) -> PresignedUpload:
        # Content-Length is signed, as for single PUTs; complete checks every size anyway.
        client = await self._get_client()
        url = await client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": part_number,
                "ContentLength": size,
            },
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )
        return PresignedUpload(
            url=url,
            method="PUT",
            headers={},
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in),
        )

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        client = await self._get_client()
        # A re-sent part replaces the earlier one. Some stores (SeaweedFS 4) list both
        # until completion: the latest upload of each part number is the part.
        latest: dict[int, tuple[Any, PartInfo]] = {}
        marker = 0
        while True:
            try:
                async with self._guard():
                    resp = await client.list_parts(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        MaxParts=_LIST_PARTS_PAGE,
                        PartNumberMarker=marker,
                    )
            except botocore.exceptions.ClientError as exc:
                if _is_not_found(exc):
                    raise ObjectNotFound(key) from None
                raise
            page = resp.get("Parts", [])
            for p in page:
                info = PartInfo(int(p["PartNumber"]), int(p["Size"]), p["ETag"])
                seen = latest.get(info.part_number)
                if seen is None or _later(p.get("LastModified"), seen[0]):
                    latest[info.part_number] = (p.get("LastModified"), info)
            if not resp.get("IsTruncated") or not page:
                return [latest[n][1] for n in sorted(latest)]
            marker = int(resp.get("NextPartNumberMarker") or page[-1]["PartNumber"])

    async def complete_multipart(self, key: str, upload_id: str, parts: list[PartInfo]) -> None:
        client = await self._get_client()
        try:
            async with self._guard(max(self.timeout_seconds, _COMPLETE_TIMEOUT_SECONDS)):
                await client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={
                        "Parts": [{"PartNumber": p.part_number, "ETag": p.etag} for p in parts]
                    },
                )
        except botocore.exceptions.ClientError as exc:
            if _is_not_found(exc):
                raise ObjectNotFound(key) from None
            raise

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        client = await self._get_client()
        try:
            async with self._guard():
                await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except botocore.exceptions.ClientError as exc:
            if not _is_not_found(exc):
                raise

    # --- objects -------------------------------------------------------------------------

    async def head(self, key: str) -> ObjectInfo | None:
        client = await self._get_client()
        try:
            async with self._guard():
                resp = await client.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if _is_not_found(exc):
                return None
            raise
        return ObjectInfo(size=resp["ContentLength"], content_type=resp.get("ContentType"))

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        client = await self._get_client()
        try:
            async with self._guard():
                resp = await client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
                )
                async with resp["Body"] as body:
                    data: bytes = await body.read()
        except botocore.exceptions.ClientError as exc:
            if _is_not_found(exc):
                raise ObjectNotFound(key) from None
            if _code(exc) == "InvalidRange":  # start at or past the end of the object
                return b""
            raise
        return data

    async def stream(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        client = await self._get_client()
        try:
            async with self._guard():
                resp = await client.get_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if _is_not_found(exc):
                raise ObjectNotFound(key) from None
            raise
        # The timeout applies to each read, not to the whole transfer, which may be long.
        async with resp["Body"] as body:
            buffer = bytearray()
            while True:
                async with self._guard():
                    piece = await body.read(chunk_size - len(buffer))
                if piece:
                    buffer += piece
                if len(buffer) >= chunk_size or (not piece and buffer):
                    yield bytes(buffer)
                    buffer.clear()
                if not piece:
                    return

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        client = await self._get_client()
        async with self._guard():
            await client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )

    async def delete_many(self, keys: Iterable[str]) -> None:
        pending = list(dict.fromkeys(keys))
        if not pending:
            return
        client = await self._get_client()
        for i in range(0, len(pending), _DELETE_BATCH):
            batch = pending[i : i + _DELETE_BATCH]
            async with self._guard():
                resp = await client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            failed = [e for e in resp.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failed:
                # The store answered but did not delete: callers retry later, as for an outage.
                log.warning(
                    "storage refused to delete %d of %d keys, e.g. %s: %s",
                    len(failed),
                    len(batch),
                    failed[0].get("Key"),
                    failed[0].get("Message") or failed[0].get("Code"),
                )
                raise StorageUnavailable()

    # --- pinning uploads -----------------------------------------------------------------

    async def pin(self, key: str) -> bool:
        staged = staging_key(key)
        info = await self.head(staged)
        if info is None:
            return False
        client = await self._get_client(copying=True)
        source = {"Bucket": self.bucket, "Key": staged}
        # One bound for the whole copy, however many parts: a hung store costs a finalize
        # this long at most, and the finalize lease outlasts it.
        async with self._guard(self.copy_timeout_seconds):
            if info.size <= self.copy_limit:
                await client.copy_object(
                    Bucket=self.bucket, Key=key, CopySource=source, MetadataDirective="COPY"
                )
            else:
                await self._copy_in_parts(client, source, key, info)
        return True

    async def _copy_in_parts(
        self, client: Any, source: dict[str, str], key: str, info: ObjectInfo
    ) -> None:
        started = await client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=info.content_type or "binary/octet-stream"
        )
        upload_id = started["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, info.size, self.copy_part_bytes), 1):
                end = min(start + self.copy_part_bytes, info.size) - 1
                copied = await client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
            await client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                async with self._guard():
                    await client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
            raise

    async def staged(self, older_than: dt.datetime) -> AsyncIterator[str]:
        client = await self._get_client()
        prefix = staging_key("")
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            async with self._guard():
                page = await client.list_objects_v2(**kwargs)
            for item in page.get("Contents", []):
                if item["LastModified"] < older_than:
                    yield item["Key"].removeprefix(prefix)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def reap_temp_files(self, older_than: dt.datetime) -> int:
        """Local temporary files, and multipart uploads begun before `older_than` that were
        never completed (copies of a killed process; uploads past their expiry)."""
        removed = await super().reap_temp_files(older_than)
        client = await self._get_client()
        markers: dict[str, str] = {}
        for _ in range(_REAP_MAX_PAGES):
            async with self._guard():
                page = await client.list_multipart_uploads(
                    Bucket=self.bucket, MaxUploads=_REAP_PAGE, **markers
                )
            uploads = page.get("Uploads", [])
            old = [upload for upload in uploads if upload["Initiated"] < older_than]
            for upload in old:
                async with self._guard():
                    await client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
            removed += len(old)
            if not page.get("IsTruncated") or not uploads:
                break
            # The aborted ones left the listing: list from the start again. A page of young
            # uploads only is stepped over (SeaweedFS pages by upload id alone).
            markers = {} if old else _next_upload_markers(page, uploads[-1])
        return removed

    async def check(self) -> None:
        client = await self._get_client()
        try:
            async with self._guard():
                await client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            log.warning("storage bucket %s not usable: %s", self._where(), exc)
            raise StorageUnavailable() from exc

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (first start, tests)."""
        client = await self._get_client()
        try:
            async with self._guard():
                await client.head_bucket(Bucket=self.bucket)
            return
        except botocore.exceptions.ClientError as exc:
            if not _is_not_found(exc):
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            async with self._guard():
                await client.create_bucket(**kwargs)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


def _later(a: Any, b: Any) -> bool:
    """Is timestamp `a` later than `b` (either may be missing)?"""
    return a is not None and (b is None or a > b)


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _is_not_found(exc: botocore.exceptions.ClientError) -> bool:
    return _status(exc) == 404 or _code(exc) in _NOT_FOUND_CODES


def _next_upload_markers(page: dict[str, Any], last: dict[str, Any]) -> dict[str, str]:
    """Where the next page of ListMultipartUploads starts: the markers S3 answers, else (an
    S3-compatible store that answers only `NextUploadIdMarker`) the upload id alone."""
    upload_id = page.get("NextUploadIdMarker") or last["UploadId"]
    key = page.get("NextKeyMarker")
    return {"KeyMarker": key, "UploadIdMarker": upload_id} if key else {"UploadIdMarker": upload_id}
