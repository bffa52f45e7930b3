"""Principal API input parsing and output rendering (no business rules: see services)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from apps.accounts.emails import display_address
from apps.accounts.models import Principal, PrincipalType
from apps.accounts.principals.services import (
    FIXED_FIELDS,
    MAX_LIMIT_VALUE,
    MAX_QUOTA,
    PATCH_ACTIONS,
    SECRET_FIELD,
)
from mailadmin.api.serializers import (
    QueryParams,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    custom_error,
    unrecognized,
)
from mailadmin.core.models import AuditEvent


def _names(max_length: int = 255) -> serializers.ListField:
    return serializers.ListField(
        child=StrictCharField(max_length=max_length, allow_blank=False), required=False
    )


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "items": {"type": "string", "minLength": 1}},
        ],
        "writeOnly": True,
    }
)
class SecretsField(serializers.Field):
    """A password, alone or as a one-item list (the spec's `secrets`). Write-only."""

    default_error_messages = {"invalid": "Expected a string or a list of strings."}

    def __init__(self, **kwargs):
        kwargs.setdefault("write_only", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        items = [data] if isinstance(data, str) else data
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            self.fail("invalid")
        return items

    def to_representation(self, value: Any) -> None:  # never rendered
        return None


class PrincipalCreateInput(StrictSerializer):
    type = serializers.ChoiceField(choices=PrincipalType.choices)
    name = StrictCharField(max_length=255)
    description = StrictCharField(max_length=1024, required=False, allow_blank=True)
    quota = StrictIntegerField(min_value=0, max_value=MAX_QUOTA, required=False)
    tenant = StrictCharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    secrets = SecretsField(required=False)
    emails = _names(320)
    urls = _names(1024)
    memberOf = _names()
    roles = _names()
    lists = _names()
    members = _names()
    enabledPermissions = _names()
    disabledPermissions = _names()
    externalMembers = _names(320)
    maxDomains = StrictIntegerField(
        min_value=0, max_value=MAX_LIMIT_VALUE, required=False, allow_null=True
    )
    maxAccounts = StrictIntegerField(
        min_value=0, max_value=MAX_LIMIT_VALUE, required=False, allow_null=True
    )
    maxMailboxesPerUser = StrictIntegerField(
        min_value=0, max_value=MAX_LIMIT_VALUE, required=False, allow_null=True
    )


@extend_schema_field(
    {
        "type": ["string", "integer", "array", "null"],
        "items": {"type": "string"},
        "description": "A string, a number or a list of strings, as the field takes",
    }
)
class PatchValueField(serializers.JSONField):
    """Checked against the field it sets by parse_patch; typed here for the schema."""


@extend_schema_field({"type": "string", "enum": list(PATCH_ACTIONS)})
class PatchActionField(StrictCharField):
    """Checked by parse_patch ("Unknown action: ..."); an enum in the schema."""


class PatchOperationInput(StrictSerializer):
    action = PatchActionField()
    field = StrictCharField()
    value = PatchValueField(required=False, allow_null=True)


def parse_patch(data: Any) -> list[dict[str, Any]]:
    """The PATCH body: a list of {action, field, value}, each value checked like on create."""
    if not isinstance(data, list):
        raise custom_error("body", "Expected a list of operations.")
    fields = PrincipalCreateInput().fields
    operations = []
    for item in data:
        op = PatchOperationInput(data=item)
        op.is_valid(raise_exception=True)
        action, name = op.validated_data["action"], op.validated_data["field"]
        value = op.validated_data.get("value")
        if action not in PATCH_ACTIONS:
            raise custom_error("action", f"Unknown action: {action}")
        if name not in fields:
            raise unrecognized(name)
        if name in FIXED_FIELDS:
            raise custom_error(name, f"The field {name} can't be changed.")
        field = fields[name]
        if action == "set" or name == SECRET_FIELD:
            checker = field
        elif isinstance(field, serializers.ListField):
            checker = field.child
        else:
            raise custom_error(name, f"The action {action} does not apply to the field {name}.")
        if not (name == SECRET_FIELD and action == "removeItem"):
            try:
                value = checker.run_validation(value)
            except ValidationError as exc:
                messages = exc.detail if isinstance(exc.detail, list) else [exc.detail]
                text = " ".join(str(m) for m in _flatten(messages))
                raise custom_error(name, f"Invalid value for field {name}: {text}") from None
        operations.append({"action": action, "field": name, "value": value})
    return operations


def _flatten(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [m for v in detail.values() for m in _flatten(v)]
    if isinstance(detail, list):
        return [m for v in detail for m in _flatten(v)]
    return [str(detail)]


class PrincipalListParams(QueryParams):
    types = serializers.CharField(required=False, allow_blank=True)
    filter = serializers.CharField(required=False, allow_blank=True, max_length=255)
    order = serializers.ChoiceField(
        choices=["name", "-name", "created", "-created", "type"], required=False
    )

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        types = [t.strip() for t in values.get("types", "").split(",") if t.strip()]
        for type_ in types:
            if type_ not in PrincipalType.values:
                raise custom_error("types", f"Unknown principal type: {type_}")
        values["types"] = types
        return values


class PrincipalOutput(serializers.Serializer):
    """The Fetch Principal shape; secrets are never part of it."""

    id = serializers.IntegerField()
    type = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    quota = serializers.IntegerField()
    tenant = serializers.CharField(allow_null=True)
    emails = serializers.ListField(child=serializers.CharField())
    urls = serializers.ListField(child=serializers.CharField())
    memberOf = serializers.ListField(child=serializers.CharField())
    roles = serializers.ListField(child=serializers.CharField())
    lists = serializers.ListField(child=serializers.CharField())
    members = serializers.ListField(child=serializers.CharField())
    enabledPermissions = serializers.ListField(child=serializers.CharField())
    disabledPermissions = serializers.ListField(child=serializers.CharField())
    externalMembers = serializers.ListField(child=serializers.CharField())
    maxDomains = serializers.IntegerField(allow_null=True, required=False)
    maxAccounts = serializers.IntegerField(allow_null=True, required=False)
    maxMailboxesPerUser = serializers.IntegerField(allow_null=True, required=False)

    def to_representation(self, instance: Principal) -> dict[str, Any]:
        return principal_data(instance)


def principal_data(p: Principal) -> dict[str, Any]:
    """Render from the relations the selectors prefetch (no query per row)."""
    groups = list(p.member_of.all())
    if p.type == PrincipalType.ROLE:
        members = [m.name for m in p.role_holders.all()]
    elif p.type in (PrincipalType.GROUP, PrincipalType.LIST):
        members = [m.name for m in p.members.all()]
    else:
        members = []
    data: dict[str, Any] = {
        "id": p.pk,
        "type": p.type,
        "name": p.name,
        "description": p.description,
        "quota": p.quota,
        "tenant": p.tenant.name if p.tenant_id else None,
        "emails": [display_address(e.address) for e in p.emails.all()],
        "urls": list(p.urls),
        "memberOf": [g.name for g in groups if g.type != PrincipalType.LIST],
        "roles": [r.name for r in p.roles.all()],
        "lists": [g.name for g in groups if g.type == PrincipalType.LIST],
        "members": members,
        "enabledPermissions": list(p.enabled_permissions),
        "disabledPermissions": list(p.disabled_permissions),
        "externalMembers": [display_address(a) for a in p.external_members],
    }
    if p.type == PrincipalType.TENANT:
        data["maxDomains"] = p.max_domains
        data["maxAccounts"] = p.max_accounts
        data["maxMailboxesPerUser"] = p.max_mailboxes_per_user
    return data


class AuditListParams(QueryParams):
    action = serializers.CharField(required=False, max_length=64)
    actor = serializers.CharField(required=False, max_length=255)
    object_type = serializers.CharField(required=False, max_length=64)
    object_id = serializers.CharField(required=False, max_length=64)
    interface = serializers.ChoiceField(choices=AuditEvent.Interface.choices, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class AuditEventOutput(serializers.ModelSerializer):
    createdAt = serializers.DateTimeField(source="created_at")
    actor = serializers.CharField(source="actor_name")
    objectType = serializers.CharField(source="object_type")
    objectId = serializers.CharField(source="object_id")
    objectRepr = serializers.CharField(source="object_repr")
    changes = serializers.JSONField()

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "createdAt",
            "actor",
            "interface",
            "ip",
            "action",
            "objectType",
            "objectId",
            "objectRepr",
            "changes",
        ]
