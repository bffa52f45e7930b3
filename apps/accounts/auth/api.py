"""API of authentication: /api/oauth, /api/oauth/token, /api/account/{auth,crypto,api-keys}.

Views parse and render; the auth services do the work (and the permission and
tenant checks). Secrets appear in a response only where they are created and shown once:
the OAuth code, the access token and a new API key's secret.
"""

from __future__ import annotations

from typing import Any

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.response import Response

from apps.accounts.auth import account, api_keys, app_passwords, encryption, oauth
from apps.accounts.auth.common import MAX_PASSWORD
from apps.accounts.names import NAME_PATTERN
from apps.accounts.permissions import ALL_PERMISSIONS, Perm
from mailadmin.api.parsers import JSONParser
from mailadmin.api.permissions import Authenticated, Public, require
from mailadmin.api.renderers import JSONRenderer
from mailadmin.api.schema import NULL_DATA, PROBLEM, envelope, page_of, strict_inline
from mailadmin.api.views import ApiView, ok
from mailadmin.errors import ServiceError


def _object(data: Any, allowed: set[str]) -> dict:
    """The JSON body as a dict with no field outside `allowed`."""
    if not isinstance(data, dict):
        raise ServiceError("The request body must be a JSON object.")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ServiceError(f"Unrecognized field: {unknown[0]}", field=unknown[0])
    return data


def _string(data: dict, field: str, *, required: bool = False, max_length: int = 1024) -> str:
    value = data.get(field)
    if value is None or value == "":
        if required:
            raise ServiceError(f"Missing required field: {field}", field=field)
        return ""
    if not isinstance(value, str):
        raise ServiceError(f"Invalid value for field {field}: expected a string.", field=field)
    if "\x00" in value:
        raise ServiceError(
            f"Invalid value for field {field}: Null characters are not allowed.", field=field
        )
    if len(value) > max_length:
        raise ServiceError(
            f"Invalid value for field {field}: longer than {max_length} characters.", field=field
        )
    return value


def _optional_text(max_length: int) -> serializers.CharField:
    """How `_string` reads an optional field: absent, null, "" or a string."""
    return serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=max_length
    )


# --- /api/account/auth -----------------------------------------------------------------

_TEXT = r"^[^\u0000]*\S[^\u0000]*$"  # not blank, no NUL


def _action(kind: str, **fields: dict) -> dict:
    return {
        "type": "object",
        "properties": {"type": {"const": kind}, **fields},
        "required": ["type", *fields],
        "additionalProperties": False,
    }


ACCOUNT_AUTH_ACTIONS = {
    "type": "array",
    "items": {
        "oneOf": [
            _action(
                "addAppPassword",
                name={"type": "string", "pattern": _TEXT, "maxLength": 255},
                password={
                    "type": "string",
                    "minLength": 8,
                    "maxLength": MAX_PASSWORD,
                    "description": "A password, or a $6$ / $5$ / bcrypt hash of one",
                },
            ),
            _action(
                "removeAppPassword", name={"type": "string", "pattern": _TEXT, "maxLength": 255}
            ),
            _action("enableOtpAuth", url={"type": "string", "pattern": "^otpauth://totp/"}),
            _action("disableOtpAuth"),
        ]
    },
}


class AccountAuthApi(ApiView):
    permission_classes = [require(Perm.MANAGE_PASSWORDS)]

    @extend_schema(
        responses={
            200: envelope(
                "AccountAuth",
                inline_serializer(
                    name="AccountAuthData",
                    fields={
                        "otpEnabled": serializers.BooleanField(),
                        "appPasswords": serializers.ListField(child=serializers.CharField()),
                    },
                ),
            ),
            401: PROBLEM,
        }
    )
    def get(self, request):
        actor = request.user
        names = list(app_passwords.app_password_list(actor=actor).values_list("name", flat=True))
        return ok({"otpEnabled": actor.otp_enabled, "appPasswords": names})

    @extend_schema(
        request={"application/json": ACCOUNT_AUTH_ACTIONS},
        responses={200: NULL_DATA, 400: PROBLEM},
        description="Apply every action or none. `password` may be a plain password or a "
        "SHA-512-crypt / SHA-256-crypt / bcrypt hash; `url` is an otpauth://totp/ URI.",
    )
    def post(self, request):
        actions = request.data
        if not isinstance(actions, list):
            raise ServiceError("The request body must be a list of actions.")
        account.account_auth_update(actor=request.user, actions=actions)
        return ok(None)


