"""Writes to a domain's DKIM keys, profile and DNS check results, and the start of its
checks. Private keys are never logged or returned.

Scoping comes from apps.domains.selectors (one entry point per model); runs are started by
task name (mailadmin.core.progress), never by importing apps.domains.tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.emails import InvalidAddress, display_address, display_domain, normalize_domain
from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import Perm
from apps.accounts.principals import services as principal_services
from apps.domains import check_workers, checks, dkim, selectors
from apps.domains.models import DkimKey, DnsCheckResult, DomainAlias, DomainProfile
from apps.domains.records import dkim_name, verification_name
from mailadmin.audit import audit
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import Outcome, Progress, task_run_start
from mailadmin.dns import make_async_resolver
from mailadmin.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

DNS_CHECK_TASK = "domains.dns_check"
DNS_CHECK_ALL_TASK = "domains.dns_check_all"
DKIM_ROTATION_TASK = "domains.dkim_rotation"
# "Check all" stores its results this many domains at a time.
CHECK_ALL_BATCH = 500
# "Check all" uses worker processes (MAILADMIN_DNS_CHECK_PROCESSES) from this many domains:
# starting them costs a second or two.
CHECK_ALL_PROCESS_MIN = 200
# The schedule skips a domain checked this recently (by hand, or by a duplicate beat tick).
RECHECK_AFTER = timedelta(minutes=50)


def _require(actor: Principal, permission: str) -> None:
    if not actor.has_permission(permission):
        raise PermissionDenied(permission)


# --- the domain profile -------------------------------------------------------------------


def domain_profile_ensure(*, actor: Principal | None, domain: Principal) -> DomainProfile:
    """The domain's profile, made (and audited, as `actor`) by the first service that needs
    it; it stores the ownership token the records show and the latest DNS status."""
    profile = selectors.domain_profile(domain)
    if profile is not None:
        return profile
    with transaction.atomic():
        profile, created = DomainProfile.objects.get_or_create(
            domain=domain,
            defaults={
                "tenant_id": domain.tenant_id,
                "verification_token": selectors.verification_token(domain),
            },
        )
        if created:
            audit(
                actor=actor,
                action="domainprofile.create",
                obj=profile,
                object_repr=domain.name,
                tenant_id=domain.tenant_id,
            )
    domain.domain_profile = profile  # cache it: later calls need no query
    return profile


# --- DKIM keys ----------------------------------------------------------------------------


@transaction.atomic
def dkim_key_create(
    *, actor: Principal, domain: Principal, algorithm: str, selector: str | None = None
) -> DkimKey:
    _require(actor, Perm.DKIM_SIGNATURE_CREATE)
    # Lock the domain row: two concurrent creates pick different default selectors.
    if selectors.domains_visible(actor).select_for_update().filter(pk=domain.pk).first() is None:
        raise NotFound()
    if algorithm not in dkim.ALGORITHMS:
        raise ValidationFailed(
            f"Invalid value for field algorithm: {algorithm} is not one of Ed25519, Rsa.",
            field="algorithm",
        )
    taken = set(DkimKey.objects.filter(domain=domain).values_list("selector", flat=True))
    if selector is None or selector == "":
        selector = dkim.default_selector(algorithm, today=timezone.now().date(), taken=taken)
    elif not dkim.is_valid_selector(selector):
        raise ValidationFailed(
            f"Invalid value for field selector: '{selector}' is not a DNS label "
            "(1-63 letters, digits or hyphens, not starting or ending with a hyphen).",
            field="selector",
        )
    if selector.lower() in {s.lower() for s in taken}:
        raise ValidationFailed(
            f"The selector {selector} is already used by {domain.name}.", field="selector"
        )
    pair = dkim.generate(algorithm)
    try:
        with transaction.atomic():
            key = DkimKey.objects.create(
                domain=domain,
                tenant_id=domain.tenant_id,
                selector=selector,
                algorithm=algorithm,
                private_key=pair.private_pem,
                public_key=pair.public_key,
            )
    except IntegrityError:
        raise ValidationFailed(
            f"The selector {selector} is already used by {domain.name}.", field="selector"
        ) from None
    audit(
        actor=actor,
        action="dkim.create",
        obj=key,
        object_repr=f"{selector}._domainkey.{domain.name}",
        tenant_id=domain.tenant_id,
        changes={"domain": domain.name, "selector": selector, "algorithm": algorithm},
    )
    return key


@transaction.atomic
def dkim_key_delete(*, actor: Principal, key: DkimKey) -> None:
    _require(actor, Perm.DKIM_SIGNATURE_CREATE)
    if not selectors.dkim_keys_visible(actor).filter(pk=key.pk).exists():
        raise NotFound()
    object_id = str(key.pk)
    domain_name = key.domain.name
    changes = {"domain": domain_name, "selector": key.selector, "algorithm": key.algorithm}
    key.delete()
    audit(
        actor=actor,
        action="dkim.delete",
        object_type="dkimkey",
        object_id=object_id,
        object_repr=f"{changes['selector']}._domainkey.{domain_name}",
        tenant_id=key.tenant_id,
        changes=changes,
    )


def _dkim_audit(actor: Principal | None, key: DkimKey, action: str, changes: dict) -> None:
    audit(
        actor=actor,
        action=action,
        obj=key,
        object_repr=f"{key.selector}._domainkey.{key.domain.name}",
        tenant_id=key.tenant_id,
        changes=changes,
    )


def _dkim_locked(actor: Principal, key: DkimKey) -> DkimKey:
    """The key (visible to the actor) locked for a state change; NotFound otherwise."""
    _require(actor, Perm.DKIM_SIGNATURE_CREATE)
    locked = (
        selectors.dkim_keys_visible(actor)
        .select_for_update()
        .select_related("domain")
        .filter(pk=key.pk)
        .first()
    )
    if locked is None:
        raise NotFound()
    return locked


@transaction.atomic
def dkim_key_rotate(*, actor: Principal, key: DkimKey) -> DkimKey:
    """Start replacing an active key: a new pending key of its algorithm, published now;
    it takes over signing once the rotation task or a DNS check finds its record."""
    key = _dkim_locked(actor, key)
    if key.state != DkimKey.State.ACTIVE:
        raise ValidationFailed(
            f"Only an active key is rotated; {key.selector} is {key.state}.", field="state"
        )
    waiting = DkimKey.objects.filter(
        domain_id=key.domain_id, algorithm=key.algorithm, state=DkimKey.State.PENDING
    ).first()
    if waiting is not None:
        raise ValidationFailed(
            f"The new key {waiting.selector} is already waiting for its DNS record: publish "
            "it (or retire it) before rotating again.",
            field="state",
        )
    return dkim_key_create(actor=actor, domain=key.domain, algorithm=key.algorithm)


@transaction.atomic
def dkim_key_retire(*, actor: Principal, key: DkimKey) -> DkimKey:
    """Stop using a key. An active key stops signing at once and stays published for the
    grace period (MAILADMIN_DKIM_RETIRE_GRACE_DAYS) so mail it signed still verifies; a
    pending key never signed anything, so it is withdrawn and destroyed at once."""
    key = _dkim_locked(actor, key)
    now = timezone.now()
    if key.state == DkimKey.State.ACTIVE:
        new_state = DkimKey.State.RETIRING
        fields = {"state": new_state, "state_changed_at": now}
    elif key.state == DkimKey.State.PENDING:
        new_state = DkimKey.State.RETIRED
        fields = {"state": new_state, "state_changed_at": now, "private_key": ""}
    else:
        raise ValidationFailed(
            f"The key {key.selector} is already {key.get_state_display().lower()}.",
            field="state",
        )
    changes = {"state": {"from": key.state, "to": new_state}}
    for name, value in fields.items():
        setattr(key, name, value)
    key.save(update_fields=list(fields))
    _dkim_audit(actor, key, "dkim.retire", changes)
    return key


def _dkim_activate(*, actor: Principal | None, key: DkimKey, now: datetime) -> list[DkimKey]:
    """pending -> active; the key it replaces (same domain and algorithm) -> retiring.
    Runs inside a transaction; returns the keys changed."""
    current = list(
        DkimKey.objects.select_for_update()
        .select_related("domain")
        .filter(domain_id=key.domain_id, algorithm=key.algorithm, state=DkimKey.State.ACTIVE)
    )
    for old in current:
        old.state, old.state_changed_at = DkimKey.State.RETIRING, now
        old.save(update_fields=["state", "state_changed_at"])
        _dkim_audit(actor, old, "dkim.retire", {"state": {"from": "active", "to": "retiring"}})
    key.state, key.state_changed_at = DkimKey.State.ACTIVE, now
    key.save(update_fields=["state", "state_changed_at"])
    _dkim_audit(actor, key, "dkim.activate", {"state": {"from": "pending", "to": "active"}})
    return [key, *current]


@transaction.atomic
def dkim_keys_activate_verified(
    *, actor: Principal | None, domain: Principal, verified: set[tuple[str, str]]
) -> list[DkimKey]:
    """Switch signing to the domain's pending keys whose record DNS showed as published:
    `verified` holds (record name, expected content) of the records a check found ok.
    Called by the DNS check (as whoever ran it) and the rotation task (as the system)."""
    activated = []
    now = timezone.now()
    # One switch per domain at a time (the rotation run and a DNS check may meet here):
    # the second waits and then sees the first's keys, never two active ones.
    Principal.objects.select_for_update().filter(pk=domain.pk).values_list("pk").first()
    pending = (
        DkimKey.objects.select_for_update()
        .select_related("domain")
        .filter(domain=domain, state=DkimKey.State.PENDING)
        .order_by("created_at", "id")
    )
    for key in pending:
        record = (
            dkim_name(domain.name, key.selector).lower(),
            dkim.txt_record(key.algorithm, key.public_key),
        )
        if record in verified:
            _dkim_activate(actor=actor, key=key, now=now)
            activated.append(key)
    return activated


def dkim_grace() -> timedelta:
    return timedelta(days=settings.MAILADMIN_DKIM_RETIRE_GRACE_DAYS)


def dkim_rotation_start() -> TaskRun:
    """Start the scheduled rotation run (one at a time; beat calls this)."""
    return task_run_start(
        actor=None,
        kind="dkim-rotation",
        title="DKIM key rotation",
        task_name=DKIM_ROTATION_TASK,
        tenant_id=None,
    )


def dkim_rotation_run(*, progress: Progress) -> Outcome:
    """Advance every key's life cycle, across tenants, as the system: look up the records
    of pending keys (through the configured resolver) and switch signing to those found;
    retire keys whose grace period is over (record withdrawn, private key destroyed)."""
    pending = list(selectors.dkim_keys_pending())
    progress.begin(len(pending) + 1)
    record_sets = [
        [
            {
                "type": "TXT",
                "name": dkim_name(key.domain.name, key.selector),
                "content": dkim.txt_record(key.algorithm, key.public_key),
            }
        ]
        for key in pending
    ]
    found = _check_many(record_sets, concurrency=settings.MAILADMIN_DNS_CHECK_CONCURRENCY)
    activated, waiting, failed = [], [], []
    for done, (key, rows, ((status, _found, detail),)) in enumerate(
        zip(pending, record_sets, found, strict=True), start=1
    ):
        name = rows[0]["name"]
        if status == checks.OK:
            activated += dkim_keys_activate_verified(
                actor=None, domain=key.domain, verified={(name.lower(), rows[0]["content"])}
            )
        elif status == checks.ERROR:
            failed.append(key)
        else:
            waiting.append(key)
        progress.step(done, f"{name}: {detail or status}")
    retired = dkim_keys_retire_expired(now=timezone.now())
    progress.step(len(pending) + 1, f"{len(retired)} keys retired")
    message = (
        f"{len(activated)} keys now signing, {len(waiting)} waiting for their DNS record, "
        f"{len(failed)} could not be looked up, {len(retired)} retired"
    )
    return Outcome(
        ok=not failed,
        message=message,
        result={
            "activated": [k.pk for k in activated],
            "waiting": [k.pk for k in waiting],
            "failed": [k.pk for k in failed],
            "retired": retired,
        },
    )


def dkim_keys_retire_expired(*, now: datetime) -> list[int]:
    """retiring -> retired once the grace period is over: the record leaves the record set
    and the private key is destroyed. Returns the ids retired."""
    retired = []
    for key_id in selectors.dkim_keys_expired(before=now - dkim_grace()):
        with transaction.atomic():
            key = (
                DkimKey.objects.select_for_update()
                .select_related("domain")
                .filter(pk=key_id, state=DkimKey.State.RETIRING)
                .first()
            )
            if key is None:  # changed since the read
                continue
            key.state, key.state_changed_at, key.private_key = DkimKey.State.RETIRED, now, ""
            key.save(update_fields=["state", "state_changed_at", "private_key"])
            _dkim_audit(None, key, "dkim.retire", {"state": {"from": "retiring", "to": "retired"}})
            retired.append(key.pk)
    return retired


# --- DNS checks ---------------------------------------------------------------------------


def domain_dns_check_start(*, actor: Principal, domain: Principal) -> TaskRun:
    """Start a check of one of the actor's domains; a worker carries it out as them. While
    a check of the domain is under way, that run is returned instead of a second one."""
    _require(actor, Perm.DNS_CHECK)
    domain = selectors.domain_get(actor=actor, name_or_id=domain.pk)
    return task_run_start(
        actor=actor,
        kind=selectors.dns_check_kind(domain.pk),
        title=f"DNS check of {domain.name}",
        task_name=DNS_CHECK_TASK,
        arguments={"domain_id": domain.pk},
        tenant_id=domain.tenant_id,
    )


def domain_dns_checks_schedule(*, minute: int) -> int:
    """Start this minute's hourly checks (domains with id % 60 == minute) as runs of the
    schedule, skipping domains checked in the last RECHECK_AFTER. Returns how many."""
    due = list(selectors.domains_due(minute=minute, checked_before=timezone.now() - RECHECK_AFTER))
    for domain in due:
        task_run_start(
            actor=None,
            kind=selectors.dns_check_kind(domain.pk),
            title=f"Scheduled DNS check of {domain.name}",
            task_name=DNS_CHECK_TASK,
            arguments={"domain_id": domain.pk},
            tenant_id=domain.tenant_id,
        )
    return len(due)


def _check_many(record_sets: list[list], *, concurrency: int) -> list[list[checks.Result]]:
    """Run the checks of several domains' records (asyncio, `concurrency` at a time)."""
    return checks.run_sync(
        checks.check_domains(
            record_sets,
            concurrency=concurrency,
            resolver=make_async_resolver(),
            hostname=settings.MAILADMIN_HOSTNAME,
            outbound_ips=settings.MAILADMIN_OUTBOUND_IPS,
            deadline=settings.MAILADMIN_DNS_CHECK_DEADLINE,
        )
    )


