"""Multipart uploads through /api/v1 on both backends: parts out of order and in parallel,
re-sent parts, abort, expiry, and every way a hostile client can send them wrong."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from pixelwand.services.sweeper import sweep
from tests.helpers import without_facts
from tests.support.big_files import MIB, stored_sha256, write_file

PART = 8 * MIB  # the server's part size for files up to 78 GiB


async def start(tenant, name: str, mime: str, size: int, **extra: Any):
    body = {"mode": "multipart-start", "originalName": name, "mimeType": mime, "size": size}
    return await tenant.post("/api/v1/assets", json={**body, **extra})


async def started(tenant, name: str, mime: str, size: int) -> dict[str, Any]:
    r = await start(tenant, name, mime, size)
    assert r.status_code == 200, r.text
    return r.json()


async def call(tenant, mode: str, **body: Any):
    return await tenant.post("/api/v1/assets", json={"mode": mode, **body})


async def sign(tenant, upload_id: str, numbers: list[int]) -> dict[int, dict[str, Any]]:
    r = await call(tenant, "multipart-sign", uploadId=upload_id, partNumbers=numbers)
    assert r.status_code == 200, r.text
    return {p["partNumber"]: p for p in r.json()["parts"]}


async def listed(tenant, upload_id: str) -> dict[int, dict[str, Any]]:
    r = await call(tenant, "multipart-list", uploadId=upload_id)
    assert r.status_code == 200, r.text
    return {p["partNumber"]: p for p in r.json()["parts"]}


def part_range(ticket: dict[str, Any], size: int, n: int) -> tuple[int, int]:
    offset = (n - 1) * ticket["partSize"]
    return offset, min(ticket["partSize"], size - offset)


async def _from_disk(path: Path, offset: int, length: int) -> AsyncIterator[bytes]:
    with open(path, "rb") as f:  # noqa: ASYNC230 - test data, read a MiB at a time
        f.seek(offset)
        while length:
            chunk = f.read(min(MIB, length))
            length -= len(chunk)
            yield chunk


async def put_part(tenant, signed: dict[str, Any], path: Path, offset: int, length: int):
    """PUT one part, streamed from disk (never the whole file in memory)."""
    headers = {**signed["headers"], "Content-Length": str(length)}
    return await tenant.http.put(
        signed["url"], content=_from_disk(path, offset, length), headers=headers
    )


async def send_parts(tenant, ticket, path: Path, size: int, numbers: list[int], parallel: int):
    urls = await sign(tenant, ticket["uploadId"], numbers)
    gate = asyncio.Semaphore(parallel)

    async def one(n: int) -> None:
        async with gate:
            r = await put_part(tenant, urls[n], path, *part_range(ticket, size, n))
            assert r.status_code == 200, r.text

    await asyncio.gather(*(one(n) for n in numbers))


async def complete(tenant, upload_id: str, **extra: Any):
    return await call(tenant, "multipart-complete", uploadId=upload_id, **extra)


def storage(app):
    return app.state.runtime.storage


# --- the whole flow -----------------------------------------------------------------------


@pytest.mark.slow
async def test_a_200_mb_file_in_parts_out_of_order_and_in_parallel(tenant, app, tmp_path):
    size = 200_000_000
    path = tmp_path / "big.mp4"
    sha = write_file(path, size)
    ticket = await started(tenant, "big.mp4", "video/mp4", size)
    assert ticket["partSize"] == PART
    assert ticket["partCount"] == -(-size // PART) == 24
    assert ticket["storageKey"].startswith(f"orgs/{tenant.org_id}/")
    expires = dt.datetime.fromisoformat(ticket["expiresAt"].replace("Z", "+00:00"))
    assert dt.timedelta(hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)

    numbers = list(range(1, ticket["partCount"] + 1))
    random.Random(7).shuffle(numbers)
    await send_parts(tenant, ticket, path, size, numbers, parallel=4)

    parts = await listed(tenant, ticket["uploadId"])
    assert sorted(parts) == list(range(1, 25))
    assert all(parts[n]["size"] == PART for n in range(1, 24))
    assert parts[24]["size"] == size - 23 * PART

    r = await complete(tenant, ticket["uploadId"], tags=["big"], name="Big one")
    assert r.status_code == 201, r.text
    asset = r.json()
    assert asset["size"] == size
    assert asset["mimeType"] == "video/mp4"
    assert asset["mediaType"] == "VIDEO"
    assert asset["storageKey"] == ticket["storageKey"]
    assert asset["tags"] == ["big"]
    assert asset["name"] == "Big one"
    assert asset["originalName"] == "big.mp4"
    assert await stored_sha256(storage(app), asset["storageKey"]) == sha

    again = await complete(tenant, ticket["uploadId"])
    assert again.status_code == 200
    # The facts worker may fill in facts between two reads.
    assert without_facts(again.json()) == without_facts(asset)
    read = (await tenant.get(f"/api/v1/assets/{asset['id']}")).json()
    assert without_facts(read) == without_facts(asset)


async def test_an_image_in_parts_gets_its_dimensions(tenant, tmp_path):
    size = PART + 12345
    path = tmp_path / "photo.jpg"
    write_file(path, size, mime="image/jpeg")
    ticket = await started(tenant, "photo.jpg", "image/jpeg", size)
    assert ticket["partCount"] == 2
    await send_parts(tenant, ticket, path, size, [2, 1], parallel=2)
    r = await complete(tenant, ticket["uploadId"])
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (64, 48)
    assert r.json()["mediaType"] == "IMAGE"


async def test_a_small_file_is_one_part(tenant, tmp_path):
    path = tmp_path / "tiny.mp4"
    write_file(path, 5000)
    ticket = await started(tenant, "tiny.mp4", "video/mp4", 5000)
    assert (ticket["partSize"], ticket["partCount"]) == (PART, 1)
    # Without partNumbers every part is signed (there are at most 1000).
    r = await call(tenant, "multipart-sign", uploadId=ticket["uploadId"])
    assert r.status_code == 200, r.text
    (signed,) = r.json()["parts"]
    assert signed["partNumber"] == 1 and signed["method"] == "PUT"
    assert set(signed) == {"partNumber", "url", "method", "headers", "expiresAt"}
    assert (await put_part(tenant, signed, path, 0, 5000)).status_code == 200
    assert (await complete(tenant, ticket["uploadId"])).status_code == 201


async def test_a_re_sent_part_replaces_the_first_cleanly(tenant, app, tmp_path):
    size = 2 * PART + 777
    path = tmp_path / "clip.mp4"
    sha = write_file(path, size, seed=1)
    junk = tmp_path / "junk.bin"
    write_file(junk, size, seed=2)
    ticket = await started(tenant, "clip.mp4", "video/mp4", size)
    urls = await sign(tenant, ticket["uploadId"], [1, 2, 3])
    for n in (1, 2, 3):
        r = await put_part(tenant, urls[n], junk, *part_range(ticket, size, n))
        assert r.status_code == 200, r.text
    first = await listed(tenant, ticket["uploadId"])
    # SeaweedFS keeps both uploads of a re-sent part and dates them to the second
    # (docs/multipart.md): a re-send in the same second could tie with the first.
    await asyncio.sleep(1.1)
    # The client notices and sends part 2 again (and again), this time the right bytes.
    for _ in range(2):
        r = await put_part(tenant, urls[2], path, *part_range(ticket, size, 2))
        assert r.status_code == 200, r.text
    for n in (1, 3):
        r = await put_part(tenant, urls[n], path, *part_range(ticket, size, n))
        assert r.status_code == 200
    parts = await listed(tenant, ticket["uploadId"])
    assert sorted(parts) == [1, 2, 3]
    assert parts[2]["size"] == PART
    assert parts[2]["etag"] != first[2]["etag"]
    r = await complete(tenant, ticket["uploadId"])
    assert r.status_code == 201, r.text
    assert await stored_sha256(storage(app), ticket["storageKey"]) == sha


async def test_concurrent_completes_make_one_asset(tenant, tmp_path):
    path = tmp_path / "twice.mp4"
    write_file(path, PART + 1)
    ticket = await started(tenant, "twice.mp4", "video/mp4", PART + 1)
    await send_parts(tenant, ticket, path, PART + 1, [1, 2], parallel=2)
    answers = await asyncio.gather(*(complete(tenant, ticket["uploadId"]) for _ in range(3)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 200, 201], [r.text for r in answers]
    created = next(r.json() for r in answers if r.status_code == 201)
    assert all(without_facts(r.json()) == without_facts(created) for r in answers)
    again = await complete(tenant, ticket["uploadId"])
    assert again.status_code == 200
    assert without_facts(again.json()) == without_facts(created)
    r = await tenant.get("/api/v1/assets", params={"q": "twice.mp4"})
    assert r.json()["total"] == 1


class HeldJoin:
    """The store's part join, held at its start until `release` is set (`joining` says it
    has started; `joins` counts the joins begun)."""

    def __init__(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.joining, self.release = asyncio.Event(), asyncio.Event()
        self.joins = 0
        join = store.complete_multipart

        async def held(*args: Any) -> None:
            self.joins += 1
            self.joining.set()
            await self.release.wait()
            await join(*args)

        monkeypatch.setattr(store, "complete_multipart", held)


async def test_a_complete_during_another_waits_for_its_asset(tenant, app, tmp_path, monkeypatch):
    """A second complete while the first is still joining the parts answers the first's
    asset (200), as a repeated complete does, not a 409 (a client retrying a slow complete)."""
    path = tmp_path / "slow.mp4"
    write_file(path, PART + 1)
    ticket = await started(tenant, "slow.mp4", "video/mp4", PART + 1)
    await send_parts(tenant, ticket, path, PART + 1, [1, 2], parallel=2)
    held = HeldJoin(storage(app), monkeypatch)
    first = asyncio.create_task(complete(tenant, ticket["uploadId"]))
    await held.joining.wait()
    others = [asyncio.create_task(complete(tenant, ticket["uploadId"])) for _ in range(2)]
    await asyncio.sleep(0.3)  # let them find the complete running
    held.release.set()
    created = await first
    assert created.status_code == 201, created.text
    for r in await asyncio.gather(*others):  # facts may have been filled in meanwhile
        assert r.status_code == 200, r.text
        assert without_facts(r.json()) == without_facts(created.json())


async def test_a_complete_waiting_on_a_failed_one_gives_the_same_answer(
    tenant, app, tmp_path, monkeypatch
):
    path = tmp_path / "short.mp4"
    write_file(path, PART + 1)
    ticket = await started(tenant, "short.mp4", "video/mp4", PART + 1)
    await send_parts(tenant, ticket, path, PART + 1, [1], parallel=1)
    store = storage(app)
    listing, release = asyncio.Event(), asyncio.Event()
    list_parts = store.list_parts

    async def slow_list(*args: Any):
        if not listing.is_set():
            listing.set()
            await release.wait()
        return await list_parts(*args)

    monkeypatch.setattr(store, "list_parts", slow_list)
    first = asyncio.create_task(complete(tenant, ticket["uploadId"]))
    await listing.wait()
    second = asyncio.create_task(complete(tenant, ticket["uploadId"]))
    await asyncio.sleep(0.3)
    release.set()
    for r in (await first, await second):
        assert (r.status_code, r.json()) == (400, {"error": "parts missing: 2 (of 2)"})


async def test_a_complete_killed_midway_blocks_its_upload_for_less_than_a_retry_waits(
    tenant, tmp_path
):
    """A complete whose process was killed (kill -9 of the server) leaves its claim behind.
    The claim lapses before a retried complete stops waiting (that retry completes the
    upload, no 409), and once lapsed the upload is open again: list, sign, abort work."""
    from pixelwand.models import MultipartUpload
    from pixelwand.services import multipart

    path = tmp_path / "killed.mp4"
    write_file(path, PART + 1)
    ticket = await started(tenant, "killed.mp4", "video/mp4", PART + 1)
    await send_parts(tenant, ticket, path, PART + 1, [1, 2], parallel=2)
    row = await MultipartUpload.get(id=ticket["uploadId"])
    assert await multipart._claim(row)  # the complete that is then killed
    row = await MultipartUpload.get(id=ticket["uploadId"])
    left = (row.lease_until - dt.datetime.now(dt.UTC)).total_seconds()
    assert left < multipart.COMPLETE_WAIT_SECONDS
    await MultipartUpload.filter(id=row.id).update(  # the time passes: the claim lapses
        lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )
    assert sorted(await listed(tenant, ticket["uploadId"])) == [1, 2]
    assert sorted(await sign(tenant, ticket["uploadId"], [2])) == [2]
    r = await complete(tenant, ticket["uploadId"])
    assert r.status_code == 201, r.text


async def test_a_running_complete_keeps_its_claim(tenant, app, tmp_path, monkeypatch):
    """A complete that takes longer than its claim's lease renews it: a second complete
    waits for its asset and never joins the parts a second time."""
    from pixelwand.models import MultipartUpload
    from pixelwand.services import multipart

    monkeypatch.setattr(multipart, "COMPLETE_LEASE_SECONDS", 0.5)
    monkeypatch.setattr(multipart, "COMPLETE_RENEW_SECONDS", 0.05, raising=False)
    path = tmp_path / "long.mp4"
    write_file(path, PART + 1)
    ticket = await started(tenant, "long.mp4", "video/mp4", PART + 1)
    await send_parts(tenant, ticket, path, PART + 1, [1, 2], parallel=2)
    held = HeldJoin(storage(app), monkeypatch)
    first = asyncio.create_task(complete(tenant, ticket["uploadId"]))
    await held.joining.wait()
    claimed = (await MultipartUpload.get(id=ticket["uploadId"])).lease_until
    second = asyncio.create_task(complete(tenant, ticket["uploadId"]))
    for _ in range(200):  # until the claim has outlived its first lease, renewed
        lease = (await MultipartUpload.get(id=ticket["uploadId"])).lease_until
        if lease is not None and lease > claimed + dt.timedelta(seconds=1):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the running complete never renewed its claim")
    held.release.set()
    created, again = await first, await second
    assert created.status_code == 201, created.text
    assert again.status_code == 200, again.text
    assert again.json()["id"] == created.json()["id"]
    assert held.joins == 1


async def test_complete_with_the_clients_etags(tenant, tmp_path):
    size = PART + 10
    path = tmp_path / "e.mp4"
    write_file(path, size)
    ticket = await started(tenant, "e.mp4", "video/mp4", size)
    await send_parts(tenant, ticket, path, size, [1, 2], parallel=2)
    parts = await listed(tenant, ticket["uploadId"])
    wrong = [{"partNumber": 1, "etag": parts[1]["etag"]}, {"partNumber": 2, "etag": '"x"'}]
    r = await complete(tenant, ticket["uploadId"], parts=wrong)
    assert r.status_code == 400
    assert "etag" in r.json()["error"]
    only_one = [{"partNumber": 1, "etag": parts[1]["etag"]}]
    assert (await complete(tenant, ticket["uploadId"], parts=only_one)).status_code == 400
    right = [{"partNumber": n, "etag": parts[n]["etag"]} for n in (1, 2)]
    assert (await complete(tenant, ticket["uploadId"], parts=right)).status_code == 201


# --- abort, quota, expiry -----------------------------------------------------------------


async def test_abort_removes_everything(tenant, app, tmp_path):
    size = PART + 1000
    path = tmp_path / "a.mp4"
    write_file(path, size)
    ticket = await started(tenant, "a.mp4", "video/mp4", size)
    await send_parts(tenant, ticket, path, size, [1], parallel=1)
    r = await call(tenant, "multipart-abort", uploadId=ticket["uploadId"])
    assert r.status_code == 200, r.text
    assert r.json() == {"uploadId": ticket["uploadId"], "aborted": True}
    for mode in ("multipart-list", "multipart-sign", "multipart-complete", "multipart-abort"):
        r = await call(tenant, mode, uploadId=ticket["uploadId"])
        assert r.status_code == 404, (mode, r.text)
    assert await storage(app).head(ticket["storageKey"]) is None
    await _assert_no_parts_left(app, ticket)


async def _assert_no_parts_left(app, ticket) -> None:
    """The store holds no part of the upload any more."""
    from pixelwand.storage import ObjectNotFound

    store = storage(app)
    backend_id = _backend_ids.get(ticket["uploadId"])
    assert backend_id is not None
    with pytest.raises(ObjectNotFound):
        await store.list_parts(ticket["storageKey"], backend_id)


_backend_ids: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _remember_backend_ids(monkeypatch):
    """Note the store's own id of each upload started (to look in the store afterwards)."""
    from pixelwand.models import MultipartUpload

    real = MultipartUpload.create

    async def create(*args, **kwargs):
        row = await real(*args, **kwargs)
        _backend_ids[row.id] = row.backend_upload_id
        return row

    monkeypatch.setattr(MultipartUpload, "create", create)


