"""Per-mailbox block and safe lists (mailbox-provisioning-api.txt, "Spam"): the writes,
the scoped reads, and the lookup the spam filter's scan makes for a message's recipients.

Four lists per mailbox: `blacklist` and `safelist` hold addresses and domains (a domain
covers its subdomains), `ipblacklist` and `ipsafelist` hold IPv4/IPv6 addresses and CIDR
networks. An IP given to an address list goes to the matching IP list (the spec's own
"Add IP Blacklist" example posts to .../spam/blacklist/216.12.34.1). Messages are the
spec's words.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Concat

from apps.accounts.emails import InvalidAddress, display_domain, normalize_address, normalize_domain
from apps.accounts.models import Principal
from apps.accounts.permissions import Perm
from apps.spamfilter.auth import AuthResults, a_label, aligned, domain_of
from apps.spamfilter.models import MailboxSpamSetting, QuarantinedMessage, SenderListEntry
from mailadmin.audit import audit
from mailadmin.errors import NotFound, PermissionDenied, ValidationFailed
from mailadmin.tenancy import reaches, scope

LISTS = (
    SenderListEntry.BLOCK,
    SenderListEntry.BLOCK_IP,
    SenderListEntry.SAFE,
    SenderListEntry.SAFE_IP,
)
IP_LIST = {
    SenderListEntry.BLOCK: SenderListEntry.BLOCK_IP,
    SenderListEntry.SAFE: SenderListEntry.SAFE_IP,
}
# The word the spec's "... is not found on the blacklist" uses for each list.
LIST_WORD = {
    SenderListEntry.BLOCK: "blacklist",
    SenderListEntry.BLOCK_IP: "blacklist",
    SenderListEntry.SAFE: "safelist",
    SenderListEntry.SAFE_IP: "safelist",
}
# Entries one list of one mailbox may hold (every scan reads a recipient's IP entries).
MAX_ENTRIES = 1000
SAFE = "safe"
BLOCK = "block"
UNFILTERED = "unfiltered"  # the mailbox's spam filter is off
UNVERIFIED = "unverified"  # safe-listed address or domain, but not authenticated


def _require(actor: Principal, permission: str, mailbox: Principal | None = None) -> None:
    """The permission, and that the mailbox (when given) is in the actor's scope: callers
    look it up scoped, and this holds even if one forgets (no query: the row is loaded)."""
    if not actor.has_permission(permission):
        raise PermissionDenied(permission)
    if mailbox is not None and not reaches(actor, mailbox.tenant_id):
        raise NotFound()


MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _ip_value(value: str) -> str | None:
    """The canonical text of an IP address or network, or None."""
    text = value.strip()
    if "%" in text:  # an IPv6 zone id names an interface of this host, never a sender
        return None
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    # IPv4-mapped (::ffff:1.2.3.4): the scan sees such a peer as the IPv4 address it is.
    if network.version == 6 and network.prefixlen >= 96 and network.subnet_of(MAPPED):
        low = int(network.network_address) & 0xFFFFFFFF
        network = ipaddress.IPv4Network((low, network.prefixlen - 96))
    if network.num_addresses == 1 and "/" not in text:
        return str(network.network_address)
    return str(network)


def parse_entry(list_name: str, value: str) -> tuple[str, str]:
    """(the list the entry belongs on, its stored value), or the spec's 400."""
    if list_name not in LISTS:
        raise NotFound()
    value = (value or "").strip()
    ip = _ip_value(value)
    address_list = list_name in IP_LIST  # blacklist, safelist (the keys: address lists)
    if address_list and ip is not None:
        return IP_LIST[list_name], ip
    if address_list:
        try:
            if "@" in value:
                return list_name, normalize_address(value)
            domain = normalize_domain(value)
        except InvalidAddress:
            domain = ""
        if "." in domain:
            return list_name, domain
        raise ValidationFailed(f"invalid email address: {value}", field="address")
    if ip is None:
        raise ValidationFailed(f"invalid ip address: {value}", field="address")
    return list_name, ip


def entries_visible(actor: Principal) -> QuerySet[SenderListEntry]:
    return scope(SenderListEntry.objects.all(), actor)


def entry_list(*, actor: Principal, mailbox: Principal, list_name: str) -> list[str]:
    """One list of one mailbox, its values in order (bounded by MAX_ENTRIES)."""
    queryset = entries_visible(actor).filter(mailbox=mailbox, list=list_name)
    return list(queryset.order_by("value").values_list("value", flat=True)[:MAX_ENTRIES])