# --- /api/account/crypto ---------------------------------------------------------------


class AccountCryptoApi(ApiView):
    permission_classes = [require(Perm.MANAGE_ENCRYPTION)]

    @extend_schema(
        responses={
            200: envelope(
                "EncryptionSettings",
                inline_serializer(
                    name="EncryptionSettingsData",
                    fields={
                        "type": serializers.CharField(),
                        "algo": serializers.CharField(required=False),
                    },
                ),
            ),
            401: PROBLEM,
        }
    )
    def get(self, request):
        return ok(encryption.encryption_settings_get(actor=request.user))

    @extend_schema(
        request=strict_inline(
            "EncryptionSettingsUpdate",
            {
                "type": serializers.ChoiceField(
                    choices=["disabled", "pgp", "smime"], help_text="In any case (pGP too)"
                ),
                "algo": serializers.ChoiceField(
                    choices=["Aes128", "Aes256"], required=False, allow_null=True
                ),
                "certs": serializers.CharField(
                    required=False,
                    allow_null=True,
                    max_length=encryption.crypto.MAX_INPUT_BYTES * 2,
                    help_text="Armoured OpenPGP public keys or PEM certificates",
                ),
            },
        ),
        responses={200: envelope("EncryptionKeyCount", serializers.IntegerField()), 400: PROBLEM},
    )
    def post(self, request):
        data = _object(request.data, {"type", "algo", "certs"})
        count = encryption.encryption_settings_update(
            actor=request.user,
            type=_string(data, "type", required=True, max_length=16),
            algo=_string(data, "algo", max_length=16) or None,
            certs=_string(data, "certs", max_length=encryption.crypto.MAX_INPUT_BYTES * 2) or None,
        )
        return ok(count)


# --- /api/account/api-keys -------------------------------------------------------------


def _api_key_fields() -> dict[str, serializers.Field]:
    return {
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "description": serializers.CharField(allow_blank=True),
        "tenant": serializers.CharField(allow_null=True),
        "owner": serializers.CharField(
            allow_null=True, help_text="The account the key acts for; null once deleted"
        ),
        "permissions": serializers.ListField(
            child=serializers.CharField(),
            allow_null=True,
            help_text="The key's own list; null: all of its owner's permissions",
        ),
        "effectivePermissions": serializers.ListField(
            child=serializers.CharField(),
            help_text="What it may do now: the owner's current permissions narrowed by the list",
        ),
        "status": serializers.ChoiceField(choices=api_keys.API_KEY_STATUSES),
        "createdAt": serializers.DateTimeField(),
        "lastUsedAt": serializers.DateTimeField(allow_null=True),
        "expiresAt": serializers.DateTimeField(allow_null=True),
    }


API_KEY_OUTPUT = inline_serializer(name="ApiKey", fields=_api_key_fields())


def api_key_data(key) -> dict:
    """The one JSON shape of an API key (listed, or just made), never its secret.

    `permissions` is the key's own list (null: all of its owner's); `effectivePermissions`
    what it may do now, its owner's current permissions narrowed by that list.
    """

    def iso(value):
        return value.isoformat() if value else None

    status = api_keys.api_key_status(key)
    return {
        "id": key.pk,
        "name": key.name,
        "description": key.description,
        "tenant": key.tenant.name if key.tenant_id else None,
        "owner": key.created_by.name if key.created_by_id else None,
        "permissions": None if key.all_owner_permissions else sorted(key.enabled_permissions),
        "effectivePermissions": sorted(key.permissions) if status == "active" else [],
        "status": status,
        "createdAt": iso(key.created_at),
        "lastUsedAt": iso(getattr(key, "last_used_at", None)),
        "expiresAt": iso(getattr(key, "expires_at", None)),
    }