async def test_quota_is_reserved_at_start_and_freed_by_abort(make_tenant):
    tenant = await make_tenant("BUSINESS")  # a 50,000-byte quota in the tests
    first = await started(tenant, "a.mp4", "video/mp4", 30_000)
    r = await start(tenant, "b.mp4", "video/mp4", 30_000)
    assert r.status_code == 402
    # The reservation counts for single uploads too.
    r = await tenant.post(
        "/api/v1/assets",
        json={"mode": "presign", "originalName": "c.mp4", "mimeType": "video/mp4", "size": 30_000},
    )
    assert r.status_code == 402
    assert (await call(tenant, "multipart-abort", uploadId=first["uploadId"])).status_code == 200
    assert (await start(tenant, "b.mp4", "video/mp4", 30_000)).status_code == 200


async def test_the_sweeper_aborts_uploads_never_completed(make_tenant, app, tmp_path):
    from pixelwand.models import MultipartUpload

    tenant = await make_tenant("BUSINESS")
    path = tmp_path / "s.mp4"
    write_file(path, 20_000)
    stale = await started(tenant, "stale.mp4", "video/mp4", 20_000)
    await send_parts(tenant, stale, path, 20_000, [1], parallel=1)
    fresh = await started(tenant, "fresh.mp4", "video/mp4", 20_000)
    await send_parts(tenant, fresh, path, 20_000, [1], parallel=1)
    assert (await start(tenant, "x.mp4", "video/mp4", 20_000)).status_code == 402
    # A day passes for one of them (the retention period is 24 h).
    await MultipartUpload.filter(id=stale["uploadId"]).update(
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25),
        expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
    )
    settings = app.state.runtime.settings
    report = await sweep(storage(app), upload_retention_seconds=settings.upload_retention_seconds)
    assert report.multipart_aborted >= 1
    assert (await call(tenant, "multipart-list", uploadId=stale["uploadId"])).status_code == 404
    await _assert_no_parts_left(app, stale)
    # Its space is free again; the fresh one is untouched and completes.
    assert (await start(tenant, "x.mp4", "video/mp4", 20_000)).status_code == 200
    assert sorted(await listed(tenant, fresh["uploadId"])) == [1]
    assert (await complete(tenant, fresh["uploadId"])).status_code == 201


