"""IP list entries stored as IPv4-mapped IPv6 (::ffff:1.2.3.4, ::ffff:1.2.3.0/120) before
such text was stored as the IPv4 address or network it names: the scan sees such a peer
as IPv4, so these entries never matched. Each becomes the IPv4 entry it meant (one the
mailbox already has absorbs it)."""

import ipaddress

from django.db import migrations

MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _as_ipv4(value: str) -> str | None:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None
    if network.version != 6 or network.prefixlen < 96 or not network.subnet_of(MAPPED):
        return None
    low = int(network.network_address) & 0xFFFFFFFF
    ipv4 = ipaddress.IPv4Network((low, network.prefixlen - 96))
    return str(ipv4.network_address) if ipv4.num_addresses == 1 else str(ipv4)


def forward(apps, schema_editor):
    entries = apps.get_model("spamfilter", "SenderListEntry").objects
    mapped = entries.filter(list__in=["ipblacklist", "ipsafelist"], value__istartswith="::ffff:")
    for entry in mapped.iterator():
        value = _as_ipv4(entry.value)
        if value is None:
            continue
        twin = entries.filter(mailbox_id=entry.mailbox_id, list=entry.list, value=value)
        if twin.exists():
            entry.delete()
        else:
            entry.value = value
            entry.save(update_fields=["value"])


class Migration(migrations.Migration):
    dependencies = [("spamfilter", "0004_quarantine")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
