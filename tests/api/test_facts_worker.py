"""The facts worker's edges, on both backends: under a full render budget or a storage
outage the job waits, it is never dropped (a job is dropped only after MAX_ATTEMPTS starts
that did not come back, the mark of media that kill the process); an asset deleted while
its facts were computed gets neither the facts nor an `asset.updated` after its
`asset.deleted`."""

from __future__ import annotations

import asyncio

import pytest

from pixelwand.errors import RenderQueueFull, StorageUnavailable
from pixelwand.models import Asset, FactJob, WebhookDelivery
from pixelwand.services import facts
from pixelwand.services.records import utcnow_ms
from tests.api.test_media import wait_for_facts
from tests.helpers import subject_image, upload


@pytest.mark.parametrize("error", [RenderQueueFull, StorageUnavailable])
async def test_facts_refused_by_a_full_budget_or_an_outage_are_not_dropped(
    app, tenant, monkeypatch, error
):
    asset = await upload(tenant, subject_image(120, 90, 0.3, 0.3), "busy.jpg")
    filled = await wait_for_facts(tenant, asset["id"])
    await Asset.filter(id=asset["id"]).update(thumbhash=None)  # to see it written again

    async def refused(self, asset):
        raise error()

    monkeypatch.setattr(facts.FactsWorker, "_compute", refused)  # every worker, the app's too
    worker = facts.FactsWorker(app.state.runtime)
    try:
        await FactJob.create(asset_id=asset["id"], created_at=utcnow_ms())
        for _ in range(facts.MAX_ATTEMPTS + 2):  # more refusals than a job's attempts
            await FactJob.filter(asset_id=asset["id"]).update(lease_expires_at=None)
            assert await worker.run_once() == 0
        job = await FactJob.filter(asset_id=asset["id"]).first()
        assert job is not None, "the job was dropped"
        assert job.attempts == 0  # a refusal is not an attempt

        monkeypatch.undo()
        await FactJob.filter(asset_id=asset["id"]).update(lease_expires_at=None)
        assert await worker.run_once() == 1
    finally:
        worker.close()
    again = await wait_for_facts(tenant, asset["id"])
    assert again["thumbhash"] == filled["thumbhash"]
    assert await FactJob.filter(asset_id=asset["id"]).count() == 0


async def test_an_asset_deleted_while_its_facts_are_computed_stays_deleted(tenant, monkeypatch):
    """The facts used to be written over the deleted row, with an `asset.updated` event
    recorded after its `asset.deleted`: a subscriber mirroring assets would bring it back."""
    r = await tenant.post(
        "/api/v1/webhooks",
        # Nothing listens there: the events are read from the outbox, not received.
        json={"url": "http://127.0.0.1:9/facts", "events": ["asset.updated", "asset.deleted"]},
    )
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    compute = facts.FactsWorker._compute

    async def deleted_meanwhile(self, asset):
        values = await compute(self, asset)
        r = await tenant.delete(f"/api/v1/assets/{asset.id}")
        assert r.status_code == 200, r.text
        return values

    monkeypatch.setattr(facts.FactsWorker, "_compute", deleted_meanwhile)
    asset = await upload(tenant, subject_image(60, 40, 0.5, 0.5), "gone.jpg")
    for _ in range(600):  # the job is done once the worker has been through it
        if not await FactJob.filter(asset_id=asset["id"]).exists():
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the facts job never finished")
    row = await Asset.get(id=asset["id"])
    assert row.deleted_at is not None and row.content_hash is None
    events = await WebhookDelivery.filter(organization_id=tenant.org_id).values_list(
        "event_type", "body"
    )
    mine = [t for t, body in events if asset["id"] in body]
    assert mine == ["asset.deleted"], mine
    assert (await tenant.delete(f"/api/v1/webhooks/{hook}")).status_code in (200, 204)


class _Killed(BaseException):
    """What a kill -9 looks like from inside: the round ends with its claims still leased."""


async def test_a_job_that_kills_its_worker_does_not_take_its_batch_with_it(
    app, tenant, monkeypatch
):
    """A worker claims a batch but works one job at a time; a kill in the first job used to
    count an attempt for every job of the batch, so media that kill the process dropped up
    to CLAIM_BATCH - 1 innocent jobs with it, their facts null for good."""
    killer = await upload(tenant, subject_image(80, 60, 0.3, 0.3), "killer.jpg")
    innocent = await upload(tenant, subject_image(80, 60, 0.6, 0.6), "innocent.jpg")
    await wait_for_facts(tenant, killer["id"])
    await wait_for_facts(tenant, innocent["id"])
    await Asset.filter(id__in=[killer["id"], innocent["id"]]).update(content_hash=None)
    worker = facts.FactsWorker(app.state.runtime)
    compute = worker._compute

    async def dies_on_the_killer(asset):
        if asset.id == killer["id"]:
            raise _Killed()
        return await compute(asset)

    try:
        created = utcnow_ms()
        for asset_id in (killer["id"], innocent["id"]):  # the killer first, in one batch
            await FactJob.create(asset_id=asset_id, created_at=created)
        monkeypatch.setattr(worker, "_compute", dies_on_the_killer)
        for _ in range(facts.MAX_ATTEMPTS):
            await FactJob.filter(asset_id__in=[killer["id"], innocent["id"]]).update(
                lease_expires_at=None  # the lease of the killed process ran out
            )
            with pytest.raises(_Killed):
                await worker.run_once()
        monkeypatch.undo()
        await FactJob.filter(asset_id__in=[killer["id"], innocent["id"]]).update(
            lease_expires_at=None
        )
        await worker.run_once()
    finally:
        worker.close()
    r = await tenant.get(f"/api/v1/assets/{innocent['id']}")
    assert r.json()["contentHash"] is not None, "the innocent job was dropped with the killer"
    r = await tenant.get(f"/api/v1/assets/{killer['id']}")
    assert r.json()["contentHash"] is None  # dropped after MAX_ATTEMPTS, as documented