def entry_lists(*, actor: Principal, mailbox: Principal) -> dict[str, list[str]]:
    """Every list of one mailbox, its values in order: one query, bounded (each list holds
    at most MAX_ENTRIES), so a page showing them costs the same however full they are."""
    queryset = entries_visible(actor).filter(mailbox=mailbox).order_by("list", "value")
    lists: dict[str, list[str]] = {name: [] for name, _ in SenderListEntry.LISTS}
    rows = queryset.values_list("list", "value")[: len(lists) * MAX_ENTRIES]
    for name, value in rows:
        lists.setdefault(name, []).append(value)
    return lists


@transaction.atomic
def entry_add(
    *, actor: Principal, mailbox: Principal, domain: Principal, list_name: str, value: str
) -> str:
    """Put a sender on one of the mailbox's lists (already there: nothing changes)."""
    _require(actor, Perm.PRINCIPAL_UPDATE, mailbox)
    target, stored = parse_entry(list_name, value)
    # A domain entry covers its subdomains, so a parent of the mailbox's domain blocks it too.
    if target == SenderListEntry.BLOCK and (
        stored == domain.name or domain.name.endswith(f".{stored}")
    ):
        raise ValidationFailed(
            f"Adding {display_domain(stored)} would blacklist the current domain", field="address"
        )
    existing = SenderListEntry.objects.filter(mailbox=mailbox, list=target)
    if existing.filter(value=stored).exists():
        return stored
    if existing.count() >= MAX_ENTRIES:  # bounded: at most MAX_ENTRIES rows counted
        raise ValidationFailed(
            f"The {LIST_WORD[target]} of this mailbox is full ({MAX_ENTRIES} entries)",
            field="address",
        )
    try:
        with transaction.atomic():
            SenderListEntry.objects.create(
                mailbox=mailbox, tenant_id=mailbox.tenant_id, list=target, value=stored
            )
    except IntegrityError:  # added meanwhile by another request (a double submit)
        return stored
    audit(
        actor=actor,
        action="spam-filter.list-add",
        object_type="principal",
        object_id=str(mailbox.pk),
        object_repr=mailbox.name,
        tenant_id=mailbox.tenant_id,
        changes={"list": target, "added": stored},
    )
    return stored


@transaction.atomic
def entry_remove(*, actor: Principal, mailbox: Principal, list_name: str, value: str) -> str:
    """Take a sender off one of the mailbox's lists; the list it was on."""
    _require(actor, Perm.PRINCIPAL_UPDATE, mailbox)
    shown = value.strip().lower()
    try:
        target, stored = parse_entry(list_name, value)
    except ValidationFailed:
        # A row kept before such text was refused (an IPv6 zone id) goes as the list shows it.
        target = IP_LIST.get(list_name, list_name)
        if "\x00" in shown:  # never stored (PostgreSQL refuses it in a query: a 500)
            raise
        if not SenderListEntry.objects.filter(mailbox=mailbox, list=target, value=shown).exists():
            raise
        stored = shown
    # As shown too: a row stored before its canonical form changed (::ffff:102:304).
    rows = SenderListEntry.objects.filter(mailbox=mailbox, list=target, value__in={stored, shown})
    deleted, _ = rows.delete()
    if not deleted:
        raise ValidationFailed(
            f"{value.strip()} is not found on the {LIST_WORD[target]}", field="address"
        )
    audit(
        actor=actor,
        action="spam-filter.list-remove",
        object_type="principal",
        object_id=str(mailbox.pk),
        object_repr=mailbox.name,
        tenant_id=mailbox.tenant_id,
        changes={"list": target, "removed": stored},
    )
    return target


# --- spam settings ------------------------------------------------------------------------

SETTING_FIELDS = ("filterlevel", "sendtodomainquarantine", "quarantineowner")
LEVELS = (MailboxSpamSetting.ON, MailboxSpamSetting.OFF, MailboxSpamSetting.EXCLUSIVE)


def setting_data(setting: MailboxSpamSetting | None) -> dict:
    setting = setting or MailboxSpamSetting()
    return {
        "filterlevel": setting.filter_level,
        "sendtodomainquarantine": setting.send_to_domain_quarantine,
        "quarantineowner": setting.quarantine_owner,
    }


def setting_get(*, actor: Principal, mailbox: Principal) -> MailboxSpamSetting | None:
    return scope(MailboxSpamSetting.objects.all(), actor).filter(mailbox=mailbox).first()


