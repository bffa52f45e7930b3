"""Where mail for an address of a hosted domain goes, beyond the address's own owner:
domain aliases (x@alias is x@domain), catch-all addresses (anything else at the domain)
and mailbox forwarding. apps.store.recipients.resolve asks these, across tenants (mail
arriving from outside has no actor)."""

from __future__ import annotations

from collections.abc import Iterable

from apps.accounts.models import Principal
from apps.domains.models import CatchAll, DomainAlias, MailboxProfile


def alias_target(domain_name: str) -> Principal | None:
    """The domain that `domain_name` (stored form) is an alias of, or None."""
    row = DomainAlias.objects.filter(alias=domain_name).select_related("domain").first()
    return row.domain if row is not None else None


def catch_all_owner(domain: Principal) -> Principal | None:
    """Who receives mail for addresses of `domain` that nobody has, or None."""
    row = CatchAll.objects.filter(domain=domain).select_related("target").first()
    return row.target if row is not None else None


def forwarding_addresses(principal_ids: Iterable[int]) -> list[str]:
    """The addresses the given mailboxes forward to (emailForwardingAddress), in one query."""
    ids = list(principal_ids)
    if not ids:
        return []
    rows = MailboxProfile.objects.filter(principal_id__in=ids).exclude(forwarding_address="")
    return sorted(set(rows.values_list("forwarding_address", flat=True)))
