"""Writes to fetch jobs: create, update, delete, "Fetch now", validate, monitoring entry
delete, and the schedule (beat). Every administrator's change is audited (the password
never: it is sealed in the row and left out of every record and answer).

The console's forms and the API both call these with plain values (`FetchValues`); the
checks that need the database or the network rules live here, once.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.emails import InvalidAddress, normalize_address
from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
from apps.accounts.permissions import Perm
from apps.queue import fetch
from apps.queue.fetch_selectors import JOB_NOT_FOUND, fetch_jobs_visible
from apps.queue.models import FetchEntry, FetchJob, FetchSeen
from mailadmin.audit import audit
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import Outcome, Progress, task_run_start
from mailadmin.errors import NotFound, PermissionDenied, ValidationFailed
from mailadmin.tenancy import scope

log = logging.getLogger(__name__)

FETCH_TASK = "queue.fetch"
FETCH_MAX_RUNTIME = 1800  # seconds
# A run's claim on its job, renewed every minute by the run's heartbeat thread
# (fetch.RENEW_SECONDS) however slow one step is: a dead worker's job runs again after at
# most this long.
FETCH_LEASE_SECONDS = 300
MAX_FOLDERS = 50
MIN_INTERVAL, MAX_INTERVAL = 1, 7 * 24 * 60  # minutes
DEFAULT_INTERVAL = 15
SCHEDULE_BATCH = 500
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class FetchValues:
    """What an administrator sets on a job; None: not given (keep it, or the default)."""

    mailbox: str | None = None
    active: bool | None = None
    protocol: str | None = None
    host: str | None = None
    port: int | None = None
    security: str | None = None
    username: str | None = None
    password: str | None = None
    folders: list[str] | None = None
    delete_on_server: bool | None = None
    interval_minutes: int | None = None

    def given(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if value is not None}


def _require(actor: Principal, permission: str, job: FetchJob | None = None) -> None:
    """The permission, and (for a job) that the actor's scope holds it: a job of another
    tenant is not found, whoever handed it in."""
    if not actor.has_permission(permission):
        raise PermissionDenied(permission)
    if job is not None and not fetch_jobs_visible(actor).filter(pk=job.pk).exists():
        raise NotFound(JOB_NOT_FOUND)


def _mailbox(actor: Principal, raw: str) -> tuple[Principal, str]:
    """The local mailbox (an individual of the actor's tenant) an address names."""
    try:
        address = normalize_address(raw)
    except InvalidAddress:
        raise ValidationFailed(
            f"Invalid value for field mailbox: '{raw[:320]}' is not a valid email address.",
            field="mailbox",
        ) from None
    # The one scoping rule (principal_scope's), applied to the address's owner.
    emails = scope(PrincipalEmail.objects.all(), actor, tenant_field="principal__tenant")
    email = emails.filter(address=address).select_related("principal").first()
    if email is None:
        raise ValidationFailed(f"No mailbox here has the address {address}.", field="mailbox")
    if email.principal.type != PrincipalType.INDIVIDUAL:
        raise ValidationFailed(
            f"{address} belongs to a {email.principal.get_type_display().lower()}, not a mailbox.",
            field="mailbox",
        )
    return email.principal, address


def _host(raw: str) -> str:
    text = raw.strip().rstrip(".").lower()
    message = f"Invalid value for field host: '{raw[:255]}' is not a host name or IP address."
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        ascii_form = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationFailed(message, field="host") from None
    labels = ascii_form.split(".")
    if not ascii_form or len(ascii_form) > 253 or not all(_HOST_LABEL.match(x) for x in labels):
        raise ValidationFailed(message, field="host")
    return ascii_form


def _folders(protocol: str, folders: list[str] | None) -> list[str]:
    if protocol == FetchJob.Protocol.POP3:
        if folders and [f.strip().upper() for f in folders] != ["INBOX"]:
            raise ValidationFailed(
                "Invalid value for field folders: POP3 has one mailbox and no folders; "
                "folders apply to IMAP only.",
                field="folders",
            )
        return []
    cleaned: list[str] = []
    for folder in folders or ["INBOX"]:
        name = folder.strip()
        if not name or len(name) > 255 or _CONTROL.search(name):
            raise ValidationFailed(
                f"Invalid value for field folders: '{folder[:255]}' is not a folder name.",
                field="folders",
            )
        name = "INBOX" if name.upper() == "INBOX" else name
        if name not in cleaned:
            cleaned.append(name)
    if not cleaned:
        cleaned = ["INBOX"]
    if len(cleaned) > MAX_FOLDERS:
        raise ValidationFailed(
            f"Invalid value for field folders: at most {MAX_FOLDERS} folders.", field="folders"
        )
    return cleaned


def _apply(actor: Principal, job: FetchJob, values: FetchValues, *, creating: bool) -> dict:
    """Check `values` and set them on `job`; the changes (for the audit), password left out."""
    given = values.given()
    if creating:
        for name, label in (
            ("mailbox", "mailbox"),
            ("protocol", "type"),
            ("host", "host"),
            ("username", "username"),
            ("password", "password"),
        ):
            if not str(given.get(name) or "").strip():
                raise ValidationFailed(f"Missing required field: {label}", field=label)
    before = {name: getattr(job, name, None) for name in given if name not in ("password",)}
    if "mailbox" in given:
        job.mailbox, job.mailbox_address = _mailbox(actor, given["mailbox"])
        job.tenant_id = job.mailbox.tenant_id
        before["mailbox"] = job.mailbox_address if not creating else None
    if "protocol" in given:
        protocol = given["protocol"].strip().lower()
        if protocol not in FetchJob.Protocol.values:
            raise ValidationFailed(
                f"Invalid value for field type: '{given['protocol'][:32]}' is not one of: imap, "
                "pop3.",
                field="type",
            )
        job.protocol = protocol
    if "host" in given:
        job.host = _host(given["host"])
    if "security" in given:
        if given["security"] not in FetchJob.Security.values:
            raise ValidationFailed(
                f"Invalid value for field security: '{given['security'][:32]}' is not one of: "
                "ssl, starttls, none.",
                field="security",
            )
        job.security = given["security"]
    if "username" in given:
        username = given["username"].strip()
        if not username or len(username) > 320 or _CONTROL.search(username):
            raise ValidationFailed(
                "Invalid value for field username: 1 to 320 characters, no control characters.",
                field="username",
            )
        job.username = username
    if "password" in given:
        if not given["password"] or len(given["password"]) > 1024 or "\n" in given["password"]:
            raise ValidationFailed(
                "Invalid value for field password: 1 to 1024 characters on one line.",
                field="password",
            )
        job.password = given["password"]
    if "port" in given:
        if not 0 <= given["port"] <= 65535:
            raise ValidationFailed(
                "Invalid value for field port: a port is 1 to 65535 (0: the protocol's default).",
                field="port",
            )
        job.port = given["port"]
    if not job.port or ("port" not in given and ({"protocol", "security"} & set(given))):
        job.port = fetch.default_port(job.protocol, job.security)
    if job.security == FetchJob.Security.NONE and not fetch.plaintext_allowed(job.host):
        raise ValidationFailed(fetch.PLAINTEXT_REFUSED, field="useSsl")
    if "folders" in given or "protocol" in given or creating:
        # Switching protocols without naming folders: IMAP starts at INBOX, POP3 has none.
        kept = job.folders if job.protocol == FetchJob.Protocol.IMAP else None
        job.folders = _folders(job.protocol, given.get("folders", kept))
    if "delete_on_server" in given:
        job.delete_on_server = given["delete_on_server"]
    if "active" in given:
        job.active = given["active"]
    if "interval_minutes" in given:
        interval = given["interval_minutes"]
        if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
            raise ValidationFailed(
                f"Invalid value for field interval: {MIN_INTERVAL} to {MAX_INTERVAL} minutes.",
                field="interval",
            )
        job.interval_minutes = interval
    after = {name: getattr(job, name) for name in before}
    after["mailbox"] = job.mailbox_address
    changes = {
        name: {"from": before[name], "to": after[name]}
        for name in before
        if before[name] != after[name]
    }
    if "password" in given:
        changes["password"] = "changed"  # noqa: S105 - what the audit says, not a secret
    return changes


@transaction.atomic
def fetch_job_create(*, actor: Principal, values: FetchValues) -> FetchJob:
    _require(actor, Perm.MAILBOX_FETCH_CREATE)
    job = FetchJob(
        uuid=uuid.uuid4(), port=0, security=FetchJob.Security.SSL, interval_minutes=DEFAULT_INTERVAL
    )
    if values.security is None:
        values.security = FetchJob.Security.SSL
    changes = _apply(actor, job, values, creating=True)
    job.next_run_at = timezone.now()
    job.save(force_insert=True)
    audit(
        actor=actor,
        action="fetch_job.create",
        obj=job,
        object_id=str(job.uuid),
        tenant_id=job.tenant_id,
        changes={k: v["to"] for k, v in changes.items() if isinstance(v, dict)},
    )
    return job


# Changing any of these points the job at another remote mailbox: what was seen is forgotten.
_REMOTE = ("protocol", "host", "port", "username")


@transaction.atomic
def fetch_job_update(*, actor: Principal, job: FetchJob, values: FetchValues) -> FetchJob:
    _require(actor, Perm.MAILBOX_FETCH_UPDATE, job)
    job = FetchJob.objects.select_for_update().select_related("mailbox").get(pk=job.pk)
    tenant_before = job.tenant_id
    changes = _apply(actor, job, values, creating=False)
    if any(name in changes for name in _REMOTE):
        FetchSeen.objects.filter(job=job).delete()
    if job.tenant_id != tenant_before:  # a superadmin moved it: its history moves along
        FetchEntry.objects.filter(job=job).update(tenant_id=job.tenant_id)
    if "active" in changes and job.active:
        job.next_run_at = timezone.now()
    job.save()
    if changes:
        audit(
            actor=actor,
            action="fetch_job.update",
            obj=job,
            object_id=str(job.uuid),
            tenant_id=job.tenant_id,
            changes=changes,
        )
    return job


@transaction.atomic
def fetch_job_delete(*, actor: Principal, job: FetchJob) -> None:
    _require(actor, Perm.MAILBOX_FETCH_DELETE, job)
    audit(
        actor=actor,
        action="fetch_job.delete",
        obj=job,
        object_id=str(job.uuid),
        tenant_id=job.tenant_id,
    )
    FetchJob.objects.filter(pk=job.pk).delete()


def fetch_job_validate(*, actor: Principal, job: FetchJob) -> fetch.Validation:
    """Log in to the remote server and check the local mailbox; nothing is written."""
    _require(actor, Perm.MAILBOX_FETCH_UPDATE, job)
    return fetch.validate(job)


def _start(job: FetchJob, actor: Principal | None) -> TaskRun:
    return task_run_start(
        actor=actor,
        kind=f"{FETCH_TASK}:{job.uuid}",
        title=f"Fetch mail for {job.mailbox_address} from {job.host}",
        task_name=FETCH_TASK,
        tenant_id=job.tenant_id,
        arguments={"job_id": job.pk},
    )


def fetch_job_run_start(*, actor: Principal, job: FetchJob) -> TaskRun:
    """ "Fetch now": a run of the job (or the one under way), active or not."""
    _require(actor, Perm.MAILBOX_FETCH_UPDATE, job)
    return _start(job, actor)


def fetch_job_run(*, job_id: int, progress: Progress) -> Outcome:
    """The worker's side of a run (see apps.queue.fetch.run_job)."""
    lease = timedelta(seconds=FETCH_LEASE_SECONDS)
    return fetch.run_job(job_id, progress=progress, lease=lease)


def fetch_jobs_schedule(*, now=None) -> int:
    """Beat, every minute: a run for each active job whose next run is due and that no run
    holds; monitoring entries past MAILADMIN_FETCH_KEEP_DAYS are deleted. How many started."""
    now = now or timezone.now()
    free = Q(claim_id=None) | Q(lease_expires_at__lt=now)
    due = (
        FetchJob.objects.filter(free, active=True, next_run_at__lte=now)
        .exclude(mailbox__is_active=False)
        .order_by("next_run_at")[:SCHEDULE_BATCH]
    )
    started = 0
    for job in due:
        try:
            _start(job, None)
        except Exception:  # a broker that is down: the reaper resends the run's wake-up
            log.warning("could not wake a worker for fetch job %s", job.uuid, exc_info=True)
        started += 1
    keep = settings.MAILADMIN_FETCH_KEEP_DAYS
    if keep > 0:
        old = FetchEntry.objects.filter(created_at__lt=now - timedelta(days=keep))
        ids = list(old.values_list("pk", flat=True)[:5000])
        if ids:
            FetchEntry.objects.filter(pk__in=ids).delete()
    return started


@transaction.atomic
def fetch_entry_delete(*, actor: Principal, entry: FetchEntry) -> None:
    _require(actor, Perm.MAILBOX_FETCH_DELETE, entry.job)
    audit(
        actor=actor,
        action="fetch_entry.delete",
        obj=entry,
        tenant_id=entry.tenant_id,
        changes={"job": str(entry.job.uuid), "status": entry.status},
    )
    FetchEntry.objects.filter(pk=entry.pk).delete()