def _setting_values(raw: dict) -> dict:
    """The spec's fields, refused in its words: an unknown field, filterlevel missing or
    empty or not on/off/exclusive, a non-boolean sendtodomainquarantine."""
    for name in raw:
        if name not in SETTING_FIELDS:
            raise ValidationFailed(f"Unrecognized field: {name}", field=str(name))
    if "filterlevel" not in raw:
        raise ValidationFailed("Missing required field: filterlevel", field="filterlevel")
    level = raw["filterlevel"]
    if level is None or (isinstance(level, str) and not level.strip()):
        raise ValidationFailed("Required field filterlevel cannot be empty", field="filterlevel")
    level = level.strip().lower() if isinstance(level, str) else level
    if level not in LEVELS:
        raise ValidationFailed(
            "Invalid filterLevel, input must be: on/off/exclusive", field="filterlevel"
        )
    values: dict = {"filter_level": level}
    if "sendtodomainquarantine" in raw:
        flag = raw["sendtodomainquarantine"]
        if isinstance(flag, str) and flag.strip().lower() in ("true", "false"):
            flag = flag.strip().lower() == "true"
        if not isinstance(flag, bool):
            raise ValidationFailed(
                "Invalid format for sendtodomainquarantine, input must be true or false",
                field="sendtodomainquarantine",
            )
        values["send_to_domain_quarantine"] = flag
    if "quarantineowner" in raw:
        owner = raw["quarantineowner"]
        if owner is not None and not isinstance(owner, str):  # JSON 5, [..]: not cleared
            raise ValidationFailed(f"invalid email address: {owner}", field="quarantineowner")
        owner = (owner or "").strip()
        if owner:
            try:
                owner = normalize_address(owner)
            except InvalidAddress:
                raise ValidationFailed(
                    f"invalid email address: {owner}", field="quarantineowner"
                ) from None
        values["quarantine_owner"] = owner
    if level == MailboxSpamSetting.OFF:  # the spec: off forces the domain quarantine off
        values["send_to_domain_quarantine"] = False
    return values


@transaction.atomic
def setting_update(*, actor: Principal, mailbox: Principal, raw: dict) -> MailboxSpamSetting:
    _require(actor, Perm.PRINCIPAL_UPDATE, mailbox)
    values = _setting_values(raw)
    setting, _ = MailboxSpamSetting.objects.get_or_create(
        mailbox=mailbox, defaults={"tenant_id": mailbox.tenant_id}
    )
    before = setting_data(setting)
    for attr, value in values.items():
        setattr(setting, attr, value)
    setting.save()
    after = setting_data(setting)
    if after["quarantineowner"] != before["quarantineowner"]:
        _retarget_pending_digest(mailbox, setting.quarantine_owner)
    audit(
        actor=actor,
        action="spam-filter.settings",
        object_type="principal",
        object_id=str(mailbox.pk),
        object_repr=mailbox.name,
        tenant_id=mailbox.tenant_id,
        changes={k: v for k, v in after.items() if before[k] != v},
    )
    return setting


def _retarget_pending_digest(mailbox: Principal, owner: str) -> None:
    """The mailbox's items in its domain's quarantine not yet named in a digest go to the
    owner named now (none: the domain's postmaster, as quarantine_store chooses): the one
    just replaced (someone who left, a mistyped address) is not sent them tonight."""
    pending = QuarantinedMessage.objects.filter(
        mailbox=mailbox, kind=QuarantinedMessage.DOMAIN, digested_at__isnull=True
    )
    if owner:
        pending.update(owner=owner)
        return
    pending.exclude(domain="").update(owner=Concat(Value("postmaster@"), F("domain")))
    pending.filter(domain="").update(owner="")


# --- the scan's lookup ----------------------------------------------------------------------


def _sender_keys(addresses: Iterable[str], authenticated: Collection[str]) -> dict[str, bool]:
    """{key: whether a sender that yields it is authenticated}: the address and every
    domain above it (sub.spam.com, spam.com) of each sender."""
    keys: dict[str, bool] = {}
    for address in addresses:
        try:
            stored = normalize_address(address)
        except InvalidAddress:
            continue
        trusted = address in authenticated
        labels = stored.rpartition("@")[2].split(".")
        for key in [stored, *(".".join(labels[i:]) for i in range(len(labels) - 1))]:
            keys[key] = keys.get(key, False) or trusted
    return keys


def _in_network(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, value: str) -> bool:
    if ip is None:
        return False
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return ip.version == network.version and ip in network


