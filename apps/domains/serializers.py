"""API input and output of DKIM keys and DNS records."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.domains import dkim
from apps.domains.models import DkimKey
from mailadmin.api.serializers import StrictCharField, StrictIntegerField, StrictSerializer

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