async def test_an_expired_upload_takes_no_more_parts(tenant, tmp_path):
    from pixelwand.models import MultipartUpload

    ticket = await started(tenant, "late.mp4", "video/mp4", 5000)
    await MultipartUpload.filter(id=ticket["uploadId"]).update(
        expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )
    for mode in ("multipart-sign", "multipart-list", "multipart-complete"):
        r = await call(tenant, mode, uploadId=ticket["uploadId"])
        assert r.status_code == 404, (mode, r.text)
        assert "expired" in r.json()["error"]


# --- hostile and mistaken clients ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mode": "multipart-start", "mimeType": "video/mp4", "size": 10}, "originalName"),
        ({"mode": "multipart-start", "originalName": "a", "size": 10}, "mimeType"),
        ({"mode": "multipart-start", "originalName": "a", "mimeType": "video/mp4"}, "size"),
        ({"mode": "multipart-start", "originalName": "a", "mimeType": "a/b", "size": 1}, "a/b"),
        (
            {"mode": "multipart-start", "originalName": "a", "mimeType": "video/mp4", "size": 0},
            "size",
        ),
        (
            {
                "mode": "multipart-start",
                "originalName": "a",
                "mimeType": "video/mp4",
                "size": 5 * 1024**4 + 1,
            },
            "size must be at most",
        ),
        (
            {
                "mode": "multipart-start",
                "originalName": "a",
                "mimeType": "video/mp4",
                "size": 1,
                "uploadId": "x",
            },
            "'uploadId'",
        ),
        ({"mode": "multipart-sign"}, "uploadId is required"),
        ({"mode": "multipart-sign", "uploadId": "x", "partNumbers": 1}, "partNumbers"),
        ({"mode": "multipart-sign", "uploadId": "x", "size": 1}, "'size'"),
        ({"mode": "multipart-list"}, "uploadId is required"),
        ({"mode": "multipart-complete", "uploadId": "x", "parts": {"a": 1}}, "parts"),
        ({"mode": "multipart-abort", "uploadId": "x", "tags": []}, "'tags'"),
        ({"mode": "multipart-go", "uploadId": "x"}, "mode must be"),
        ({"mode": "finalize", "uploadId": "x"}, "'uploadId'"),
    ],
)
async def test_bad_requests_are_400_naming_the_field(tenant, body, message):
    r = await tenant.post("/api/v1/assets", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


async def test_a_bigger_size_than_single_uploads_allow_is_fine(tenant):
    ticket = await started(tenant, "huge.mov", "video/quicktime", 6 * 1024**3)
    assert ticket["partSize"] == PART
    assert ticket["partCount"] == 768
    # A 5 TiB file: parts grow so that there are at most 10,000 of them.
    ticket = await started(tenant, "huger.mov", "video/quicktime", 5 * 1024**4)
    assert ticket["partSize"] == 525 * MIB
    assert ticket["partCount"] == 9987
    r = await call(tenant, "multipart-sign", uploadId=ticket["uploadId"])
    assert r.status_code == 400
    assert "partNumbers is required" in r.json()["error"]
    r = await call(tenant, "multipart-sign", uploadId=ticket["uploadId"], partNumbers=[9987, 1])
    assert [p["partNumber"] for p in r.json()["parts"]] == [9987, 1]
    for mode in ("multipart-abort",):
        assert (await call(tenant, mode, uploadId=ticket["uploadId"])).status_code == 200


@pytest.mark.parametrize("numbers", [[0], [4], [1, 2, 3, 4], [-1]])
async def test_part_numbers_outside_the_upload_are_400(tenant, numbers):
    ticket = await started(tenant, "p.mp4", "video/mp4", 2 * PART + 1)
    r = await call(tenant, "multipart-sign", uploadId=ticket["uploadId"], partNumbers=numbers)
    assert r.status_code == 400
    assert "outside 1..3" in r.json()["error"]


async def test_another_orgs_upload_is_403_and_an_unknown_one_404(make_tenant, tmp_path):
    owner, other = await make_tenant(), await make_tenant()
    ticket = await started(owner, "mine.mp4", "video/mp4", 5000)
    for mode, extra in [
        ("multipart-sign", {"partNumbers": [1]}),
        ("multipart-list", {}),
        ("multipart-complete", {}),
        ("multipart-abort", {}),
    ]:
        r = await call(other, mode, uploadId=ticket["uploadId"], **extra)
        assert r.status_code == 403, (mode, r.text)
        for unknown in ("c" + "0" * 24, "nope", "x" * 300):
            r = await call(owner, mode, uploadId=unknown, **extra)
            assert r.status_code == 404, (mode, unknown, r.text)
        # A NUL is refused as input on every backend, before any lookup (DESIGN.md).
        r = await call(owner, mode, uploadId="c\x00" + "0" * 23, **extra)
        assert r.json() == {"error": "uploadId must not contain NUL characters"}, mode
    # Nothing the other organization did changed the upload.
    path = tmp_path / "mine.mp4"
    write_file(path, 5000)
    await send_parts(owner, ticket, path, 5000, [1], parallel=1)
    assert (await complete(owner, ticket["uploadId"])).status_code == 201


async def test_complete_with_missing_parts_is_400_and_the_upload_goes_on(tenant, tmp_path):
    size = 2 * PART + 5
    path = tmp_path / "m.mp4"
    write_file(path, size)
    ticket = await started(tenant, "m.mp4", "video/mp4", size)
    r = await complete(tenant, ticket["uploadId"])
    assert r.status_code == 400
    assert "parts missing: 1, 2, 3" in r.json()["error"]
    await send_parts(tenant, ticket, path, size, [1, 3], parallel=2)
    r = await complete(tenant, ticket["uploadId"])
    assert r.status_code == 400
    assert "parts missing: 2 " in r.json()["error"]
    await send_parts(tenant, ticket, path, size, [2], parallel=1)
    assert (await complete(tenant, ticket["uploadId"])).status_code == 201


async def test_parts_not_matching_the_mime_type_are_refused_and_discarded(tenant, tmp_path):
    path = tmp_path / "fake.jpg"
    write_file(path, 5000, mime="video/mp4")
    ticket = await started(tenant, "fake.jpg", "image/jpeg", 5000)
    await send_parts(tenant, ticket, path, 5000, [1], parallel=1)
    r = await complete(tenant, ticket["uploadId"])
    assert r.status_code == 400
    assert "does not match mimeType image/jpeg" in r.json()["error"]
    assert (await complete(tenant, ticket["uploadId"])).status_code == 404


@pytest.mark.parametrize("delta", [1, -1, PART])
async def test_a_part_of_the_wrong_size_never_becomes_an_asset(tenant, app, tmp_path, delta):
    size = 2 * PART + 100
    path = tmp_path / "w.mp4"
    write_file(path, size + PART)
    ticket = await started(tenant, "w.mp4", "video/mp4", size)
    urls = await sign(tenant, ticket["uploadId"], [1, 2, 3])
    for n in (1, 3):
        r = await put_part(tenant, urls[n], path, *part_range(ticket, size, n))
        assert r.status_code == 200, r.text
    r = await put_part(tenant, urls[2], path, PART, PART + delta)
    if r.status_code == 200:  # a store that took it (S3 may): complete refuses it
        c = await complete(tenant, ticket["uploadId"])
        assert c.status_code == 400, c.text
        assert "part 2 is" in c.json()["error"]
    else:
        assert r.status_code in (400, 403), r.text
    assert 2 not in await listed(tenant, ticket["uploadId"]) or r.status_code == 200
    assert await storage(app).head(ticket["storageKey"]) is None


# --- the local store's own part URLs -------------------------------------------------------


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.backends("sqlite-local")
async def test_local_part_too_big_is_400_while_streaming_and_nothing_is_kept(tenant, tmp_path):
    size = PART + 10
    path = tmp_path / "b.mp4"
    write_file(path, 3 * PART)
    ticket = await started(tenant, "b.mp4", "video/mp4", size)
    urls = await sign(tenant, ticket["uploadId"], [1, 2])

    async def too_much() -> AsyncIterator[bytes]:  # no Content-Length: caught while streaming
        async for chunk in _from_disk(path, 0, PART + MIB):
            yield chunk

    r = await tenant.http.put(urls[1]["url"], content=too_much())
    assert r.status_code == 400
    assert "larger than" in r.json()["error"]
    r = await put_part(tenant, urls[2], path, 0, 11)  # the last part is 10 bytes
    assert r.status_code == 400
    assert await listed(tenant, ticket["uploadId"]) == {}


@pytest.mark.backends("sqlite-local")
@pytest.mark.parametrize(
    "tamper",
    [
        {"sig": "0" * 64},
        {"partNumber": "2"},
        {"size": "999"},
        {"uploadId": "0" * 32},
        {"exp": "1"},
    ],
)
async def test_local_forged_part_urls_are_403(tenant, tmp_path, tamper):
    path = tmp_path / "f.mp4"
    write_file(path, 5000)
    ticket = await started(tenant, "f.mp4", "video/mp4", 5000)
    urls = await sign(tenant, ticket["uploadId"], [1])
    forged = {**urls[1], "url": _with_query(urls[1]["url"], **tamper)}
    r = await put_part(tenant, forged, path, 0, 5000)
    assert r.status_code == 403, r.text
    assert await listed(tenant, ticket["uploadId"]) == {}


@pytest.mark.backends("sqlite-local")
async def test_local_expired_part_url_is_403(tenant, tmp_path, monkeypatch):
    import time

    path = tmp_path / "x.mp4"
    write_file(path, 5000)
    ticket = await started(tenant, "x.mp4", "video/mp4", 5000)
    urls = await sign(tenant, ticket["uploadId"], [1])
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 2 * 3600)
    r = await put_part(tenant, urls[1], path, 0, 5000)
    assert r.status_code == 403
    assert "expired" in r.json()["error"]


