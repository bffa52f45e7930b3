"""API input and output of DKIM keys and DNS records."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.emails import display_domain
from apps.domains import clientconfig, dkim
from apps.domains.models import DkimKey, DomainProfile
from apps.domains.selectors import DOMAIN_ORDERS, domain_profile
from mailadmin.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE
from mailadmin.api.serializers import (
    QueryParams,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
)

MAX_ID = 10**18 - 1  # what the <id:...> converter accepts: larger ids name nothing

# The management API's spelling of each algorithm.
ALGORITHM_NAMES = {dkim.ED25519: "Ed25519", dkim.RSA: "Rsa"}
_BY_LOWER = {name.lower(): value for value, name in ALGORITHM_NAMES.items()}


@extend_schema_field({"type": "string", "enum": ["Ed25519", "Rsa"]})
class AlgorithmField(serializers.Field):
    """ "Ed25519" or "Rsa" in any case -> the stored value."""

    def to_internal_value(self, data: Any) -> str:
        value = _BY_LOWER.get(data.lower()) if isinstance(data, str) else None
        if value is None:
            raise serializers.ValidationError(f"'{data}' is not one of Ed25519, Rsa.")
        return value

    def to_representation(self, value: str) -> str:
        return ALGORITHM_NAMES.get(value, value)


class DkimCreateInput(StrictSerializer):
    """The management API's body: {"id": null, "algorithm", "domain", "selector"}."""

    id = StrictIntegerField(required=False, allow_null=True)  # accepted, assigned by us
    algorithm = AlgorithmField()
    domain = StrictCharField(max_length=255)
    selector = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=255)


class DkimListParams(serializers.Serializer):
    domain = serializers.CharField(required=False, max_length=255)


class DkimKeyOutput(serializers.Serializer):
    """A key as the API shows it: the public half only."""

    id = serializers.IntegerField()
    domain = serializers.CharField(source="domain.name")
    selector = serializers.CharField()
    algorithm = AlgorithmField()
    publicKey = serializers.CharField(source="public_key")  # noqa: N815 - API field name
    active = serializers.BooleanField(source="is_active")
    createdAt = serializers.DateTimeField(source="created_at")  # noqa: N815


def dkim_key_data(key: DkimKey) -> dict[str, Any]:
    return DkimKeyOutput(key).data


class DnsRecordOutput(serializers.Serializer):
    type = serializers.CharField()
    name = serializers.CharField()
    content = serializers.CharField()


# --- the domains API (domains-api.txt) ----------------------------------------------------

DOMAIN_STATUSES = [choice.value for choice in DomainProfile.Status]


class DomainListParams(QueryParams):
    """The list's query string, as the spec spells it (page_size, not limit)."""

    shared = frozenset({"format"})

    order_by = serializers.ChoiceField(
        choices=list(DOMAIN_ORDERS), required=False, default="name_asc", allow_blank=True
    )
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, required=False, default=1)
    page_size = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, required=False, default=DEFAULT_LIMIT
    )
    project_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    search = serializers.CharField(max_length=255, required=False, allow_blank=True)


class DomainCreateInput(StrictSerializer):
    project_id = StrictIntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True)
    name = StrictCharField(max_length=255)


class DomainDeleteParams(QueryParams):
    shared = frozenset({"format"})

    confirm = serializers.BooleanField(required=False, default=False)


class DomainOutput(serializers.Serializer):
    """A domain as the spec shows it (ids are the principal's and its tenant's)."""

    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    name = serializers.CharField(help_text="Fully qualified, in punycode as DNS knows it")
    unicode_name = serializers.CharField(help_text="The same name in Unicode")
    status = serializers.ChoiceField(choices=DOMAIN_STATUSES)
    mailbox_total_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    webmail_url = serializers.CharField()
    imap_url = serializers.CharField()
    pop3_url = serializers.CharField()
    smtp_url = serializers.CharField()


class DomainRemovedOutput(serializers.Serializer):
    mailboxes = serializers.ListField(
        child=serializers.CharField(), help_text="Principals deleted with the domain"
    )
    addresses = serializers.ListField(
        child=serializers.CharField(), help_text="Every address on the domain, now gone"
    )
    dkim_keys = serializers.IntegerField()


class DomainDeletedOutput(DomainOutput):
    removed = DomainRemovedOutput()


class DomainPageOutput(serializers.Serializer):
    total_count = serializers.IntegerField(help_text="Domains matching (without pagination)")
    domains = serializers.ListField(child=DomainOutput())


def domain_data(domain, *, mailbox_count: int) -> dict[str, Any]:
    """The spec's fields of one domain principal (its profile select_related)."""
    profile = domain_profile(domain)
    return {
        "id": domain.pk,
        "project_id": domain.tenant_id,
        "name": domain.name,
        "unicode_name": display_domain(domain.name),
        "status": profile.dns_status if profile else DomainProfile.Status.UNKNOWN.value,
        "mailbox_total_count": mailbox_count,
        "created_at": serializers.DateTimeField().to_representation(domain.created_at),
        "updated_at": serializers.DateTimeField().to_representation(domain.updated_at),
        "webmail_url": clientconfig.webmail_url(),
        "imap_url": clientconfig.url(clientconfig.IMAP),
        "pop3_url": clientconfig.url(clientconfig.POP3),
        "smtp_url": clientconfig.url(clientconfig.SMTP),
    }