def _with_aliases(
    domain: Principal, records: list, aliases: list[DomainAlias]
) -> tuple[list, list[DomainAlias | None]]:
    """The records a check of `domain` looks up: its own, then each alias's (each alias is a
    zone of its own, judged with the domain and counted in its status: mail to an alias
    whose MX points elsewhere never arrives), and for each record the alias it is of."""
    checked, owners = list(records), [None] * len(records)
    for alias in aliases:
        extra = selectors.alias_expected_records(alias_name=alias.alias, domain_name=domain.name)
        checked += extra
        owners += [alias] * len(extra)
    return checked, owners


def _dns_check_store(
    *,
    actor: Principal | None,
    domain: Principal,
    records: list,
    owners: list[DomainAlias | None],
    found_by_record: list[checks.Result],
    now: datetime,
) -> tuple[str | None, list[DnsCheckResult], list[dict]]:
    """Store one domain's check: (its new status or None when it could not be checked, the
    results, the progress rows)."""
    (stored,) = _dns_checks_store(
        actor=actor, checked=[(domain, records, owners, found_by_record)], now=now
    )
    return stored


def _dns_checks_store(
    *,
    actor: Principal | None,
    checked: list[tuple[Principal, list, list[DomainAlias | None], list[checks.Result]]],
    now: datetime,
) -> list[tuple[str | None, list[DnsCheckResult], list[dict]]]:
    """Store the checks of several domains (domain, records, the alias of each record or
    None, results) with a constant number of queries (Check all stores a batch of domains
    at once): for each, (its new status or None when it could not be checked, the results,
    the progress rows)."""
    stored = []
    for domain, records, owners, found_by_record in checked:
        profile = domain_profile_ensure(actor=actor, domain=domain)
        results: list[DnsCheckResult] = []
        rows = []
        for record, owner, (status, found, detail) in zip(
            records, owners, found_by_record, strict=True
        ):
            results.append(
                DnsCheckResult(
                    domain=domain,
                    alias=owner,
                    tenant_id=domain.tenant_id,
                    record_type=record["type"],
                    name=record["name"],
                    expected=record["content"],
                    found="\n".join(found),
                    status=status,
                    required=record.get("required", True),
                    detail=detail[:512],
                    checked_at=now,
                )
            )
            label = f"{record['type']} {record['name']}"
            shown = detail or ("found" if status == checks.OK else status)
            rows.append({"name": label, "ok": status == checks.OK, "detail": shown})
        dns_status = checks.overall_status((r.status, r.required) for r in results)
        proof = verification_name(domain.name)
        verified = any(r.status == checks.OK and r.name == proof for r in results)
        stored.append((domain, profile, results, rows, dns_status, verified))
    _dns_results_store(actor=actor, stored=[s[:3] + s[4:] for s in stored], now=now)
    for domain, _profile, results, _rows, _status, _verified in stored:
        # Pending keys' records are the optional DKIM ones (the active key's is required): a
        # domain without a key waiting costs no query here.
        published = {
            (r.name.lower(), r.expected)
            for r in results
            if r.status == checks.OK and not r.required and "._domainkey." in r.name.lower()
        }
        if published:
            dkim_keys_activate_verified(actor=actor, domain=domain, verified=published)
    return [(status, results, rows) for _d, _p, results, rows, status, _v in stored]


