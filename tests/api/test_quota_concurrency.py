"""The storage quota holds under any concurrency, for presign and finalize (issue 11, item 7).

Twenty presigns at once, of which three fit the BUSINESS plan's test quota: exactly three are
granted; their finalizes, also at once, never answer 402. One key per request, so the
per-key rate limit refuses none of them.
"""

from __future__ import annotations

import asyncio

from tests.conftest import BUSINESS_QUOTA
from tests.helpers import make_image, presign

SIZE = BUSINESS_QUOTA * 3 // 10  # three fit, a fourth does not


def upload_bytes() -> bytes:
    image = make_image(64, 48)
    return image + b"\0" * (SIZE - len(image))  # still a JPEG to a decoder


async def test_concurrent_presigns_grant_exactly_what_fits_and_finalizes_never_402(
    make_tenant,
):
    owner = await make_tenant("BUSINESS")
    keys = [await owner.add_key("read,write") for _ in range(20)]
    data = upload_bytes()

    answers = await asyncio.gather(*(presign(k, "q.jpg", "image/jpeg", SIZE) for k in keys))
    granted = [r.json() for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert len(granted) == 3, [r.status_code for r in answers]
    assert {r.status_code for r in refused} == {402}
    assert all("quota" in r.json()["error"] for r in refused)
    r = await owner.gql("{ viewer { storageUsed storageQuota } }")
    assert r["data"]["viewer"] == {"storageUsed": 3 * SIZE, "storageQuota": BUSINESS_QUOTA}

    for ticket in granted:
        put = await owner.http.put(ticket["uploadUrl"], content=data, headers=ticket["headers"])
        assert put.status_code == 200, put.text
    finalized = await asyncio.gather(
        *(
            k.post(
                "/api/v1/assets",
                json={
                    "mode": "finalize",
                    "originalName": "q.jpg",
                    "mimeType": "image/jpeg",
                    "size": SIZE,
                    "storageKey": ticket["storageKey"],
                },
            )
            for k, ticket in zip(keys, granted, strict=False)
        )
    )
    assert [r.status_code for r in finalized] == [201, 201, 201], [r.text for r in finalized]
    assert (await owner.get("/api/v1/assets")).json()["total"] == 3
    # Full now: one more presign is refused, and a delete frees the space at once.
    assert (await presign(owner, "q.jpg", "image/jpeg", SIZE)).status_code == 402
    gone = finalized[0].json()["id"]
    assert (await owner.delete(f"/api/v1/assets/{gone}")).status_code == 200
    assert (await presign(owner, "q.jpg", "image/jpeg", SIZE)).status_code == 200


async def test_concurrent_small_presigns_never_overrun_the_quota(make_tenant):
    """Many requests that each fit alone: the sum granted never exceeds the quota."""
    owner = await make_tenant("BUSINESS")
    keys = [await owner.add_key("read,write") for _ in range(20)]
    size = BUSINESS_QUOTA // 7  # seven fit
    answers = await asyncio.gather(*(presign(k, "s.jpg", "image/jpeg", size) for k in keys))
    assert sum(r.status_code == 200 for r in answers) == 7