@pytest.mark.backends("sqlite-local")
async def test_local_parts_are_final_once_completed(tenant, app, tmp_path):
    path = tmp_path / "c.mp4"
    sha = write_file(path, 5000)
    other = tmp_path / "o.mp4"
    write_file(other, 5000, seed=9)
    ticket = await started(tenant, "c.mp4", "video/mp4", 5000)
    urls = await sign(tenant, ticket["uploadId"], [1])
    assert (await put_part(tenant, urls[1], path, 0, 5000)).status_code == 200
    assert (await complete(tenant, ticket["uploadId"])).status_code == 201
    r = await put_part(tenant, urls[1], other, 0, 5000)
    assert r.status_code == 409
    assert await stored_sha256(storage(app), ticket["storageKey"]) == sha
    r = await call(tenant, "multipart-sign", uploadId=ticket["uploadId"], partNumbers=[1])
    assert r.status_code == 409
    assert (await call(tenant, "multipart-abort", uploadId=ticket["uploadId"])).status_code == 409


@pytest.mark.backends("sqlite-local")
async def test_local_part_after_abort_is_refused(tenant, tmp_path):
    path = tmp_path / "z.mp4"
    write_file(path, 5000)
    ticket = await started(tenant, "z.mp4", "video/mp4", 5000)
    urls = await sign(tenant, ticket["uploadId"], [1])
    assert (await call(tenant, "multipart-abort", uploadId=ticket["uploadId"])).status_code == 200
    r = await put_part(tenant, urls[1], path, 0, 5000)
    assert r.status_code == 404


