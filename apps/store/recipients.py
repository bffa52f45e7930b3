"""Who receives mail sent to an address: the mailboxes that get a copy, and the external
addresses it is forwarded to.

`resolve` is what the inbound listener asks at RCPT time:

- None: the domain is not hosted here (or the address is not an address) → relay denied;
- `known=False`: a hosted domain but nobody (active, and an account, group or list) has
  the address → 550 5.1.1;
- `ingest_reports=True`: the hosted domain's DMARC (rua/ruf) or TLS-RPT report address
  (`<MAILADMIN_DMARC_REPORT_LOCALPART>@<domain>`, `<MAILADMIN_TLSRPT_REPORT_LOCALPART>@
  <domain>`, as apps.domains.records publishes them): no mailbox, the message is ingested
  as reports of that domain's tenant;
- otherwise the individual mailboxes (lists and groups expanded, recursively) and the
  external addresses to forward to.

An address at a domain alias is the same address at the domain it aliases
(`hosted_address`); an address nobody has goes to the domain's catch-all (`find_owner`);
a mailbox with a forwarding address also forwards (apps.domains.routing holds these).

After DATA the inbound path hands the message to `deliver_resolutions` (all the message's
resolved recipients at once): the one entry point that stores copies and ingests reports.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings

from apps.accounts.emails import InvalidAddress, domain_of, normalize_address
from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
from apps.domains import routing
from apps.domains.selectors import domain_hosted
from apps.queue import srs
from apps.store import blobs, encryption, services
from apps.store.headers import parse_summary
from apps.store.models import Message
from apps.store.services import QuotaExceeded

if TYPE_CHECKING:
    from apps.reports.services import IngestResult

logger = logging.getLogger(__name__)

# Lists within lists: deeper nesting than this is cut (and logged), whatever it contains.
MAX_EXPANSION_DEPTH = 8
EXPANDING_TYPES = (PrincipalType.LIST, PrincipalType.GROUP)
# An address owned by anything else (a domain, a role, ...) receives nothing: unknown.
RECEIVING_TYPES = (PrincipalType.INDIVIDUAL, *EXPANDING_TYPES)


@dataclass
class Resolution:
    address: str
    known: bool
    mailboxes: list[Principal] = field(default_factory=list)
    forward_to: list[str] = field(default_factory=list)
    # A report address: the message is ingested as reports of `domain`'s tenant.
    ingest_reports: bool = False
    # The hosted domain the address is in (for reports: whose tenant ingests them; for
    # forwarding: the domain the return path is SRS-rewritten into).
    domain: Principal | None = field(default=None, compare=False, repr=False)
    # An SRS address of ours that does not reverse (forged, damaged, expired): why.
    srs_error: str = ""
    # The addresses in `forward_to` that are a mailbox's own forward (mailbox id ->
    # address), not the recipient's (a list's external members): such a copy goes out
    # only when that mailbox's own copy would be delivered (its block and safe lists).
    forwarded_by: dict[int, str] = field(default_factory=dict)


class UnknownRecipient(InvalidAddress):
    """A hosted domain, but no one receives mail at this address (SMTP: 550 5.1.1)."""

    status = 404
    title = "Not Found"


def find_owner(address: str, domain: Principal) -> Principal | None:
    """The principal that owns `address` (normalized) in the hosted `domain`, or None.

    In order of precedence: the principal with this address (primary or alias) in
    accounts.PrincipalEmail, else the domain's catch-all address. (An address at a domain
    alias is rewritten to the domain it aliases before it gets here, by `resolve`.) An
    address that has an owner, even a disabled one, never falls through to the catch-all.
    """
    email = (
        PrincipalEmail.objects.filter(address=address)
        .select_related("principal", f"principal__{routing.WITH_PROFILE}")
        .first()
    )
    if email is not None:
        return email.principal
    return routing.catch_all_owner(domain)


def hosted_address(normalized: str) -> tuple[str, Principal] | None:
    """(the address as delivered, its hosted domain): x@alias becomes x@<the domain it
    aliases>; None when the domain is neither hosted nor an alias."""
    name = domain_of(normalized)
    domain = domain_hosted(name)
    if domain is not None:
        return normalized, domain
    target = routing.alias_target(name)
    if target is None:
        return None
    return f"{normalized.rpartition('@')[0]}@{target.name}", target


def resolve(address: str) -> Resolution | None:
    try:
        normalized = normalize_address(address)
    except InvalidAddress:
        return None
    if srs.is_srs(normalized):
        return _resolve_srs(str(address).strip().strip("<>"), normalized)
    hosted = hosted_address(normalized)
    if hosted is None:
        return None
    delivered_as, domain = hosted
    if is_report_address(delivered_as, domain.name):
        # Before any owner: the DMARC and TLS-RPT records point reporters here.
        return Resolution(address=normalized, known=True, ingest_reports=True, domain=domain)
    owner = find_owner(delivered_as, domain)
    if owner is None or not owner.is_active or owner.type not in RECEIVING_TYPES:
        return Resolution(address=normalized, known=False)
    mailboxes, forward_to = expand(owner)
    # Mailboxes with a forwarding address (the provisioning API's emailForwardingAddress)
    # keep their copy and send one on.
    external = set(forward_to)
    forwarded_by = {
        pk: forward
        for pk, forward in routing.forwarding_by_mailbox(mailboxes).items()
        if forward not in external
    }
    for forward in forwarded_by.values():
        if forward not in forward_to:
            forward_to.append(forward)
    return Resolution(
        address=normalized,
        known=True,
        mailboxes=mailboxes,
        forward_to=forward_to,
        domain=domain,
        forwarded_by=forwarded_by,
    )


def _resolve_srs(raw: str, normalized: str) -> Resolution | None:
    """A bounce to an SRS address (apps.queue.srs) in a hosted domain (or
    MAILADMIN_SRS_DOMAIN): goes where the address reverses to, a hosted mailbox or the
    remote sender; one that does not reverse is unknown, with the reason."""
    hosted = hosted_address(normalized)
    srs_domain = settings.MAILADMIN_SRS_DOMAIN
    if hosted is None and not (srs_domain and domain_of(normalized) == srs_domain):
        return None
    try:
        original = srs.reverse_configured(raw)
    except srs.SrsError as exc:
        return Resolution(address=normalized, known=False, srs_error=str(exc))
    target = resolve(original)
    if target is not None:  # a sender of ours (report addresses are no senders)
        if not target.known or target.ingest_reports:
            return Resolution(address=normalized, known=False)
        target.address = normalized
        return target
    domain = hosted[1] if hosted else None
    return Resolution(address=normalized, known=True, forward_to=[original], domain=domain)


def report_localparts() -> tuple[str, ...]:
    return tuple(
        local.strip().lower()
        for local in (
            settings.MAILADMIN_DMARC_REPORT_LOCALPART,
            settings.MAILADMIN_TLSRPT_REPORT_LOCALPART,
        )
        if local and local.strip()
    )


def is_report_address(address: str, domain_name: str) -> bool:
    """Is `address` (normalized) one of the report addresses of the hosted `domain_name`?"""
    local, _, domain = address.rpartition("@")
    return domain == domain_name and local.lower() in report_localparts()


def expand(owner: Principal) -> tuple[list[Principal], list[str]]:
    """(individual mailboxes, external addresses) receiving mail for `owner`.

    Lists and groups expand to their active members level by level (one query per level),
    each principal once (a cycle ends where it meets a principal already seen), at most
    MAX_EXPANSION_DEPTH levels deep. A list's external members are forwarded to.
    """
    mailboxes: dict[int, Principal] = {}
    forward_to: dict[str, None] = {}
    seen: set[int] = {owner.pk}
    level = [owner]
    depth = 0
    while level:
        expanding: list[int] = []
        for principal in level:
            if not principal.is_active:
                continue
            if principal.type == PrincipalType.INDIVIDUAL:
                mailboxes.setdefault(principal.pk, principal)
            elif principal.type in EXPANDING_TYPES:
                expanding.append(principal.pk)
                if principal.type == PrincipalType.LIST:
                    for external in _external_addresses(principal):
                        forward_to.setdefault(external, None)
        if not expanding:
            break
        if depth >= MAX_EXPANSION_DEPTH:
            logger.warning("expansion of %s cut at depth %d", owner.name, depth)
            break
        depth += 1
        members = (
            Principal.objects.filter(member_of__in=expanding, is_active=True)
            .select_related(routing.WITH_PROFILE)
            .exclude(pk__in=seen)
            .distinct()
            .order_by("pk")
        )
        level = list(members)
        seen.update(p.pk for p in level)
    return list(mailboxes.values()), list(forward_to)


def _external_addresses(principal: Principal) -> list[str]:
    found = []
    for raw in principal.external_members or []:
        try:
            found.append(normalize_address(str(raw)))
        except InvalidAddress:
            logger.warning("skipping invalid external member %r of %s", raw, principal.name)
    return found


def deliver_to_address(address: str, data: bytes) -> list[Message]:
    """Resolve `address` and store one copy in each of its mailboxes' INBOX.

    Raises UnknownRecipient when the address is not hosted or has no receiver. A mailbox
    over quota is skipped (logged) while the others get their copy; when every mailbox was
    over quota (a single account's address, typically), QuotaExceeded is raised and nothing
    is stored, so the sender can be told 452 4.2.2. External members (`forward_to`) are not
    handled here: forwarding is the outbound queue's work.
    """
    resolution = resolve(address)
    if resolution is None or not resolution.known:
        raise UnknownRecipient(f"No mailbox for '{str(address)[:320]}'.")
    delivered = deliver_resolutions([resolution], data)
    if delivered.over_quota and not delivered.stored and not delivered.reports:
        raise QuotaExceeded(delivered.over_quota)
    return delivered.stored


@dataclass
class Delivered:
    """What became of one message: the copies stored, the mailboxes skipped as over quota,
    and one result per report found when it went to a report address."""

    stored: list[Message] = field(default_factory=list)
    over_quota: list[Principal] = field(default_factory=list)
    reports: list[IngestResult] = field(default_factory=list)


def ingest_report_mail(domains: Iterable[Principal], data: bytes) -> list[IngestResult]:
    """Ingest a message that came to the report address of each of `domains` (hosted
    domains, each once) as reports of that domain's tenant. For an inbound path that keeps
    its own routes instead of calling `deliver_resolutions`: pass the `domain` of every
    recipient whose resolution has `ingest_reports`. Nothing is lost: an unreadable
    message is kept as a failed ingest; only a database failure raises (answer 4xx)."""
    from apps.reports.services import report_ingest_message  # reports sits above the store

    unique = {domain.pk: domain for domain in domains}
    results: list[IngestResult] = []
    for domain in unique.values():
        results.extend(report_ingest_message(recipient_domain=domain, message=data))
    return results


def deliver_resolutions(resolutions: Sequence[Resolution], data: bytes) -> Delivered:
    """Deliver one message to all its resolved recipients: THE call of the inbound path
    after DATA (and of `deliver_to_address`).

    - Report addresses (`ingest_reports`): the message is ingested through
      `apps.reports.services.report_ingest_message`, once per receiving domain, as reports
      of that domain's tenant. It is never lost: a message holding no readable report is
      kept raw as a failed ingest with the reason (Reports → Failed ingests). Only a
      database failure raises, and then the sender should be told to try again (4xx).
    - Mailboxes of all other recipients: one copy each (`deliver_to_mailboxes`, each
      mailbox once); those over quota are listed in `over_quota`.

    Unknown recipients (None or `known=False`) must have been refused at RCPT time; they
    are skipped here. External members (`forward_to`) are the outbound queue's work.
    """
    delivered = Delivered()
    report_domains: dict[int, Principal] = {}
    mailboxes: list[Principal] = []
    for resolution in resolutions:
        if resolution is None or not resolution.known:
            continue
        if resolution.ingest_reports and resolution.domain is not None:
            report_domains.setdefault(resolution.domain.pk, resolution.domain)
        else:
            mailboxes.extend(resolution.mailboxes)
    delivered.reports = ingest_report_mail(report_domains.values(), data)
    if mailboxes:
        delivered.stored, delivered.over_quota = deliver_to_mailboxes(mailboxes, data)
    return delivered


def deliver_to_mailboxes(
    mailboxes: Iterable[Principal], data: bytes, *, folder: str = "INBOX"
) -> tuple[list[Message], list[Principal]]:
    """One copy of `data` in `folder` of each mailbox, each mailbox once however often it
    is named (a message to an account and to a list it is on is stored once for it).

    Returns (messages stored, mailboxes skipped because the copy would exceed their quota).
    The clear bytes are written once; each account with encryption at rest gets its own
    encrypted copy (apps.store.encryption). For a message with several recipients, resolve each and
    pass all their mailboxes here together.
    """
    unique: dict[int, Principal] = {}
    for mailbox in mailboxes:
        unique.setdefault(mailbox.pk, mailbox)
    if not unique:
        return [], []
    # Encryption at rest first (one query for all): an encrypting account gets its own
    # blob, and its quota is charged the encrypted size; the others share the clear one.
    copies = encryption.copies_for(unique.values(), bytes(data))
    limited = [m for m in unique.values() if m.quota and m.quota > 0]
    used = services.used_bytes_by_principal(limited) if limited else {}
    room, full = [], []
    for mailbox in unique.values():
        exceeded = services.over_quota(mailbox, used.get(mailbox.pk, 0), len(copies[mailbox.pk]))
        (full if exceeded else room).append(mailbox)
    for mailbox in full:
        logger.info("not delivering to %s: over quota", mailbox.name)
    if not room:
        return [], full
    summary = parse_summary(data)  # the clear header fields, the same in every copy
    hashes: dict[bytes, str] = {}
    stored = []
    for mailbox in room:
        copy = copies[mailbox.pk]
        if copy not in hashes:
            hashes[copy] = blobs.put(copy)
        stored.append(
            services.deliver_stored(
                mailbox,
                blob_hash=hashes[copy],
                size=len(copy),
                summary=summary,
                folder=folder,
                flags=[],
            )
        )
    return stored, full