def domain_dns_status_recompute(*, profile: DomainProfile) -> str | None:
    """Judge the domain again from its stored results, without a lookup: after an alias is
    removed (its results go with it), a status that only the alias made worse must not wait
    for the next check. The caller holds the profile's lock; returns the new status when it
    changed, else None (a domain never checked, or whose latest check could not finish,
    keeps its status)."""
    results = DnsCheckResult.objects.filter(domain_id=profile.domain_id)
    rows = list(results.values_list("status", "required"))
    dns_status = checks.overall_status(rows) if rows else None
    if dns_status is None or dns_status == profile.dns_status:
        return None
    DomainProfile.objects.filter(pk=profile.pk).update(dns_status=dns_status)
    profile.dns_status = dns_status
    return dns_status


def domain_dns_check_run(*, actor: Principal | None, domain_id: int, progress: Progress) -> Outcome:
    """Look up every record the domain must publish, store what was found, and say how it
    went. `actor` is who started the check, checked again now (they may have lost the
    permission or the domain since); None is the hourly schedule, which may check any.
    """
    if actor is None:
        domain = selectors.domain_for_schedule(domain_id=domain_id)
    else:
        _require(actor, Perm.DNS_CHECK)
        domain = selectors.domains_visible(actor).filter(pk=domain_id).first()
    if domain is None:
        return Outcome(False, "The domain no longer exists.")
    aliases = selectors.aliases_by_domain(domains=[domain]).get(domain.pk, [])
    records, owners = _with_aliases(domain, selectors.expected_records(domain=domain), aliases)
    progress.begin(len(records))
    (found_by_record,) = _check_many([records], concurrency=1)
    dns_status, results, rows = _dns_check_store(
        actor=actor,
        domain=domain,
        records=records,
        owners=owners,
        found_by_record=found_by_record,
        now=timezone.now(),
    )
    for done, row in enumerate(rows, start=1):
        progress.step(done, f"{row['name']}: {row['detail']}")
    found_count = sum(r.status == checks.OK for r in results)
    if dns_status is None:
        failed = sum(r.status == checks.ERROR for r in results)
        kept = DomainProfile.objects.get(domain=domain).get_dns_status_display()
        return Outcome(
            ok=False,
            message=(
                f"Could not check: {failed} of {len(results)} lookups failed (our resolver, "
                f"not the domain's DNS); the domain keeps its status ({kept})"
            ),
            result={"rows": rows, "status": "unknown", "couldNotCheck": True},
        )
    return Outcome(
        ok=dns_status != DomainProfile.Status.FAILING,
        message=f"{found_count} of {len(results)} records found",
        result={"rows": rows, "status": dns_status},
    )


