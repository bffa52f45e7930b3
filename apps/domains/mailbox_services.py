"""Writes to mailboxes, their extra addresses, domain aliases and catch-alls.

A mailbox is an `individual` principal made and changed by the principal services (name
rule, address normaliser, tenant limits, password checks, audit): this module adds the
provisioning rules and messages of mailbox-provisioning-api.txt and the MailboxProfile row.
Callers pass values already parsed by apps.domains.mailbox_fields (attribute names).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from apps.accounts.emails import (
    InvalidAddress,
    display_address,
    display_domain,
    normalize_address,
    normalize_domain,
)
from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
from apps.accounts.names import foreign_parent_problem, name_problem
from apps.accounts.permissions import Perm
from apps.accounts.principals import services as principal_services
from apps.domains import mailbox_fields, mailbox_selectors, selectors
from apps.domains import services as domain_services
from apps.domains.models import CatchAll, DomainAlias, DomainProfile, MailboxProfile
from mailadmin.audit import audit
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import Outcome, Progress, task_run_start
from mailadmin.errors import NotFound, PermissionDenied, ServiceError, ValidationFailed
from mailadmin.sealing import seal, unseal
from mailadmin.tenancy import reaches

MB = 1024**2
IMPORT_TASK = "domains.mailbox_import"
# Rows one CSV import may hold (the upload limit keeps the file itself small).
IMPORT_MAX_ROWS = 5000
# What a principal-service refusal is about, in the provisioning API's field names.
_FIELD_NAMES = {"secrets": "password", "quota": "size", "description": "displayName"}
_DISPLAY_FORBIDDEN = set('<>"\\') | {chr(c) for c in range(32)} | {"\x7f"}


def _require(actor: Principal, permission: str) -> None:
    if not actor.has_permission(permission):
        raise PermissionDenied(permission)


def _visible_domain(actor: Principal, domain: Principal) -> Principal:
    found = selectors.domains_visible(actor).filter(pk=domain.pk).select_related("tenant").first()
    if found is None:
        raise NotFound(f"{display_domain(domain.name)} not found")
    return found


def _renamed(exc: ServiceError) -> ServiceError:
    """A principal-service refusal named by the provisioning field it is about."""
    exc.field = _FIELD_NAMES.get(exc.field or "", exc.field)
    exc.message = exc.message.replace("Invalid value for field secrets: ", "Invalid password: ")
    exc.args = (exc.message,)
    return exc


def _principal_update(actor: Principal, principal: Principal, operations: list[dict]) -> None:
    try:
        principal_services.principal_update(actor=actor, principal=principal, operations=operations)
    except ServiceError as exc:
        raise _renamed(exc) from None


# --- the provisioning rules ---------------------------------------------------------------


def mailbox_address(name: str, domain: Principal) -> str:
    """The primary address of mailbox `name` on `domain` (also its login name), or the
    spec's "Invalid user name": the name follows the principal name rule and makes a valid
    address."""
    local = (name or "").strip()
    if "@" in local or name_problem(local) is not None:
        raise ValidationFailed("Invalid user name", field="name")
    try:
        return normalize_address(f"{local}@{domain.name}")
    except InvalidAddress:
        raise ValidationFailed("Invalid user name", field="name") from None


def _address_in_use(address: str, *, exclude: Principal | None = None) -> bool:
    emails = PrincipalEmail.objects.filter(address=address)
    names = Principal.objects.filter(name__iexact=address)
    if exclude is not None:
        emails, names = emails.exclude(principal=exclude), names.exclude(pk=exclude.pk)
    return emails.exists() or names.exists()


def _in_use_error(address: str) -> ValidationFailed:
    return ValidationFailed(
        f"The email address {display_address(address)} is already in use", field="name"
    )


def check_values(values: dict[str, Any]) -> None:
    """The rules a value follows whatever the database holds (creating or editing)."""
    if "display_name" in values:
        shown = values["display_name"]
        if not shown or any(c in _DISPLAY_FORBIDDEN for c in shown):
            raise ValidationFailed("Invalid display name", field="displayName")
    password = values.get("password")
    if password is not None and len(password) < 8:
        raise ValidationFailed("Password must be at least 8 characters long", field="password")
    forward = values.get("forwarding_address")
    if forward:
        try:
            values["forwarding_address"] = normalize_address(forward)
        except InvalidAddress:
            raise ValidationFailed(
                f"invalid email address: {forward}", field="emailForwardingAddress"
            ) from None


def _profile_changes(profile: MailboxProfile, values: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    for attr in mailbox_fields.PROFILE_ATTRS:
        if attr in values and getattr(profile, attr) != values[attr]:
            changes[attr] = {"from": getattr(profile, attr), "to": values[attr]}
            setattr(profile, attr, values[attr])
    return changes


def _set_enabled(actor: Principal, principal: Principal, enabled: bool) -> None:
    if principal.is_active == enabled:
        return
    if not enabled and principal.pk == actor.pk:
        raise ValidationFailed("You can't disable your own account.", field="enabled")
    Principal.objects.filter(pk=principal.pk).update(is_active=enabled)
    principal.is_active = enabled
    audit(
        actor=actor,
        action="principal.update",
        obj=principal,
        tenant_id=principal.tenant_id,
        changes={"enabled": {"from": not enabled, "to": enabled}},
    )


# --- mailboxes ----------------------------------------------------------------------------


@transaction.atomic
def mailbox_create(
    *, actor: Principal, domain: Principal, name: str, values: dict[str, Any]
) -> MailboxProfile:
    """A new mailbox `name`@`domain`: the principal (by principal_create, with its primary
    address, quota and password) and its profile. `values` must hold the fields the spec
    requires for Add (display_name, password, size)."""
    _require(actor, Perm.PRINCIPAL_CREATE)
    domain = _visible_domain(actor, domain)
    address = mailbox_address(name, domain)
    check_values(values)
    if _address_in_use(address):
        raise _in_use_error(address)
    data: dict[str, Any] = {
        "type": PrincipalType.INDIVIDUAL,
        "name": address,
        "description": values["display_name"],
        "emails": [address],
        "quota": values["size"] * MB,
        "secrets": values["password"],
    }
    if actor.reaches_all_tenants and domain.tenant_id is not None:
        data["tenant"] = domain.tenant.name
    try:
        principal = principal_services.principal_create(actor=actor, data=data)
    except ServiceError as exc:
        raise _renamed(exc) from None
    if values.get("enabled") is False:
        _set_enabled(actor, principal, False)
    profile = MailboxProfile(
        principal=principal,
        domain=domain,
        tenant_id=domain.tenant_id,
        name=address.partition("@")[0],
        display_name=values["display_name"],
    )
    _profile_changes(profile, values)
    profile.save()
    changes = {a: getattr(profile, a) for a in mailbox_fields.PROFILE_ATTRS}
    audit(
        actor=actor,
        action="mailbox.create",
        obj=profile,
        object_repr=address,
        tenant_id=domain.tenant_id,
        changes={k: v for k, v in changes.items() if v not in ("", False)},
    )
    return profile


@transaction.atomic
def mailbox_update(
    *, actor: Principal, mailbox: MailboxProfile, values: dict[str, Any]
) -> MailboxProfile:
    """Change the fields in `values`; the others stay (the spec's Edit)."""
    _require(actor, Perm.PRINCIPAL_UPDATE)
    profile = mailbox_selectors.mailboxes_visible(actor).select_for_update().filter(pk=mailbox.pk)
    profile = profile.select_related("principal").first()
    if profile is None:
        raise NotFound(mailbox_selectors.MAILBOX_NOT_FOUND)
    check_values(values)
    principal = profile.principal
    operations = []
    if "display_name" in values:
        operations.append(
            {"action": "set", "field": "description", "value": values["display_name"]}
        )
    if "size" in values:
        operations.append({"action": "set", "field": "quota", "value": values["size"] * MB})
    if "password" in values:
        operations.append({"action": "set", "field": "secrets", "value": values["password"]})
    if operations:
        _principal_update(actor, principal, operations)
    if "enabled" in values:
        _set_enabled(actor, principal, values["enabled"])
    changes = _profile_changes(profile, values)
    if changes:
        profile.save()
        audit(
            actor=actor,
            action="mailbox.update",
            obj=profile,
            object_repr=principal.name,
            tenant_id=profile.tenant_id,
            changes=changes,
        )
    return profile


@transaction.atomic
def mailbox_delete(*, actor: Principal, mailbox: MailboxProfile) -> None:
    """Delete the mailbox: its principal, profile and addresses (principal_delete)."""
    _require(actor, Perm.PRINCIPAL_DELETE)
    profile = mailbox_selectors.mailboxes_visible(actor).filter(pk=mailbox.pk).first()
    if profile is None:
        raise NotFound(mailbox_selectors.MAILBOX_NOT_FOUND)
    try:
        principal_services.principal_delete(actor=actor, principal=profile.principal)
    except ServiceError as exc:
        raise _renamed(exc) from None


def _address_arg(address: str) -> str:
    try:
        return normalize_address(address)
    except InvalidAddress:
        raise ValidationFailed(f"invalid email address: {address}", field="address") from None


def _in_scope(actor: Principal, mailbox: MailboxProfile) -> None:
    """Callers look the mailbox up scoped; this holds even if one forgets (no query)."""
    if not reaches(actor, mailbox.tenant_id):
        raise NotFound(mailbox_selectors.MAILBOX_NOT_FOUND)


@transaction.atomic
def mailbox_address_add(*, actor: Principal, mailbox: MailboxProfile, address: str) -> str:
    """Give the mailbox one more address (on a domain of its tenant, used by nobody)."""
    _require(actor, Perm.PRINCIPAL_UPDATE)
    _in_scope(actor, mailbox)
    stored = _address_arg(address)
    principal = mailbox.principal
    current = [e.address for e in principal.emails.all()]
    if stored in current:
        return stored
    # Whose domain first: "already in use" must never answer about another tenant's address.
    try:
        principal_services.email_domains_check([stored], principal.tenant, field="address")
    except ServiceError as exc:
        raise ValidationFailed(exc.message, field="address") from None
    if _address_in_use(stored, exclude=principal):
        raise ValidationFailed(
            f"The email address {display_address(stored)} is already in use", field="address"
        )
    _principal_update(actor, principal, [{"action": "addItem", "field": "emails", "value": stored}])
    return stored


@transaction.atomic
def mailbox_address_remove(*, actor: Principal, mailbox: MailboxProfile, address: str) -> None:
    """Take an extra address away; the primary one (the login name) stays."""
    _require(actor, Perm.PRINCIPAL_UPDATE)
    _in_scope(actor, mailbox)
    stored = _address_arg(address)
    principal = mailbox.principal
    current = [e.address for e in principal.emails.all()]
    if stored not in current:
        raise NotFound("Email address not found")
    if stored == principal.name or current.index(stored) == 0:
        raise ValidationFailed(
            f"The primary address {display_address(stored)} can't be removed", field="address"
        )
    _principal_update(
        actor, principal, [{"action": "removeItem", "field": "emails", "value": stored}]
    )


# --- domain aliases and catch-all ---------------------------------------------------------


@transaction.atomic
def domain_alias_create(*, actor: Principal, domain: Principal, alias: str) -> DomainAlias:
    """Make `alias` another name of `domain`: mail to x@alias goes to x@domain."""
    _require(actor, Perm.DOMAIN_UPDATE)
    domain = _visible_domain(actor, domain)
    try:
        name = normalize_domain(alias)
    except InvalidAddress as exc:
        raise ValidationFailed(exc.message, field="alias") from None
    shown = display_domain(name)
    if name == domain.name:
        raise ValidationFailed("A domain can't be an alias of itself.", field="alias")
    if Principal.objects.filter(type=PrincipalType.DOMAIN, name=name).exists():
        raise ValidationFailed(
            f"The domain {shown} is registered here; an alias must be a name of its own.",
            field="alias",
        )
    if DomainAlias.objects.filter(alias=name).exists():
        raise ValidationFailed(f"{shown} is already an alias.", field="alias")
    problem = foreign_parent_problem(actor, name, domain.tenant_id)
    if problem is not None:
        raise ValidationFailed(problem, field="alias")
    row = DomainAlias.objects.create(alias=name, domain=domain, tenant_id=domain.tenant_id)
    audit(
        actor=actor,
        action="domainalias.create",
        obj=row,
        tenant_id=domain.tenant_id,
        changes={"alias": name, "domain": domain.name},
    )
    return row


@transaction.atomic
def domain_alias_delete(*, actor: Principal, alias: DomainAlias) -> None:
    _require(actor, Perm.DOMAIN_UPDATE)
    row = mailbox_selectors.domain_aliases_visible(actor).filter(pk=alias.pk).first()
    if row is None:
        raise NotFound()
    object_id, changes = str(row.pk), {"alias": row.alias, "domain": row.domain.name}
    # The DNS check stores the alias's results under the domain profile's lock: taking it
    # first (the same order) makes this wait for a store under way instead of deadlocking.
    profile = DomainProfile.objects.select_for_update().filter(domain_id=row.domain_id).first()
    row.delete()
    if profile is not None:
        # its results went with it: the domain's status no longer counts them
        dns_status = domain_services.domain_dns_status_recompute(profile=profile)
        if dns_status is not None:
            changes["dns_status"] = dns_status
    audit(
        actor=actor,
        action="domainalias.delete",
        object_type="domainalias",
        object_id=object_id,
        object_repr=changes["alias"],
        tenant_id=row.tenant_id,
        changes=changes,
    )


@transaction.atomic
def catch_all_set(*, actor: Principal, domain: Principal, target: str) -> CatchAll | None:
    """Send mail for unknown addresses of `domain` to the principal with the address
    `target` (of the same tenant); an empty `target` turns the catch-all off."""
    _require(actor, Perm.DOMAIN_UPDATE)
    domain = _visible_domain(actor, domain)
    current = CatchAll.objects.filter(domain=domain).select_related("target").first()
    before = current.target.name if current else ""
    if not (target or "").strip():
        if current is not None:
            current.delete()
            audit(
                actor=actor,
                action="catchall.delete",
                object_type="catchall",
                object_id=str(domain.pk),
                object_repr=domain.name,
                tenant_id=domain.tenant_id,
                changes={"target": {"from": before, "to": ""}},
            )
        return None
    try:
        stored = normalize_address(target)
    except InvalidAddress:
        raise ValidationFailed(f"invalid email address: {target}", field="target") from None
    email = (
        PrincipalEmail.objects.filter(address=stored, principal__tenant_id=domain.tenant_id)
        .select_related("principal")
        .first()
    )
    if email is None:
        raise ValidationFailed(
            f"No account of this tenant has the address {display_address(stored)}.",
            field="target",
        )
    if current is not None and current.target_id == email.principal_id:
        return current
    row, _ = CatchAll.objects.update_or_create(
        domain=domain, defaults={"target": email.principal, "tenant_id": domain.tenant_id}
    )
    audit(
        actor=actor,
        action="catchall.update",
        obj=row,
        object_repr=domain.name,
        tenant_id=domain.tenant_id,
        changes={"target": {"from": before, "to": email.principal.name}},
    )
    return row


# --- CSV import and export ----------------------------------------------------------------

# Export columns: the mailbox name, then the spec's fields (never the password).
CSV_COLUMNS = ("name", *(f.api for f in mailbox_fields.FIELDS if f.api != "password"))


def mailbox_csv_row(profile: MailboxProfile) -> list[str]:
    principal = profile.principal
    row = [profile.name]
    for field in mailbox_fields.FIELDS:
        if field.api == "password":
            continue
        if field.attr == "size":
            value: Any = principal.quota // MB
        elif field.attr == "enabled":
            value = principal.is_active
        else:
            value = getattr(profile, field.attr)
        row.append(("true" if value else "false") if isinstance(value, bool) else str(value))
    return row


def mailboxes_csv_export(*, actor: Principal, domain: Principal) -> Iterator[str]:
    """The domain's mailboxes as CSV lines, read in chunks (a download of any size)."""
    _require(actor, Perm.PRINCIPAL_LIST)
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(row) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        return buffer.getvalue()

    yield line(CSV_COLUMNS)
    for profile in mailbox_selectors.mailbox_list(actor=actor, domain=domain).iterator(
        chunk_size=2000
    ):
        yield line(mailbox_csv_row(profile))


def _csv_rows(text: str) -> list[dict[str, str]]:
    """The rows of an import file: a header naming `name` and spec fields, then rows."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _read_rows(reader)
    except csv.Error as exc:  # e.g. a field over 128 KB; line_num counts lines read whole
        raise ValidationFailed(
            f"Line {reader.line_num + 1} is not valid CSV: {exc}.", field="file"
        ) from None


def _read_rows(reader: csv.DictReader) -> list[dict[str, str]]:
    header = reader.fieldnames or []
    if "name" not in header:
        raise ValidationFailed("The file has no header row with a name column.", field="file")
    for column in header:
        if column != "name" and column not in mailbox_fields.BY_API:
            raise ValidationFailed(f"Unrecognized field: {column}", field="file")
    rows = []
    for row in reader:
        if None in row:
            raise ValidationFailed(
                f"Row {reader.line_num - 1} has more columns than the header.", field="file"
            )
        rows.append({k: (v or "") for k, v in row.items()})
        if len(rows) > IMPORT_MAX_ROWS:
            raise ValidationFailed(
                f"A file may hold at most {IMPORT_MAX_ROWS} mailboxes.", field="file"
            )
    if not rows:
        raise ValidationFailed("The file holds no mailboxes.", field="file")
    return rows


def mailboxes_import_start(*, actor: Principal, domain: Principal, text: str) -> TaskRun:
    """Read an import file (refusing a malformed one at once) and start its run."""
    _require(actor, Perm.PRINCIPAL_CREATE)
    domain = _visible_domain(actor, domain)
    rows = _csv_rows(text)
    shown = display_domain(domain.name)
    return task_run_start(
        actor=actor,
        kind=f"mailbox-import:{domain.pk}",
        title=f"Import of {len(rows)} mailbox(es) into {shown}",
        task_name=IMPORT_TASK,
        # The rows hold passwords: sealed at rest like every stored secret.
        arguments={"domain_id": domain.pk, "rows": seal(json.dumps(rows))},
        tenant_id=domain.tenant_id,
        # The running import has its own rows: this file would be dropped unseen.
        busy=f"An import into {shown} is already running; wait for it to finish.",
    )


@dataclass
class _RowProblem:
    row: int
    name: str
    message: str


class _Rollback(Exception):
    pass


def _parse_row(number: int, row: dict[str, str], domain: Principal, seen: set[str]):
    name = row.get("name", "")
    # An empty cell is "not given" (the file has the column for other rows).
    raw = {k: v for k, v in row.items() if k != "name" and v != ""}
    values = mailbox_fields.parse(raw, creating=True)
    address = mailbox_address(name, domain)
    check_values(values)
    if address in seen:
        raise ValidationFailed(f"The file lists {display_address(address)} twice")
    seen.add(address)
    if _address_in_use(address):
        raise _in_use_error(address)
    return name, values


def mailboxes_import_run(
    *, actor: Principal, domain_id: int, sealed_rows: str, progress: Progress
) -> Outcome:
    """Check every row, then create every mailbox in one transaction: a file with any bad
    row imports nothing and lists each bad row."""
    rows: list[dict[str, str]] = json.loads(unseal(sealed_rows, where="a mailbox import"))
    domain = selectors.domains_visible(actor).filter(pk=domain_id).first()
    if domain is None:
        return Outcome(False, "The domain no longer exists.")
    # Progress is reported while checking; the writing is one transaction, which must not
    # hold the run's row (the heartbeat renews the lease through it from another thread).
    progress.begin(len(rows) + 1)
    problems: list[_RowProblem] = []
    parsed = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        try:
            parsed.append(_parse_row(number, row, domain, seen))
        except ServiceError as exc:
            problems.append(_RowProblem(number, row.get("name", ""), exc.message))
        progress.step(number, f"Checked row {number}")
    if not problems:
        progress.step(len(rows), f"All {len(rows)} row(s) are valid: creating the mailboxes")
        try:
            with transaction.atomic():
                for number, (name, values) in enumerate(parsed, start=1):
                    try:
                        with transaction.atomic():
                            mailbox_create(actor=actor, domain=domain, name=name, values=values)
                    except ServiceError as exc:
                        problems.append(_RowProblem(number, name, exc.message))
                if problems:
                    raise _Rollback
        except _Rollback:
            pass
    if problems:
        shown = [
            {"name": f"Row {p.row} ({p.name or 'no name'})", "ok": False, "detail": p.message}
            for p in problems
        ]
        return Outcome(
            False,
            f"{len(problems)} of {len(rows)} row(s) refused: nothing was imported.",
            result={"rows": shown, "imported": 0},
        )
    progress.step(len(rows) + 1, "Done")
    return Outcome(
        True,
        f"Imported {len(rows)} mailbox(es).",
        result={"imported": len(rows)},
    )