def sender_status(
    *,
    mailbox_ids: Iterable[int],
    senders: Iterable[str],
    remote_ip: str,
    authenticated: Collection[str],
) -> dict[int, str]:
    """{mailbox id: "safe" | "block" | "unverified" | "unfiltered"} for the recipients
    whose lists name this sender (by envelope or From address, its domain or a parent
    domain, or the connecting IP) or whose spam settings say so; two queries.

    An address or domain on a safe list counts only for a sender in `authenticated`
    (see `unauthenticated`): anyone can write a safe-listed address in MAIL FROM or From,
    so a match by an unauthenticated sender is "unverified" and filtered like any other
    mail. IP safe entries match the connecting IP, which the sender cannot forge (for
    fetched mail, the client its provider's Received line names: `scan`'s judged_hop). A sender
    on both of a mailbox's lists is safe: the narrower safe entry is how one lets a
    colleague through a blocked domain. Filter level "exclusive" blocks every sender not
    safe-listed; "off" leaves the others unfiltered."""
    ids = sorted(set(mailbox_ids))
    if not ids:
        return {}
    keys = _sender_keys((s for s in senders if s), authenticated)
    try:
        ip = ipaddress.ip_address(remote_ip.strip().strip("[]")) if remote_ip else None
    except ValueError:
        ip = None
    wanted = Q(list__in=list(IP_LIST), value__in=sorted(keys))
    if ip is not None:
        wanted |= Q(list__in=list(IP_LIST.values()))
    rows = SenderListEntry.objects.filter(wanted, mailbox_id__in=ids)
    rows = rows.values_list("mailbox_id", "list", "value")
    found: dict[int, set[str]] = {}
    for mailbox_id, list_name, value in rows.iterator():
        if list_name == SenderListEntry.SAFE and value in keys:
            hit = SAFE if keys[value] else UNVERIFIED
        elif list_name == SenderListEntry.BLOCK and value in keys:
            hit = BLOCK
        elif list_name in IP_LIST.values() and _in_network(ip, value):
            hit = SAFE if list_name == SenderListEntry.SAFE_IP else BLOCK
        else:
            continue
        found.setdefault(mailbox_id, set()).add(hit)
    status = {
        mailbox_id: next(s for s in (SAFE, BLOCK, UNVERIFIED) if s in hits)
        for mailbox_id, hits in found.items()
    }
    levels = MailboxSpamSetting.objects.filter(mailbox_id__in=ids).exclude(
        filter_level=MailboxSpamSetting.ON
    )
    for mailbox_id, level in levels.values_list("mailbox_id", "filter_level"):
        if level == MailboxSpamSetting.EXCLUSIVE and status.get(mailbox_id) != SAFE:
            status[mailbox_id] = BLOCK
        elif level == MailboxSpamSetting.OFF and status.get(mailbox_id) in (None, UNVERIFIED):
            status[mailbox_id] = UNFILTERED
    return status


def unauthenticated(results: AuthResults | None, senders: Iterable[str]) -> dict[str, str]:
    """{sender address: why it is not authenticated} for the senders whose domain the
    message does not prove: a sender is authenticated by a DMARC pass for its domain, or
    by an SPF or DKIM pass for a domain aligned with it (relaxed: the same organisational
    domain; strict where the From domain's DMARC record asks for it). `results` None: an
    authenticated submission, every sender is."""
    if results is None:
        return {}
    dmarc = results.dmarc
    why: dict[str, str] = {}
    for address in senders:
        domain = a_label(domain_of(address))  # as the results name it (RFC 8616)
        if not address or address in why:
            continue
        modes = dmarc.published if dmarc.domain.lower() == domain else {}
        aspf, adkim = modes.get("aspf", "r").lower()[:1], modes.get("adkim", "r").lower()[:1]
        if domain and (
            (dmarc.result == "pass" and dmarc.domain.lower() == domain)
            or (results.spf.result == "pass" and aligned(results.spf.domain, domain, aspf))
            or any(r.verified and aligned(r.domain, domain, adkim) for r in results.dkim)
        ):
            continue
        dkim = (
            ", ".join(
                f"{r.result} d={r.domain or '?'}" + ("" if r.counts else " (testing mode)")
                for r in results.dkim
            )
            or "none"
        )
        why[address] = (
            f"{address} is not authenticated for {domain or 'its domain'} "
            f"(dmarc={results.dmarc.result}, spf={results.spf.result}"
            f"{' for ' + results.spf.domain if results.spf.domain else ''}, dkim={dkim})"
        )
    return why


def scan_status(
    *, mailbox_ids: Iterable[int], senders: list[str], remote_ip: str, results: AuthResults | None
) -> tuple[dict[int, str], str]:
    """What the scan asks: (sender_status, the note an "unverified" copy carries)."""
    why = unauthenticated(results, senders)
    status = sender_status(
        mailbox_ids=mailbox_ids,
        senders=senders,
        remote_ip=remote_ip,
        authenticated=[s for s in senders if s and s not in why],
    )
    note = ""
    if UNVERIFIED in status.values():
        note = "safe list not applied: " + "; ".join(why.values())
    return status, note
