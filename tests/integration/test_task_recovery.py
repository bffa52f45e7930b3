"""A worker killed in the middle of a run: the reaper takes the run back and another worker
finishes it. Real worker processes, Redis as the broker, PostgreSQL, the loopback DNS server."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.utils import timezone

from apps.domains.selectors import expected_records
from mailadmin.celery import app as celery_app
from mailadmin.core.models import AuditEvent, TaskRun
from tests.support.worker import Worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HOST = "mx.example.test"


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    log = f"\nworker log:\n{worker.log()}" if worker else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{log}")


def publish(dns_server, records) -> None:
    zones: dict = {}
    for record in records:
        content = record["content"]
        if record["type"] == "MX":
            value = (10, content.split()[1])
        elif record["type"] == "SRV":
            priority, weight, port, target = content.split()
            value = (int(priority), int(weight), int(port), target)
        else:
            value = content
        zones.setdefault(record["name"], {}).setdefault(record["type"], []).append(value)
    zones[HOST] = {"A": ["192.0.2.25"]}  # this server: the address SPF must authorise
    for name, zone in zones.items():
        dns_server.set_zone(name, zone)


def test_it_recovers_a_dns_check_whose_worker_was_killed(
    client, admin_a, make_principal, tenant_a, dns_server, settings
):
    settings.MAILADMIN_HOSTNAME = HOST
    domain = make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")
    records = expected_records(domain=domain)
    for record in records:  # every lookup waits out its timeout: a slow run to kill
        dns_server.set_zone(record["name"], "TIMEOUT")
    env = {
        "MAILADMIN_DNS_NAMESERVERS": dns_server.address,
        "MAILADMIN_DNS_TIMEOUT": "5",
        "MAILADMIN_HOSTNAME": HOST,
        "MAILADMIN_TASK_LEASE_SECONDS": "2",
    }
    first = Worker(env).start()
    second = None
    try:
        client.force_login(admin_a)
        response = client.post(f"/domains/{domain.pk}/dns-check/", REMOTE_ADDR="192.0.2.7")
        assert response.status_code == 302
        run = TaskRun.objects.get()

        def mid_run():  # its lookups run at once, each waiting out its 5 s timeout
            run.refresh_from_db()
            return run.state == "running" and run.total >= 1

        wait_for(mid_run, timeout=30, what="the first worker to be mid-run", worker=first)
        assert run.worker.endswith(f":{first.process.pid}")
        first.kill()

        run.refresh_from_db()
        assert run.state == "running"  # nobody knows yet: the worker just stopped
        wait_for(
            lambda: TaskRun.objects.get(pk=run.pk).lease_expires_at < timezone.now(),
            timeout=10,
            what="the dead worker's lease to expire",
        )
        publish(dns_server, records)  # the DNS server answers again
        second = Worker(env, queue=first.queue).start()
        celery_app.send_task("core.reap_runs")  # the beat's minute tick

        def finished():
            run.refresh_from_db()
            return run.finished

        wait_for(finished, timeout=60, what="the second worker to finish the run", worker=second)
    finally:
        if second is not None:
            second.stop()
        first.stop()

    assert run.state == "success", run.message
    assert run.attempts == 2
    assert run.worker.endswith(f":{second.process.pid}")
    assert run.message == f"{len(records)} of {len(records)} records found"
    assert (run.done, run.total) == (len(records), len(records))
    event = AuditEvent.objects.get(action="domain.dns_check")
    assert (event.actor, event.interface, event.ip) == (admin_a, "task", "192.0.2.7")
    assert not TaskRun.objects.filter(state__in=["pending", "running"]).exists()


def test_it_fails_a_self_check_whose_workers_keep_dying(superadmin, api_client_for, dns_server):
    """The self-check allows two attempts: after the second dead worker the reaper ends the
    run with a message that says so, instead of leaving it running forever."""
    client = api_client_for(superadmin)
    dns_server.set_zone("slow.example.test", "TIMEOUT")  # its last check waits 10 s
    env = {
        "MAILADMIN_TASK_LEASE_SECONDS": "2",
        "MAILADMIN_HOSTNAME": "slow.example.test",
        "MAILADMIN_DNS_NAMESERVERS": dns_server.address,
        "MAILADMIN_DNS_TIMEOUT": "10",
        "MAILADMIN_SMTP_BIND": "127.0.0.1:9",
        "MAILADMIN_SUBMISSION_BIND": "127.0.0.1:9",
    }
    workers: list[Worker] = []
    try:
        for attempt in (1, 2):
            worker = Worker(env, queue=workers[0].queue if workers else None).start()
            workers.append(worker)
            if attempt == 1:
                run_id = client.post("/api/telemetry/self-check").json()["data"]
            else:
                celery_app.send_task("core.reap_runs")  # back to pending, then to this worker

            def claimed(attempt=attempt, run_id=run_id):
                run = TaskRun.objects.get(pk=run_id)
                return run.state == "running" and run.attempts == attempt

            wait_for(claimed, timeout=30, what=f"attempt {attempt} to start", worker=worker)
            worker.kill()
            wait_for(
                lambda run_id=run_id: (
                    TaskRun.objects.get(pk=run_id).lease_expires_at < timezone.now()
                ),
                timeout=10,
                what="the lease to expire",
            )
        reaper = Worker(env, queue=workers[0].queue).start()
        workers.append(reaper)
        celery_app.send_task("core.reap_runs")
        wait_for(
            lambda: TaskRun.objects.get(pk=run_id).finished,
            timeout=30,
            what="the reaper to end the run",
            worker=reaper,
        )
    finally:
        for worker in reversed(workers):
            worker.stop()
    run = TaskRun.objects.get(pk=run_id)
    assert run.state == "failure"
    assert run.message.startswith("The worker running this stopped answering (last heartbeat ")
    assert run.message.endswith(" UTC); gave up after 2 of 2 attempts.")