# --- GraphQL ------------------------------------------------------------------------------


async def test_the_graphql_mutations(tenant, tmp_path):
    path = tmp_path / "g.mp4"
    write_file(path, 3000)
    out = await tenant.gql(
        "mutation($i: StartMultipartUploadInput!) { startMultipartUpload(input: $i) "
        "{ uploadId partSize partCount } }",
        {"i": {"originalName": "g.mp4", "mimeType": "video/mp4", "size": 3000}},
    )
    upload_id = out["data"]["startMultipartUpload"]["uploadId"]
    out = await tenant.gql(
        "mutation($i: SignMultipartPartsInput!) { signMultipartParts(input: $i) "
        "{ parts { partNumber url headers } } }",
        {"i": {"uploadId": upload_id, "partNumbers": [1]}},
    )
    (part,) = out["data"]["signMultipartParts"]["parts"]
    with open(path, "rb") as f:  # noqa: ASYNC230
        data = f.read()
    assert (await tenant.http.put(part["url"], content=data)).status_code == 200
    out = await tenant.gql(
        "mutation($u: ID!) { listMultipartParts(uploadId: $u) { parts { partNumber size } } }",
        {"u": upload_id},
    )
    assert out["data"]["listMultipartParts"]["parts"] == [{"partNumber": 1, "size": 3000}]
    out = await tenant.gql(
        "mutation($i: CompleteMultipartUploadInput!) { completeMultipartUpload(input: $i) "
        "{ created asset { size } } }",
        {"i": {"uploadId": upload_id}},
    )
    assert out["data"]["completeMultipartUpload"] == {"created": True, "asset": {"size": 3000}}
    out = await tenant.gql(
        "mutation($u: ID!) { abortMultipartUpload(uploadId: $u) { aborted } }", {"u": upload_id}
    )
    assert out["errors"][0]["extensions"]["code"] == "CONFLICT"


