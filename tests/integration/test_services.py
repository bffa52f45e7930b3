"""PostgreSQL, Redis, the Celery worker and the SMTP listener process, working together."""

import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from apps.telemetry.selfcheck import smtp_banner
from mailadmin.core.models import TaskRun
from tests.support.worker import ROOT, Worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_it_runs_on_postgresql_with_redis_as_broker_and_cache():
    assert connection.vendor == "postgresql"
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    cache.set("integration-probe", {"ok": 1}, 30)
    assert cache.get("integration-probe") == {"ok": 1}
    assert "RedisCache" in settings.CACHES["default"]["BACKEND"]


def test_it_has_a_worker_carry_out_a_task_started_through_the_api(
    api_client_for, superadmin, dns_server
):
    dns_server.set_zone("mail.localhost", {"A": ["127.0.0.1"]})
    # Ports nobody listens on: a product running on this machine (its default 2525/5870)
    # would otherwise answer the SMTP checks this test expects to fail.
    worker = Worker(
        {
            "MAILADMIN_DNS_NAMESERVERS": dns_server.address,
            "MAILADMIN_HOSTNAME": "mail.localhost",
            "MAILADMIN_SMTP_BIND": f"127.0.0.1:{_free_port()}",
            "MAILADMIN_SUBMISSION_BIND": f"127.0.0.1:{_free_port()}",
        }
    ).start()
    client = api_client_for(superadmin)
    try:
        response = client.post("/api/telemetry/self-check")
        assert response.status_code == 200
        run_id = response.json()["data"]
        deadline = time.monotonic() + 30
        body = {}
        while time.monotonic() < deadline:
            body = client.get(f"/api/task/{run_id}").json()["data"]
            if body["state"] in {"success", "failure"}:
                break
            time.sleep(0.2)
    finally:
        worker.stop()
    # No SMTP listener runs in this test, so those two checks fail, and say so.
    assert body["state"] == "failure", body
    assert body["done"] == body["total"] == 4
    rows = {row["name"]: row for row in body["result"]["rows"]}
    assert rows["Database"] == {"name": "Database", "ok": True, "detail": "postgresql answered"}
    assert rows["DNS resolver"]["ok"] is True
    assert rows["DNS resolver"]["detail"].endswith("mail.localhost A 127.0.0.1")
    assert rows["SMTP inbound (MX)"]["ok"] is False
    assert body["message"] == "Failed: SMTP inbound (MX), SMTP submission"
    assert TaskRun.objects.get(pk=run_id).finished_at is not None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_greets_with_220_from_the_smtp_listener_process():
    inbound, submission = _free_port(), _free_port()
    env = {
        "MAILADMIN_SMTP_BIND": f"127.0.0.1:{inbound}",
        "MAILADMIN_SUBMISSION_BIND": f"127.0.0.1:{submission}",
        "MAILADMIN_HOSTNAME": "mx.test",
    }
    import os

    process = subprocess.Popen(
        [sys.executable, "manage.py", "smtp_listen"], cwd=ROOT, env={**os.environ, **env}
    )
    try:
        banners = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(banners) < 2:
            for name, port in (("inbound", inbound), ("submission", submission)):
                try:
                    banners[name] = smtp_banner("127.0.0.1", port, timeout=2)
                except OSError:
                    time.sleep(0.2)
        assert banners["inbound"] == "220 mx.test mailadmin inbound"
        assert banners["submission"] == "220 mx.test mailadmin submission"
    finally:
        process.terminate()
        process.wait(timeout=10)