def domain_dns_check_all_start(*, actor: Principal) -> TaskRun:
    """Start "Check all": one run that checks every domain the actor may see."""
    _require(actor, Perm.DNS_CHECK)
    scope_name = actor.tenant_id if actor.tenant_id is not None else "all"
    return task_run_start(
        actor=actor,
        kind=f"dns-check-all:{scope_name}",
        title="DNS check of every domain",
        task_name=DNS_CHECK_ALL_TASK,
        tenant_id=actor.tenant_id,
    )


def _check_config(concurrency: int) -> check_workers.CheckConfig:
    resolver = make_async_resolver()
    return check_workers.CheckConfig(
        nameservers=resolver.nameservers,
        timeout=resolver.timeout,
        hostname=settings.MAILADMIN_HOSTNAME,
        outbound_ips=list(settings.MAILADMIN_OUTBOUND_IPS),
        deadline=settings.MAILADMIN_DNS_CHECK_DEADLINE,
        concurrency=concurrency,
    )


def domain_dns_check_all_run(*, actor: Principal, progress: Progress) -> Outcome:
    """Check every domain the actor may see, CHECK_ALL_BATCH at a time, their lookups
    MAILADMIN_DNS_CHECK_CONCURRENCY domains at a time in each of MAILADMIN_DNS_CHECK_PROCESSES
    worker processes (for runs of CHECK_ALL_PROCESS_MIN domains or more; a smaller run is
    not worth starting them). While one batch is being checked the previous one is stored,
    so progress is real and a restart loses at most two batches."""
    _require(actor, Perm.DNS_CHECK)
    ids = list(selectors.domains_visible(actor).order_by("id").values_list("id", flat=True))
    progress.begin(len(ids))
    counts = {"ok": 0, "partial": 0, "failing": 0, "unchecked": 0}
    processes = settings.MAILADMIN_DNS_CHECK_PROCESSES if len(ids) >= CHECK_ALL_PROCESS_MIN else 1
    done = 0

    def store(
        domains: list, record_sets: list, owner_sets: list, results: Callable[[], list]
    ) -> None:
        nonlocal done
        checked = list(zip(domains, record_sets, owner_sets, results(), strict=True))
        for dns_status, _, _ in _dns_checks_store(actor=actor, checked=checked, now=timezone.now()):
            counts[dns_status or "unchecked"] += 1
        done += len(domains)
        progress.step(done, f"{done} of {len(ids)} domains checked")

    config = _check_config(settings.MAILADMIN_DNS_CHECK_CONCURRENCY)
    with check_workers.Checker(config, processes=processes) as checker:
        pending = None
        for start in range(0, len(ids), CHECK_ALL_BATCH):
            domains = list(
                selectors.domains_visible(actor)
                .filter(pk__in=ids[start : start + CHECK_ALL_BATCH])
                .select_related("domain_profile")
                .order_by("id")
            )
            aliases = selectors.aliases_by_domain(domains=domains)
            record_sets, owner_sets = [], []
            for domain, own in zip(
                domains, selectors.expected_records_many(domains=domains), strict=True
            ):
                records, owners = _with_aliases(domain, own, aliases.get(domain.pk, []))
                record_sets.append(records)
                owner_sets.append(owners)
            checking = (domains, record_sets, owner_sets, checker.submit(record_sets))
            if pending is not None:
                store(*pending)
            pending = checking
        if pending is not None:
            store(*pending)
    message = (
        f"{len(ids)} domains: {counts['ok']} ok, {counts['partial']} partial, "
        f"{counts['failing']} failing, {counts['unchecked']} could not be checked"
    )
    return Outcome(ok=counts["failing"] == 0, message=message, result=counts)