@pytest.mark.backends("postgres-s3")
async def test_s3_a_part_of_the_wrong_size_is_refused_at_complete(tenant, app):
    """A store that ignores the signed Content-Length (some S3-compatibles do) takes the
    part: complete still refuses it, and the upload goes on once the part is re-sent."""
    store = storage(app)
    size = PART + 50
    ticket = await started(tenant, "s.mp4", "video/mp4", size)
    client = await store._get_client()
    head = (24).to_bytes(4, "big") + b"ftypisom" + b"\0" * 12
    for n, body in ((1, head + b"\0" * (PART - 1 - len(head))), (2, b"\0" * 50)):
        await client.upload_part(
            Bucket=store.bucket,
            Key=ticket["storageKey"],
            UploadId=_backend_ids[ticket["uploadId"]],
            PartNumber=n,
            Body=body,
        )
    r = await complete(tenant, ticket["uploadId"])
    assert r.status_code == 400
    assert f"part 1 is {PART - 1} bytes" in r.json()["error"]
    assert await store.head(ticket["storageKey"]) is None
    await asyncio.sleep(1.1)  # SeaweedFS dates part uploads to the second (docs/multipart.md)
    await client.upload_part(
        Bucket=store.bucket,
        Key=ticket["storageKey"],
        UploadId=_backend_ids[ticket["uploadId"]],
        PartNumber=1,
        Body=head + b"\0" * (PART - len(head)),
    )
    assert (await complete(tenant, ticket["uploadId"])).status_code == 201
