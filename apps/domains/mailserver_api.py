"""GET /api/mailserver/server (tenant-mailserver-api.txt): the mail server a tenant's
users connect to and the DNS its domain needs, each record with whether the latest DNS
check found it (IsVerified), in the spec's field names, JSON or XML.

A tenant admin sees their own tenant; a superadmin names one with `?tenant=` (id or name).
The DNS part is of `?domain=` or else the tenant's first registered domain.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from apps.accounts.permissions import Perm
from apps.domains import clientconfig, records, selectors
from mailadmin.api.schema import envelope
from mailadmin.api.serializers import QueryParams
from mailadmin.api.views import MethodPermissionApi, ok

# Our servers have no rows of their own: fixed ids for the incoming and outgoing one.
IN_SERVER_ID, OUT_SERVER_ID = 1, 2
MX_PRIORITY = 10


# --- output shapes (for the schema; names as the spec spells them) --------------------


class _NamedRecord(serializers.Serializer):
    Name = serializers.CharField()
    Value = serializers.CharField()
    IsVerified = serializers.BooleanField()


class _MxRecord(serializers.Serializer):
    Host = serializers.CharField()
    Priority = serializers.IntegerField()
    IsVerified = serializers.BooleanField()


class _DkimRecord(serializers.Serializer):
    Selector = serializers.CharField()
    PublicKey = serializers.CharField(help_text="The TXT content to publish")
    IsVerified = serializers.BooleanField()


class _Dns(serializers.Serializer):
    Id = serializers.IntegerField(allow_null=True, help_text="The domain's id (null: none yet)")
    MxRecord = _MxRecord()
    SpfRecord = _NamedRecord()
    DkimRecord = _DkimRecord()
    DomainCheckRecord = _NamedRecord()


class _ServerLimits(serializers.Serializer):
    MailboxMaxCountPerUser = serializers.IntegerField(
        allow_null=True, help_text="Addresses per account (null: no limit)"
    )


class _Server(serializers.Serializer):
    Id = serializers.IntegerField()
    ProviderId = serializers.IntegerField()
    Type = serializers.CharField()
    Hostname = serializers.CharField()
    Port = serializers.IntegerField()
    SocketType = serializers.CharField()
    Username = serializers.CharField()
    Authentication = serializers.CharField()
    IsUserData = serializers.BooleanField()


class MailServerOutput(serializers.Serializer):
    Id = serializers.IntegerField(help_text="The tenant's id")
    Dns = _Dns()
    ServerLimits = _ServerLimits()
    InServer = _Server()
    OutServer = _Server()


class MailServerParams(QueryParams):
    tenant = serializers.CharField(required=False, max_length=255, allow_blank=True)
    domain = serializers.CharField(required=False, max_length=255, allow_blank=True)


# --- building it --------------------------------------------------------------------------


def _server(server_id: int, endpoint: clientconfig.Endpoint) -> dict[str, Any]:
    return {
        "Id": server_id,
        "ProviderId": 0,
        "Type": endpoint.protocol,
        "Hostname": clientconfig.mail_host(),
        "Port": endpoint.port,
        "SocketType": endpoint.socket_type,
        "Username": "%EMAILADDRESS%",
        "Authentication": "password-cleartext",
        "IsUserData": False,
    }


def _dns(domain) -> dict[str, Any]:
    mx = {"Host": clientconfig.mail_host(), "Priority": MX_PRIORITY, "IsVerified": False}
    spf = {"Name": "", "Value": "", "IsVerified": False}
    dkim = {"Selector": "", "PublicKey": "", "IsVerified": False}
    proof = {"Name": "", "Value": "", "IsVerified": False}
    if domain is None:
        return {
            "Id": None,
            "MxRecord": mx,
            "SpfRecord": spf,
            "DkimRecord": dkim,
            "DomainCheckRecord": proof,
        }
    verified = selectors.verified_records(domain)

    def is_verified(record: records.Record) -> bool:
        return (record["type"], record["name"], record["content"]) in verified

    apex = f"{domain.name}."
    signing = False  # the DKIM record shown: the signing (active) key's, else the first
    for record in selectors.expected_records(domain=domain):
        kind, name, content = record["type"], record["name"], record["content"]
        if kind == "MX" and name == apex:
            mx["IsVerified"] = is_verified(record)
        elif kind == "TXT" and name == apex and content.startswith("v=spf1"):
            spf.update(Name=name.rstrip("."), Value=content, IsVerified=is_verified(record))
        elif kind == "TXT" and "._domainkey." in name and not signing:
            signing = record["required"]  # only the active key's record is required
            if dkim["Selector"] and not signing:
                continue
            dkim.update(
                Selector=name.split("._domainkey.", 1)[0],
                PublicKey=content,
                IsVerified=is_verified(record),
            )
        elif kind == "TXT" and name == records.verification_name(domain.name):
            proof.update(Name=name.rstrip("."), Value=content, IsVerified=is_verified(record))
    return {
        "Id": domain.pk,
        "MxRecord": mx,
        "SpfRecord": spf,
        "DkimRecord": dkim,
        "DomainCheckRecord": proof,
    }


def mailserver_data(*, tenant, domain) -> dict[str, Any]:
    return {
        "Id": tenant.pk,
        "Dns": _dns(domain),
        "ServerLimits": {"MailboxMaxCountPerUser": tenant.max_mailboxes_per_user},
        "InServer": _server(IN_SERVER_ID, clientconfig.IMAP),
        "OutServer": _server(OUT_SERVER_ID, clientconfig.SMTP),
    }


class MailServerApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.DNS_RECORD_GET}

    @extend_schema(
        operation_id="mailserver_get",
        parameters=[
            OpenApiParameter(
                "tenant",
                {"type": "string", "maxLength": 255},
                description="Superadmins: the tenant (id or name); others: their own or empty",
            ),
            OpenApiParameter(
                "domain",
                {"type": "string", "maxLength": 255},
                description="Whose DNS to show (id or name); empty: the tenant's first domain",
            ),
        ],
        responses={200: envelope("MailServer", MailServerOutput())},
    )
    def get(self, request):
        params = MailServerParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        tenant = selectors.mailserver_tenant(actor=request.user, tenant=values.get("tenant", ""))
        domain = selectors.mailserver_domain(tenant=tenant, domain=values.get("domain", ""))
        return ok(mailserver_data(tenant=tenant, domain=domain))
