"""The facts worker under a full render budget or a storage outage: the job waits, it is
never dropped (a job is dropped only after MAX_ATTEMPTS claims that did not come back, the
mark of media that kill the process) — on both backends."""

from __future__ import annotations

import pytest

from pixelwand.errors import RenderQueueFull, StorageUnavailable
from pixelwand.models import Asset, FactJob
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