@extend_schema_field(
    {
        "anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "string", "maxLength": 0},
            {"type": "null"},
        ],
        "description": "When the key stops working, in the future; empty or null: never",
    }
)
class ExpiryField(serializers.DateTimeField):
    """expiresAt as the view reads it (`_string`: "" and null are no expiry)."""


class ApiKeyListCreateApi(ApiView):
    def get_permissions(self):
        perm = Perm.API_KEY_CREATE if self.request.method == "POST" else Perm.API_KEY_LIST
        return [require(perm)()]

    @extend_schema(responses={200: page_of("ApiKeyPage", API_KEY_OUTPUT)})
    def get(self, request):
        keys = api_keys.api_key_list(actor=request.user)
        return ok({"items": [api_key_data(key) for key in keys], "total": len(keys)})

    @extend_schema(
        request=strict_inline(
            "ApiKeyCreate",
            {
                "name": serializers.RegexField(NAME_PATTERN, max_length=255),
                "description": serializers.CharField(
                    required=False, allow_blank=True, max_length=1024
                ),
                "permissions": serializers.ListField(
                    child=serializers.ChoiceField(choices=sorted(ALL_PERMISSIONS)),
                    required=False,
                    allow_null=True,
                    help_text="Omitted or null: all of your permissions, as they are at each use",
                ),
                "expiresAt": ExpiryField(required=False),
            },
        ),
        responses={
            200: envelope(
                "ApiKeyCreated",
                inline_serializer(
                    name="ApiKeyCreatedData",
                    fields={
                        **_api_key_fields(),
                        "secret": serializers.CharField(help_text="Shown once"),
                    },
                ),
            ),
            400: PROBLEM,
        },
    )
    def post(self, request):
        data = _object(request.data, {"name", "description", "permissions", "expiresAt"})
        name = _string(data, "name", required=True, max_length=255)
        permissions = data.get("permissions")
        if permissions is not None and (
            not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions)
        ):
            raise ServiceError(
                "Invalid value for field permissions: expected a list of permission names.",
                field="permissions",
            )
        expires_at = None
        raw_expiry = _string(data, "expiresAt", max_length=64)
        if raw_expiry:
            try:
                expires_at = parse_datetime(raw_expiry)
            except ValueError:
                expires_at = None
            if expires_at is None:
                raise ServiceError(
                    "Invalid value for field expiresAt: use an ISO 8601 date and time.",
                    field="expiresAt",
                )
        key, secret = api_keys.api_key_create(
            actor=request.user,
            name=name,
            description=_string(data, "description", max_length=1024),
            permissions=permissions,
            expires_at=expires_at,
        )
        return ok({**api_key_data(key), "secret": secret})


class ApiKeyDetailApi(ApiView):
    permission_classes = [require(Perm.API_KEY_DELETE)]

    @extend_schema(responses={200: NULL_DATA, 404: PROBLEM})
    def delete(self, request, key_id: str):
        api_keys.api_key_revoke(actor=request.user, key=key_id)
        return ok(None)


# --- OAuth -----------------------------------------------------------------------------


