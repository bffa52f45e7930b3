"""The Store page starts a purge that a real worker carries out, and shows it live."""

import os
import time

import pytest
from playwright.sync_api import expect

from apps.store import blobs
from mailadmin.core.models import TaskRun
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login
from tests.support.worker import Worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_it_purges_the_blob_store_from_the_store_page(
    browser_page, live_server, superadmin, _blob_dir
):
    orphan = blobs.put(b"bytes nobody references")
    moment = time.time() - 2 * 3600
    os.utime(blobs.path_for(orphan), (moment, moment))
    worker = Worker({"MAILADMIN_BLOB_DIR": str(_blob_dir)}).start()
    try:
        page = browser_page
        login(page, live_server, "root", TEST_PASSWORD)
        page.goto(f"{live_server.url}/store/")
        expect(page.locator("h1")).to_have_text("Store maintenance")
        page.click("#start-purge-blob")
        progress = page.locator("#store-run-purge-blob .task-progress")
        expect(progress).to_have_attribute("data-state", "success", timeout=30_000)
        expect(progress.locator(".task-message")).to_contain_text(
            "1 unreferenced blob(s) deleted (23 bytes)"
        )
    finally:
        worker.stop()
    assert not blobs.path_for(orphan).exists()
    run = TaskRun.objects.get()
    assert (run.state, run.tenant_id, run.actor_id) == ("success", None, superadmin.pk)