@transaction.atomic
def _dns_results_store(
    *,
    actor: Principal | None,
    stored: list[tuple[Principal, DomainProfile, list[DnsCheckResult], str | None, bool]],
    now: datetime,
) -> None:
    """Replace the domains' results and update their profiles, a fixed number of queries
    for any number of domains (domain, profile, results, status, verified); audit what
    changed for people (the status, the first verification), not every unchanged hourly
    check. A None status (the check could not finish) keeps the previous status and check
    time."""
    previous = {
        p.pk: p
        for p in DomainProfile.objects.select_for_update()
        .filter(pk__in=[profile.pk for _, profile, *_ in stored])
        .order_by("pk")  # one lock order for all writers: no deadlocks between runs
    }
    rows = [result for _, _, results, *_ in stored for result in results]
    alias_ids = {r.alias_id for r in rows if r.alias_id is not None}
    if alias_ids:
        # An alias removed while it was being checked takes its results with it; the lock
        # keeps the others until these rows are in (a batch without aliases asks nothing).
        kept = set(
            DomainAlias.objects.select_for_update()
            .filter(pk__in=alias_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        rows = [r for r in rows if r.alias_id is None or r.alias_id in kept]
    DnsCheckResult.objects.filter(domain__in=[domain for domain, *_ in stored]).delete()
    DnsCheckResult.objects.bulk_create(rows, batch_size=1000)
    updates: dict[tuple, list[int]] = {}
    for domain, profile, _results, dns_status, verified in stored:
        before = previous[profile.pk]
        fields: dict = {}
        if dns_status is not None:
            fields = {"dns_status": dns_status, "dns_checked_at": now}
        changes: dict = {}
        if dns_status is not None and before.dns_status != dns_status:
            changes["dns_status"] = dns_status
        if verified and before.verified_at is None:
            fields["verified_at"] = now
            changes["verified"] = True
        if fields:
            updates.setdefault(tuple(sorted(fields.items())), []).append(profile.pk)
        if changes:
            audit(
                actor=actor,
                action="domain.dns_check",
                obj=domain,
                object_type="domain",
                tenant_id=domain.tenant_id,
                changes=changes,
            )
    for fields, pks in updates.items():
        DomainProfile.objects.filter(pk__in=pks).update(**dict(fields))


# --- registering and deleting domains (domains API) ---------------------------------------


def domain_register(*, actor: Principal, name: str, tenant_id: int | None = None) -> Principal:
    """Register a domain (Unicode or punycode) in a tenant: the actor's own, or for a
    superadmin the one `tenant_id` names. It is the same row as the `domain` principal, made
    by principal_create with all its checks (name taken, tenant's domain limit, audit)."""
    _require(actor, Perm.DOMAIN_CREATE)
    data: dict = {"type": PrincipalType.DOMAIN, "name": name}
    if actor.reaches_all_tenants:
        if tenant_id is None:
            raise ValidationFailed("Missing required field: project_id", field="project_id")
        tenant = Principal.objects.filter(pk=tenant_id, type=PrincipalType.TENANT).first()
        if tenant is None:
            raise ValidationFailed(f"No such project: {tenant_id}", field="project_id")
        data["tenant"] = tenant.name
    elif tenant_id is not None and tenant_id != actor.tenant_id:
        raise ValidationFailed(f"No such project: {tenant_id}", field="project_id")
    try:
        normalize_domain(name)
    except InvalidAddress as exc:
        raise ValidationFailed(
            f"Invalid value for field name: {exc.message}", field="name"
        ) from None
    # principal_create refuses the name of a domain alias (naming its domain to its tenant only).
    return principal_services.principal_create(actor=actor, data=data)


# How many of the addresses a refused deletion names.
CONFLICT_LISTED = 5


@dataclass(frozen=True)
class DomainRemoval:
    """What deleting a domain took with it."""

    mailboxes: list[str]  # principals deleted: every address they had was on the domain
    addresses: list[str]  # every address on the domain, now gone
    dkim_keys: int


@transaction.atomic
def domain_delete(*, actor: Principal, domain: Principal, confirm: bool = False) -> DomainRemoval:
    """Delete a domain with its DKIM keys and DNS state. Principals receiving mail at it
    go too, but only when `confirm` says the caller knows (else Conflict saying what would
    go): one whose every address is on the domain is deleted, others lose those addresses.
    Each step runs through the principal services (permissions, audit)."""
    _require(actor, Perm.DOMAIN_DELETE)
    domain = selectors.domain_get(actor=actor, name_or_id=domain.pk)
    holders = selectors.domain_mailboxes(domain)
    addresses = [address for _, on_domain in holders for address in on_domain]
    if holders and not confirm:
        shown = ", ".join(display_address(a) for a in addresses[:CONFLICT_LISTED])
        if len(addresses) > CONFLICT_LISTED:
            shown += f" and {len(addresses) - CONFLICT_LISTED} more"
        raise Conflict(
            f"The domain {display_domain(domain.name)} has {len(holders)} mailbox(es) with "
            f"{len(addresses)} address(es) ({shown}); deleting it deletes them too. "
            "Repeat the request with confirm=true to go ahead.",
        )
    deleted: list[str] = []
    for principal, on_domain in holders:
        if principal.emails.count() == len(on_domain):
            principal_services.principal_delete(actor=actor, principal=principal)
            deleted.append(principal.name)
        else:
            principal_services.principal_update(
                actor=actor,
                principal=principal,
                operations=[
                    {"action": "removeItem", "field": "emails", "value": a} for a in on_domain
                ],
            )
    dkim_keys = DkimKey.objects.filter(domain=domain).count()
    principal_services.principal_delete(actor=actor, principal=domain)
    return DomainRemoval(
        mailboxes=deleted, addresses=[display_address(a) for a in addresses], dkim_keys=dkim_keys
    )