class OAuthCodeApi(ApiView):
    """POST /api/oauth: an authorization code for the authenticated caller."""

    permission_classes = [Authenticated]

    @extend_schema(
        request=strict_inline(
            "OAuthCodeRequest",
            {
                "type": serializers.ChoiceField(choices=["code"]),
                "client_id": _optional_text(255),
                "redirect_uri": _optional_text(1024),
                "nonce": _optional_text(255),
            },
        ),
        responses={
            200: envelope(
                "OAuthCode",
                inline_serializer(
                    name="OAuthCodeData",
                    fields={
                        "code": serializers.CharField(),
                        "permissions": serializers.ListField(child=serializers.CharField()),
                        "version": serializers.CharField(),
                        "isEnterprise": serializers.BooleanField(),
                    },
                ),
            ),
            401: PROBLEM,
        },
        examples=[
            OpenApiExample(
                "webadmin",
                value={
                    "type": "code",
                    "client_id": "webadmin",
                    "redirect_uri": "stalwart://auth",
                    "nonce": "ttsaXca3qx",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        data = _object(request.data, {"type", "client_id", "redirect_uri", "nonce"})
        kind = _string(data, "type", required=True, max_length=32)
        if kind != "code":
            raise ServiceError(f"Invalid value for field type: {kind} (use code)", field="type")
        _string(data, "nonce", max_length=255)
        code = oauth.oauth_code_issue(
            actor=request.user,
            client_id=_string(data, "client_id", max_length=255),
            redirect_uri=_string(data, "redirect_uri", max_length=1024),
        )
        return ok(
            {
                "code": code,
                "permissions": sorted(request.user.permissions),
                "version": oauth.server_version(),
                "isEnterprise": False,
            }
        )


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(error: str, description: str = "", status: int = 400) -> Response:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return Response(body, status=status, headers=NO_STORE)


class OAuthTokenApi(ApiView):
    """POST: the token endpoint (RFC 6749 §4.1.3, public client, no authentication).
    DELETE: revoke the OAuth bearer token this request carries."""

    renderer_classes = [JSONRenderer]
    parser_classes = [parsers.FormParser, JSONParser]

    def get_authenticators(self):
        if self.request is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    def get_permissions(self):
        if self.request.method == "POST":
            return [Public()]
        return [Authenticated()]

    @extend_schema(
        request=inline_serializer(
            name="OAuthTokenRequest",
            fields={
                "grant_type": serializers.ChoiceField(choices=["authorization_code"]),
                "code": serializers.CharField(),
                "client_id": serializers.CharField(required=False, allow_blank=True),
                "redirect_uri": serializers.CharField(required=False, allow_blank=True),
            },
        ),
        responses={
            200: inline_serializer(
                name="OAuthToken",
                fields={
                    "access_token": serializers.CharField(),
                    "token_type": serializers.CharField(),
                    "expires_in": serializers.IntegerField(),
                },
            ),
            400: inline_serializer(
                name="OAuthError",
                fields={
                    "error": serializers.CharField(),
                    "error_description": serializers.CharField(required=False),
                },
            ),
        },
        auth=[],
    )
    def post(self, request):
        try:
            data = request.data
        except (ParseError, UnsupportedMediaType):
            return _oauth_error(
                "invalid_request",
                "Send application/x-www-form-urlencoded (or JSON) parameters.",
            )
        if not hasattr(data, "get"):
            return _oauth_error("invalid_request", "The body must be an object.")

        def param(name: str) -> str:
            value = data.get(name)
            return value if isinstance(value, str) else ""

        grant_type = param("grant_type")
        if not grant_type:
            return _oauth_error("invalid_request", "Missing parameter: grant_type")
        if grant_type != "authorization_code":
            return _oauth_error("unsupported_grant_type")
        if not param("code"):
            return _oauth_error("invalid_request", "Missing parameter: code")
        try:
            token, expires_in = oauth.oauth_token_exchange(
                code=param("code"),
                client_id=param("client_id"),
                redirect_uri=param("redirect_uri"),
            )
        except oauth.OAuthError as exc:
            return _oauth_error(exc.error, exc.description)
        return Response(
            {"access_token": token, "token_type": "Bearer", "expires_in": expires_in},
            headers=NO_STORE,
        )

    @extend_schema(responses={200: NULL_DATA})
    def delete(self, request):
        secret = request.auth if isinstance(request.auth, str) else ""
        if not secret:
            raise ServiceError("Only an OAuth bearer token can be revoked here.")
        oauth.oauth_token_revoke(actor=request.user, secret=secret)
        return ok(None)
