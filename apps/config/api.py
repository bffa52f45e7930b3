"""The settings store's management API: List Settings by Key / by Group, List Settings,
Update Settings (POST /api/settings) and Reload Settings (GET /api/reload/)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError

from apps.accounts.permissions import Perm
from apps.config import selectors, services
from apps.config.keys import KEY, MAX_KEY, MAX_VALUE, PREFIX, normalise_prefix
from mailadmin.api.pagination import CURSOR_PARAMETER, PageParams, paginate_request
from mailadmin.api.schema import NULL_DATA, PAGE_PARAMETERS, PROBLEM, envelope
from mailadmin.api.serializers import (
    QueryParams,
    StrictBooleanField,
    StrictCharField,
    StrictSerializer,
    custom_error,
)
from mailadmin.api.views import MethodPermissionApi, ok

MAX_QUERY = 10_000
MAX_CHANGES = 1000
MAX_VALUES = 10_000


def _names(raw: str) -> list[str]:
    return [name.strip() for name in raw.split(",") if name.strip()]


class KeysParams(QueryParams):
    keys = StrictCharField(required=False, max_length=MAX_QUERY)
    prefixes = StrictCharField(required=False, max_length=MAX_QUERY)


class ListParams(QueryParams):
    prefix = StrictCharField(required=False, max_length=MAX_KEY)


class GroupParams(ListParams):
    suffix = StrictCharField(required=False, max_length=MAX_KEY)


def _query(params_class: type[QueryParams], request) -> dict[str, Any]:
    params = params_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data


def _string(name: str, help_text: str) -> OpenApiParameter:
    return OpenApiParameter(
        name, {"type": "string", "maxLength": MAX_QUERY}, OpenApiParameter.QUERY,
        description=help_text,
    )  # fmt: skip


class SettingsKeysApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.SETTINGS_LIST}

    @extend_schema(
        operation_id="settings_keys",
        parameters=[
            _string("keys", "Comma-separated keys; those that are set are answered."),
            _string("prefixes", "Comma-separated prefixes; every key under each, in full."),
        ],
        responses={
            200: envelope("SettingsByKey", serializers.DictField(child=serializers.CharField())),
            400: PROBLEM,
            403: PROBLEM,
        },
        description='Values by key: `{"data": {key: value}}`. Keys not set are left out.',
    )
    def get(self, request):
        values = _query(KeysParams, request)
        return ok(
            selectors.setting_values(
                actor=request.user,
                keys=_names(values.get("keys", "")),
                prefixes=_names(values.get("prefixes", "")),
            )
        )


class SettingsListApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.SETTINGS_LIST}

    @extend_schema(
        operation_id="settings_list",
        parameters=[
            _string("prefix", "Keys under `prefix.`, answered without it."),
            *PAGE_PARAMETERS,
            CURSOR_PARAMETER,
        ],
        responses={
            200: envelope(
                "SettingsList",
                inline_serializer(
                    name="SettingsListData",
                    fields={
                        "total": serializers.IntegerField(),
                        "items": serializers.DictField(child=serializers.CharField()),
                        "next": serializers.CharField(required=False, allow_null=True),
                        "previous": serializers.CharField(required=False, allow_null=True),
                    },
                ),
            ),
            400: PROBLEM,
            403: PROBLEM,
        },
        description=(
            "The settings under a prefix as `{relative key: value}`, by key, a page at a time."
        ),
    )
    def get(self, request):
        prefix = normalise_prefix(_query(ListParams, request).get("prefix", ""))
        listing = selectors.setting_list(actor=request.user, prefix=prefix)
        body = paginate_request(request, listing, lambda s: (s.key[len(prefix) :], s.value))
        body["items"] = dict(body["items"])
        return ok(body)


class SettingsGroupApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.SETTINGS_LIST}

    @extend_schema(
        operation_id="settings_group",
        parameters=[
            _string("prefix", "Records under `prefix.`"),
            _string("suffix", "Record ids are the keys ending in `.suffix`"),
            *PAGE_PARAMETERS,
        ],
        responses={
            200: envelope(
                "SettingsGroups",
                inline_serializer(
                    name="SettingsGroupsData",
                    fields={
                        "total": serializers.IntegerField(),
                        "items": serializers.ListField(
                            child=serializers.DictField(child=serializers.CharField())
                        ),
                    },
                ),
            ),
            400: PROBLEM,
            403: PROBLEM,
        },
        description=(
            'Settings grouped into records: each `{"_id": id, field: value, ...}` for the '
            "keys `prefix.id.field`."
        ),
    )
    def get(self, request):
        values = _query(GroupParams, request)
        page = PageParams(data=request.query_params)
        page.is_valid(raise_exception=True)
        number, limit = page.validated_data["page"], page.validated_data["limit"]
        groups = selectors.setting_groups(
            actor=request.user, prefix=values.get("prefix", ""), suffix=values.get("suffix", "")
        )
        start = (number - 1) * limit
        return ok({"total": len(groups), "items": groups[start : start + limit]})


# --- Update Settings ------------------------------------------------------------------------


class _Change(StrictSerializer):
    type = serializers.ChoiceField(choices=["insert", "delete", "clear"])


class InsertInput(_Change):
    prefix = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=MAX_KEY)
    values = serializers.ListField(
        child=serializers.ListField(
            child=StrictCharField(allow_blank=True, trim_whitespace=False, max_length=MAX_VALUE),
            min_length=2,
            max_length=2,
        ),
        max_length=MAX_VALUES,
    )
    assertEmpty = StrictBooleanField(required=False, default=False)  # noqa: N815


class DeleteInput(_Change):
    keys = serializers.ListField(child=StrictCharField(max_length=MAX_KEY), max_length=MAX_VALUES)


class ClearInput(_Change):
    prefix = StrictCharField(allow_blank=True, max_length=MAX_KEY)


INPUTS = {"insert": InsertInput, "delete": DeleteInput, "clear": ClearInput}
_NAME = {"type": "string", "pattern": KEY.pattern, "maxLength": MAX_KEY}
_PREFIX = {"type": "string", "pattern": PREFIX.pattern, "maxLength": MAX_KEY}
UPDATE_BODY = {
    "type": "array",
    "maxItems": MAX_CHANGES,
    "items": {
        "oneOf": [
            {
                "type": "object",
                "required": ["type", "values"],
                "additionalProperties": False,
                "properties": {
                    "type": {"const": "insert"},
                    "prefix": {"anyOf": [_PREFIX, {"type": "null"}]},
                    "values": {
                        "type": "array",
                        "maxItems": MAX_VALUES,
                        "items": {
                            "type": "array",
                            "minItems": 2,
                            "maxItems": 2,
                            "prefixItems": [_NAME, {"type": "string", "maxLength": MAX_VALUE}],
                            "items": {"type": "string", "maxLength": MAX_VALUE},
                        },
                    },
                    "assertEmpty": {"type": "boolean"},
                },
            },
            {
                "type": "object",
                "required": ["type", "keys"],
                "additionalProperties": False,
                "properties": {
                    "type": {"const": "delete"},
                    "keys": {"type": "array", "maxItems": MAX_VALUES, "items": _NAME},
                },
            },
            {
                "type": "object",
                "required": ["type", "prefix"],
                "additionalProperties": False,
                "properties": {
                    "type": {"const": "clear"},
                    "prefix": {**_PREFIX, "minLength": 1},
                },
            },
        ]
    },
}


def parse_changes(data: Any) -> list[services.Change]:
    if not isinstance(data, list):
        raise custom_error(
            "body", 'The body must be a list of changes, e.g. [{"type": "clear", "prefix": "a."}]'
        )
    if len(data) > MAX_CHANGES:
        raise custom_error("body", f"At most {MAX_CHANGES} changes at once.")
    changes: list[services.Change] = []
    for index, item in enumerate(data):
        where = f"[{index}]"
        if not isinstance(item, dict):
            raise custom_error(where, f"{where}: a change must be an object")
        kind = item.get("type")
        if not isinstance(kind, str) or kind not in INPUTS:
            if kind is None:
                raise ValidationError({f"{where}.type": [ErrorDetail("", code="required")]})
            raise custom_error(
                f"{where}.type",
                f"Invalid value for field {where}.type: {kind} (insert, delete or clear)",
            )
        serializer = INPUTS[kind](data=item)
        if not serializer.is_valid():
            raise ValidationError({where: serializer.errors})
        values = serializer.validated_data
        if kind == "insert":
            changes.append(
                services.Insert(
                    values=[(k, v) for k, v in values["values"]],
                    prefix=values.get("prefix") or None,
                    assert_empty=values.get("assertEmpty", False),
                )
            )
        elif kind == "delete":
            changes.append(services.Delete(keys=values["keys"]))
        else:
            changes.append(services.Clear(prefix=values["prefix"]))
    return changes


class SettingsUpdateApi(MethodPermissionApi):
    method_permissions = {"POST": Perm.SETTINGS_UPDATE}

    @extend_schema(
        operation_id="settings_update",
        request={"application/json": UPDATE_BODY},
        responses={200: NULL_DATA, 400: PROBLEM, 403: PROBLEM, 409: PROBLEM},
        description=(
            "Changes the store, all or nothing, in order: `insert` sets [key, value] pairs "
            "(under `prefix.` when given; `assertEmpty` refuses with 409 when it is already "
            "set), `delete` removes keys, `clear` removes every key starting with `prefix`. "
            "Values are checked against their key (a rule's score is a number). Deleting and "
            "clearing also need `settings-delete`."
        ),
    )
    def post(self, request):
        services.settings_update(actor=request.user, changes=parse_changes(request.data))
        return ok(None)


RELOAD_RESULT = envelope(
    "SettingsReload",
    inline_serializer(
        name="SettingsReloadData",
        fields={
            "warnings": serializers.DictField(child=serializers.CharField()),
            "errors": serializers.DictField(child=serializers.CharField()),
        },
    ),
)


class SettingsReloadApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.SETTINGS_RELOAD}

    @extend_schema(
        operation_id="settings_reload",
        responses={200: RELOAD_RESULT, 403: PROBLEM},
        description=(
            "Every process re-reads the settings store. `errors`: stored values the checks "
            "refuse today (ignored, e.g. an override of a rule gone from the rules file); "
            "`warnings`: keys nothing reads (stored only)."
        ),
    )
    def get(self, request):
        return ok(services.settings_reload(actor=request.user))
