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


# Load principals with this select_related so forwarding_by_mailbox needs no query.
WITH_PROFILE = "mailbox_profile"


def catch_all_owner(domain: Principal) -> Principal | None:
    """Who receives mail for addresses of `domain` that nobody has, or None."""
    row = (
        CatchAll.objects.filter(domain=domain)
        .select_related("target", f"target__{WITH_PROFILE}")
        .first()
    )
    return row.target if row is not None else None


def forwarding_by_mailbox(mailboxes: Iterable[Principal]) -> dict[int, str]:
    """{mailbox id: the address it forwards to (emailForwardingAddress)} for the mailboxes
    that forward. Reads each principal's mailbox profile, loaded with it (select_related
    WITH_PROFILE)."""
    found: dict[int, str] = {}
    for principal in mailboxes:
        try:
            forward = principal.mailbox_profile.forwarding_address
        except MailboxProfile.DoesNotExist:
            continue
        if forward:
            found[principal.pk] = forward
    return found
