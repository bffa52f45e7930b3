"""DNS check API (/api/dns/check/{domain}) and the zone-file form of the DNS records
(/api/dns/records/{domain}?format=zone).

Starting a check is a run on the task base (202 with its id); reading one returns what the
latest check found, record by record, with the diagnostic a person can act on.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Perm
from apps.domains import api, selectors, services, zone
from apps.domains.models import DomainProfile
from apps.domains.serializers import DnsRecordOutput
from mailadmin.api.renderers import JSONRenderer
from mailadmin.api.schema import envelope
from mailadmin.api.views import MethodPermissionApi, ok

DOMAIN_PARAMETER = OpenApiParameter(
    "domain",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Domain name (Unicode or punycode) or id",
)

RECORDS_NAME_PARAMETER = OpenApiParameter(
    "domain",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Domain name (Unicode or punycode) or id, or the name of a domain alias",
)


RECORDS = envelope("DnsRecords", serializers.ListField(child=DnsRecordOutput()))


class DnsCheckRecordOutput(serializers.Serializer):
    type = serializers.CharField()
    name = serializers.CharField()
    expected = serializers.CharField()
    found = serializers.ListField(child=serializers.CharField(), help_text="What DNS answered")
    state = serializers.CharField(help_text="ok, missing, mismatch or error (lookup failed)")
    diagnostic = serializers.CharField(help_text="What is wrong, for a person; may be empty")


class DnsCheckOutput(serializers.Serializer):
    status = serializers.CharField(
        help_text="unknown, ok, partial or failing; a check that could not finish leaves it"
    )
    checkedAt = serializers.DateTimeField(allow_null=True)  # noqa: N815 - API field name
    records = DnsCheckRecordOutput(many=True)


class DnsCheckRunOutput(serializers.Serializer):
    runId = serializers.UUIDField()  # noqa: N815 - API field name


def _check_data(domain, results) -> dict:
    profile = selectors.domain_profile(domain)
    return {
        "status": profile.dns_status if profile else DomainProfile.Status.UNKNOWN,
        "checkedAt": profile.dns_checked_at if profile else None,
        "records": [
            {
                "type": r.record_type,
                "name": r.name,
                "expected": r.expected,
                "found": r.found.split("\n") if r.found else [],
                "state": r.status,
                "diagnostic": r.detail,
            }
            for r in results
        ],
    }


class DnsCheckApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.DNS_RECORD_GET, "POST": Perm.DNS_CHECK}

    @extend_schema(
        operation_id="dns_check_get",
        parameters=[DOMAIN_PARAMETER],
        responses={200: envelope("DnsCheck", DnsCheckOutput())},
    )
    def get(self, request: Request, domain: str) -> Response:
        found = selectors.domain_get(actor=request.user, name_or_id=domain)
        results = selectors.dns_results(actor=request.user, domain=found).order_by("id")
        return ok(DnsCheckOutput(_check_data(found, results)).data)

    @extend_schema(
        operation_id="dns_check_start",
        parameters=[DOMAIN_PARAMETER],
        request=None,
        responses={202: envelope("DnsCheckStarted", DnsCheckRunOutput())},
    )
    def post(self, request: Request, domain: str) -> Response:
        found = selectors.domain_get(actor=request.user, name_or_id=domain)
        run = services.domain_dns_check_start(actor=request.user, domain=found)
        return ok({"runId": str(run.id)}, status=202)


class ZoneFileRenderer(renderers.BaseRenderer):
    """`?format=zone`: the records as a BIND zone file (RFC 1035 master file)."""

    media_type = "text/dns"
    format = "zone"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return data.encode(self.charset) if isinstance(data, str) else b""


class DnsRecordsApi(api.DnsRecordsApi):
    """The management API's record list (TXT content quoted and split as a zone file needs
    it, so a paste works), or the same records as a zone file to import (`?format=zone`).
    The name may be a domain alias: its own record set and zone."""

    renderer_classes = [*api.DnsRecordsApi.renderer_classes, ZoneFileRenderer]

    @extend_schema(
        operation_id="dns_records_get",
        parameters=[
            RECORDS_NAME_PARAMETER,
            OpenApiParameter(
                "format",
                {"type": "string", "enum": ["json", "xml", "zone"]},
                description="zone: a BIND zone file (text/dns) instead of the JSON list",
            ),
        ],
        responses={
            (200, "application/json"): RECORDS,
            (200, "application/xml"): RECORDS,
            (200, "text/dns"): OpenApiResponse(OpenApiTypes.STR, description="BIND zone file"),
        },
    )
    def get(self, request: Request, domain: str) -> Response:
        zone_name, records = selectors.dns_record_set(actor=request.user, name_or_id=domain)
        if not isinstance(request.accepted_renderer, ZoneFileRenderer):
            return ok(
                [{"type": r["type"], "name": r["name"], "content": zone.rdata(r)} for r in records]
            )
        text = zone.zone_file(
            domain=zone_name,
            records=records,
            hostname=settings.MAILADMIN_HOSTNAME,
            host_addresses=settings.MAILADMIN_OUTBOUND_IPS,
        )
        response = Response(text)
        response["Content-Disposition"] = f'attachment; filename="{zone_name}.zone"'
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors stay problem JSON even when a zone file was asked for.
        if response.status_code >= 400 and isinstance(
            getattr(request, "accepted_renderer", None), ZoneFileRenderer
        ):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
