"""Two tenants with one of everything: tenant A's objects for tenant B to aim at (the
cross-app isolation tests in tests/unit/core), and tenant B's own for the control."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import Principal

# In every message, report and run of a tenant: tenant A's never shows in B's answers.
SECRET = {"a": "tenant-a-secret-subject", "b": "tenant-b-secret-subject"}
SOURCE_IP = {"a": "192.0.2.1", "b": "192.0.2.2"}  # a sending source in each tenant
MAILBOX = {"display_name": "Jane A", "password": "Secret123!@#", "size": 100}


@dataclass
class World:
    tenant: Principal
    admin: Principal
    domain: Principal
    jane: Principal  # mailbox jane@<domain>
    mailbox: object  # its MailboxProfile
    alias: object
    dkim: object
    queued: object
    stored: object
    held: object
    job: object
    entry: object
    dmarc: object
    tls: object
    arf: object
    failure: object
    run: object
    key: Principal


def message(to: str, secret: str = "") -> bytes:
    return (
        f"From: Someone <someone@remote.test>\r\nTo: {to}\r\nSubject: {secret}\r\n"
        "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@remote.test>\r\n\r\n"
        f"{secret}\r\n"
    ).encode()


def build(tenant, admin, make_principal, prefix: str) -> World:
    from apps.accounts.auth.api_keys import api_key_create
    from apps.domains import mailbox_services, services
    from apps.queue.models import FetchEntry, FetchJob
    from apps.queue.services import enqueue
    from apps.reports.models import IngestFailure, Report
    from apps.spamfilter import quarantine, sender_lists
    from apps.store import services as store
    from mailadmin.core.progress import task_run_start

    secret = SECRET[prefix]
    domain = make_principal(
        tenant=tenant, roles=(), name=f"{prefix}.example", type="domain", password=""
    )
    mailbox = mailbox_services.mailbox_create(
        actor=admin, domain=domain, name="jane", values=dict(MAILBOX)
    )
    jane = mailbox.principal
    address = f"jane@{prefix}.example"
    alias = mailbox_services.domain_alias_create(
        actor=admin, domain=domain, alias=f"{prefix}-corp.example"
    )
    mailbox_services.catch_all_set(actor=admin, domain=domain, target=address)
    dkim = services.dkim_key_create(actor=admin, domain=domain, algorithm="ed25519")
    sender_lists.entry_add(
        actor=admin, mailbox=jane, domain=domain, list_name="blacklist", value="x@spam.test"
    )
    sender_lists.setting_update(actor=admin, mailbox=jane, raw={"filterlevel": "exclusive"})
    queued = enqueue(
        return_path=address,
        recipients=["bob@remote.test"],
        data=message("bob@remote.test", secret),
        tenant_id=tenant.pk,
    )
    stored = store.deliver(jane, message(address, secret))
    [held] = quarantine.quarantine_store(
        mailboxes=[jane],
        data=message(address, secret),
        sender="spammer@junk.test",
        score=9.0,
        tags={"BAYES_SPAM": 5.1},
        reasons=["spam"],
    )
    job = FetchJob.objects.create(
        uuid=uuid.uuid4(),
        tenant=tenant,
        mailbox=jane,
        mailbox_address=address,
        protocol="imap",
        host="imap.remote.test",
        port=993,
        username="jane",
    )
    entry = FetchEntry.objects.create(job=job, tenant=tenant, status="failed", subject=secret)
    now = timezone.now()
    reports = {}
    for kind in ("dmarc", "tls", "arf"):
        reports[kind] = Report.objects.create(
            kind=kind,
            tenant=tenant,
            domain=domain,
            domain_name=domain.name,
            reporter=f"reporter-{prefix}.test",
            report_id=f"{kind}-{prefix}",
            date_begin=now - timedelta(days=1),
            date_end=now,
            source="upload",
            dedupe_key=f"{kind}-{prefix}",
        )
    reports["dmarc"].dmarc_records.create(source_ip=SOURCE_IP[prefix], count=3, dmarc_pass=False)
    failure = IngestFailure.objects.create(
        tenant=tenant, actor=admin, source="upload", reason=secret, raw=secret.encode()
    )
    run = task_run_start(
        actor=admin,
        kind=f"probe-{prefix}",
        title=secret,
        task_name="probe",
        tenant_id=tenant.pk,
    )
    key, _ = api_key_create(actor=admin, name=f"key-{prefix}")
    return World(
        tenant, admin, domain, jane, mailbox, alias, dkim, queued, stored, held, job, entry,
        reports["dmarc"], reports["tls"], reports["arf"], failure, run, key,
    )  # fmt: skip


def state() -> dict:
    """Every row a foreign request could create, change or delete."""
    from apps.domains.models import CatchAll, DkimKey, DomainAlias, MailboxProfile
    from apps.queue.models import FetchEntry, FetchJob, QueuedMessage, QueueDomain
    from apps.reports.models import IngestFailure, Report
    from apps.spamfilter.models import MailboxSpamSetting, QuarantinedMessage, SenderListEntry
    from apps.store.models import DeletedMessage, Folder, Message
    from mailadmin.core.models import TaskRun

    def rows(model, *fields):
        return sorted(model.objects.values_list("pk", *fields))

    return {
        "principals": rows(Principal, "name", "description", "is_active", "quota", "password"),
        "emails": sorted(Principal.objects.values_list("pk", "emails__address")),
        "mailboxes": rows(MailboxProfile, "forwarding_address", "display_name"),
        "aliases": rows(DomainAlias, "alias"),
        "catch_alls": rows(CatchAll, "target_id"),
        "dkim": rows(DkimKey, "state", "selector"),
        "queue": rows(QueuedMessage, "status"),
        "queue_domains": rows(QueueDomain, "status", "next_retry"),
        "stored": rows(Message, "uid", "flags", "folder_id"),
        "deleted": rows(DeletedMessage),
        "folders": rows(Folder, "uidvalidity"),
        "held": rows(QuarantinedMessage),
        "sender_lists": rows(SenderListEntry, "value"),
        "spam_settings": rows(MailboxSpamSetting, "filter_level"),
        "jobs": rows(FetchJob, "active", "host"),
        "entries": rows(FetchEntry),
        "reports": rows(Report),
        "failures": rows(IngestFailure),
        "runs": rows(TaskRun, "state"),
    }


def object_ids(w: World) -> dict:
    """What the routes name each object of a world by."""
    return {
        "tenant": w.tenant.pk,
        "domain": w.domain.pk,
        "domain_name": w.domain.name,
        "jane": w.jane.pk,
        "jane_name": w.jane.name,
        "mailbox": w.mailbox.pk,
        "alias": w.alias.pk,
        "key": w.dkim.pk,
        "queued": w.queued.pk,
        "stored": w.stored.pk,
        "blob": w.stored.blob_hash,
        "held": w.held.pk,
        "job": w.job.uuid,
        "entry": w.entry.pk,
        "dmarc": w.dmarc.pk,
        "tls": w.tls.pk,
        "arf": w.arf.pk,
        "failure": w.failure.pk,
        "run": w.run.pk,
        "api_key": w.key.pk,
    }
