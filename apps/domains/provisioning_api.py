"""The mailbox provisioning API (mailbox-provisioning-api.txt) under
/api/customers/{customer}/domains/{domain}/mailboxes[/{name}[/emailaddresses/{address}]].

The customer is our tenant (its id or name; a superadmin names any, `-` for the server's
own domains), the domain one of its domains. Fields, verbs and the 400/404 messages are
the spec's; bodies are form fields as in the spec's examples, JSON, or XML. Answers are JSON, or
XML for `Accept: text/xml` / `application/xml` (or `?format=xml`); any other format asked
for is the spec's 404 "Invalid format".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import parsers, serializers
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation

from apps.accounts.emails import display_address, display_domain
from apps.accounts.permissions import Perm
from apps.domains import mailbox_fields, mailbox_selectors, mailbox_services
from apps.domains.mailbox_services import MB
from apps.spamfilter import sender_lists
from mailadmin.api.pagination import paginate_request
from mailadmin.api.parsers import (
    BodyError,
    JSONParser,
    PayloadTooLarge,
    body_limit,
    too_large_detail,
)
from mailadmin.api.renderers import TextXMLRenderer, XMLRenderer
from mailadmin.api.schema import PROBLEM, NullField, envelope, page_of
from mailadmin.api.views import MethodPermissionApi, ok
from mailadmin.errors import NotFound

INVALID_FORMAT = "Invalid format"
FORMATS = {"json", "xml"}


class ProvisioningNegotiation(DefaultContentNegotiation):
    """JSON or XML as asked; a format we can't give is the spec's 404 "Invalid format"
    (the error itself then comes as JSON)."""

    def select_renderer(self, request, renderers_list, format_suffix=None):
        renderers_list = [*renderers_list]
        if any(isinstance(r, XMLRenderer) for r in renderers_list):
            renderers_list.append(TextXMLRenderer())
        requested = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if requested is not None and requested not in FORMATS:
            raise NotFound(INVALID_FORMAT)
        try:
            return super().select_renderer(request, renderers_list, format_suffix)
        except NotAcceptable:
            raise NotFound(INVALID_FORMAT) from None


class XMLFieldsParser(parsers.BaseParser):
    """An XML body of form fields, as the XML answers are shaped: any root element whose
    children are the fields (`<mailbox><displayName>Alex</displayName>...</mailbox>`).
    Parsed by defusedxml (no DTDs, no entities) within the JSON parser's size limit."""

    media_type = "application/xml"

    def parse(self, stream, media_type=None, parser_context=None) -> dict[str, str]:
        limit = body_limit()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(too_large_detail())
        try:
            root = ElementTree.fromstring(raw)
        except ElementTree.ParseError as exc:
            raise BodyError(f"Malformed request body: {exc}") from None
        except DefusedXmlException:  # its text is a repr: EntitiesForbidden(name='a', ...)
            raise BodyError("Malformed request body: XML entities are not allowed.") from None
        except LookupError:  # expat asks Python's codecs for the declared encoding
            raise BodyError(
                "Malformed request body: the XML declares an unknown encoding."
            ) from None
        fields: dict[str, str] = {}
        for child in root:
            if len(child):
                raise BodyError(f"Invalid value for field {child.tag}: expected text.", child.tag)
            fields[child.tag] = child.text or ""
        return fields


class TextXMLFieldsParser(XMLFieldsParser):
    media_type = "text/xml"


# --- output -------------------------------------------------------------------------------


def mailbox_data(profile) -> dict[str, Any]:
    """A mailbox in the spec's field names (never its password)."""
    principal = profile.principal
    addresses = [display_address(e.address) for e in principal.emails.all()]
    data: dict[str, Any] = {"name": profile.name}
    for field in mailbox_fields.FIELDS:
        if field.attr == "password":
            continue
        if field.attr == "size":
            data["size"] = principal.quota // MB
        elif field.attr == "enabled":
            data["enabled"] = principal.is_active
        elif field.attr == "forwarding_address":
            stored = profile.forwarding_address
            data[field.api] = display_address(stored) if stored else ""
        else:
            data[field.api] = getattr(profile, field.attr)
    data["emailAddress"] = addresses[0] if addresses else ""
    data["emailAddresses"] = addresses[1:]
    return data


def _output_fields() -> dict[str, serializers.Field]:
    fields: dict[str, serializers.Field] = {"name": serializers.CharField()}
    for field in mailbox_fields.FIELDS:
        if field.attr == "password":
            continue
        fields[field.api] = {
            mailbox_fields.STRING: serializers.CharField,
            mailbox_fields.INTEGER: serializers.IntegerField,
            mailbox_fields.BOOLEAN: serializers.BooleanField,
        }[field.kind](help_text="Megabytes" if field.api == "size" else "")
    fields["emailAddress"] = serializers.CharField(help_text="The primary address")
    fields["emailAddresses"] = serializers.ListField(
        child=serializers.CharField(), help_text="Its other addresses"
    )
    return fields


MailboxOutput = inline_serializer(name="ProvisionedMailbox", fields=_output_fields())


def _input_schema(creating: bool) -> serializers.Serializer:
    fields: dict[str, serializers.Field] = {}
    for field in mailbox_fields.FIELDS:
        required = creating and field.api in mailbox_fields.REQUIRED_ON_ADD
        if field.kind == mailbox_fields.INTEGER:
            fields[field.api] = serializers.IntegerField(
                required=required, min_value=1, max_value=mailbox_fields.MAX_SIZE_MB
            )
        elif field.kind == mailbox_fields.BOOLEAN:
            fields[field.api] = serializers.BooleanField(required=required)
        else:
            minimum = 8 if field.api == "password" else 1 if required else 0
            fields[field.api] = serializers.CharField(
                required=required, max_length=field.max_length, min_length=minimum
            )
    return inline_serializer(
        name="MailboxAddInput" if creating else "MailboxEditInput", fields=fields
    )


ADD_INPUT = _input_schema(True)
EDIT_INPUT = _input_schema(False)


# --- input --------------------------------------------------------------------------------


def _body(request) -> dict[str, Any]:
    data = request.data
    if hasattr(data, "getlist"):  # form fields: the last value of each
        return {name: data.get(name) for name in data}
    if not isinstance(data, Mapping):
        raise BodyError("Malformed request body: expected an object of form fields.")
    return dict(data)


# --- views --------------------------------------------------------------------------------

CUSTOMER = OpenApiParameter(
    "customer",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The tenant's id or name (superadmins: `-` for the server's own domains)",
)
DOMAIN = OpenApiParameter(
    "domain", OpenApiTypes.STR, OpenApiParameter.PATH, description="Domain name"
)
NAME = OpenApiParameter(
    "name", OpenApiTypes.STR, OpenApiParameter.PATH, description="Mailbox (user) name"
)
ADDRESS = OpenApiParameter(
    "address", OpenApiTypes.STR, OpenApiParameter.PATH, description="E-mail address"
)


class _ProvisioningApi(MethodPermissionApi):
    content_negotiation_class = ProvisioningNegotiation
    parser_classes = [
        JSONParser,
        parsers.FormParser,
        parsers.MultiPartParser,
        XMLFieldsParser,
        TextXMLFieldsParser,
    ]

    def domain(self, request, customer: str, domain: str):
        tenant = mailbox_selectors.provisioning_tenant(actor=request.user, customer=customer)
        return mailbox_selectors.provisioning_domain(actor=request.user, tenant=tenant, name=domain)

    def mailbox(self, request, customer: str, domain: str, name: str):
        found = self.domain(request, customer, domain)
        return mailbox_selectors.mailbox_get(actor=request.user, domain=found, name=name)


class MailboxListApi(_ProvisioningApi):
    method_permissions = {"GET": Perm.PRINCIPAL_LIST}

    @extend_schema(
        operation_id="provisioning_mailbox_list",
        parameters=[CUSTOMER, DOMAIN],
        responses={200: page_of("ProvisionedMailboxPage", MailboxOutput), 404: PROBLEM},
    )
    def get(self, request, customer: str, domain: str):
        found = self.domain(request, customer, domain)
        queryset = mailbox_selectors.mailbox_list(actor=request.user, domain=found)
        return ok(paginate_request(request, queryset, mailbox_data))


class MailboxDetailApi(_ProvisioningApi):
    method_permissions = {
        "GET": Perm.PRINCIPAL_GET,
        "POST": Perm.PRINCIPAL_CREATE,
        "PUT": Perm.PRINCIPAL_UPDATE,
        "DELETE": Perm.PRINCIPAL_DELETE,
    }

    @extend_schema(
        operation_id="provisioning_mailbox_get",
        parameters=[CUSTOMER, DOMAIN, NAME],
        responses={200: envelope("ProvisionedMailboxEnvelope", MailboxOutput), 404: PROBLEM},
    )
    def get(self, request, customer: str, domain: str, name: str):
        return ok(mailbox_data(self.mailbox(request, customer, domain, name)))

    @extend_schema(
        operation_id="provisioning_mailbox_add",
        parameters=[CUSTOMER, DOMAIN, NAME],
        request={
            "application/json": ADD_INPUT,
            "application/x-www-form-urlencoded": ADD_INPUT,
            "application/xml": ADD_INPUT,
        },
        responses={200: envelope("ProvisionedMailboxAdded", MailboxOutput), 404: PROBLEM},
    )
    def post(self, request, customer: str, domain: str, name: str):
        found = self.domain(request, customer, domain)
        values = mailbox_fields.parse(_body(request), creating=True)
        profile = mailbox_services.mailbox_create(
            actor=request.user, domain=found, name=name, values=values
        )
        profile = mailbox_selectors.mailbox_by_id(actor=request.user, mailbox_id=profile.pk)
        return ok(mailbox_data(profile))

    @extend_schema(
        operation_id="provisioning_mailbox_edit",
        parameters=[CUSTOMER, DOMAIN, NAME],
        request={
            "application/json": EDIT_INPUT,
            "application/x-www-form-urlencoded": EDIT_INPUT,
            "application/xml": EDIT_INPUT,
        },
        responses={200: envelope("ProvisionedMailboxEdited", MailboxOutput), 404: PROBLEM},
    )
    def put(self, request, customer: str, domain: str, name: str):
        mailbox = self.mailbox(request, customer, domain, name)
        values = mailbox_fields.parse(_body(request), creating=False)
        mailbox_services.mailbox_update(actor=request.user, mailbox=mailbox, values=values)
        profile = mailbox_selectors.mailbox_by_id(actor=request.user, mailbox_id=mailbox.pk)
        return ok(mailbox_data(profile))

    @extend_schema(
        operation_id="provisioning_mailbox_delete",
        parameters=[CUSTOMER, DOMAIN, NAME],
        responses={200: envelope("ProvisionedMailboxDeleted", NullField()), 404: PROBLEM},
    )
    def delete(self, request, customer: str, domain: str, name: str):
        mailbox = self.mailbox(request, customer, domain, name)
        mailbox_services.mailbox_delete(actor=request.user, mailbox=mailbox)
        return ok(None)


class MailboxAddressApi(_ProvisioningApi):
    method_permissions = {"POST": Perm.PRINCIPAL_UPDATE, "DELETE": Perm.PRINCIPAL_UPDATE}

    @extend_schema(
        operation_id="provisioning_address_add",
        parameters=[CUSTOMER, DOMAIN, NAME, ADDRESS],
        request=None,
        responses={200: envelope("ProvisionedAddressAdded", MailboxOutput), 404: PROBLEM},
    )
    def post(self, request, customer: str, domain: str, name: str, address: str):
        mailbox = self.mailbox(request, customer, domain, name)
        mailbox_services.mailbox_address_add(actor=request.user, mailbox=mailbox, address=address)
        profile = mailbox_selectors.mailbox_by_id(actor=request.user, mailbox_id=mailbox.pk)
        return ok(mailbox_data(profile))

    @extend_schema(
        operation_id="provisioning_address_delete",
        parameters=[CUSTOMER, DOMAIN, NAME, ADDRESS],
        responses={200: envelope("ProvisionedAddressDeleted", MailboxOutput), 404: PROBLEM},
    )
    def delete(self, request, customer: str, domain: str, name: str, address: str):
        mailbox = self.mailbox(request, customer, domain, name)
        mailbox_services.mailbox_address_remove(
            actor=request.user, mailbox=mailbox, address=address
        )
        profile = mailbox_selectors.mailbox_by_id(actor=request.user, mailbox_id=mailbox.pk)
        return ok(mailbox_data(profile))


# --- the mailbox's spam lists (the spec's "Spam" part) ------------------------------------

LIST = OpenApiParameter(
    "list_name",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    enum=["blacklist", "ipblacklist", "safelist", "ipsafelist"],
    description="Which list: addresses/domains (blacklist, safelist) or IPs/CIDR networks",
)
ENTRY = OpenApiParameter(
    "entry",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="An address, a domain, or an IP address / CIDR network (IP lists)",
)
SenderListOutput = inline_serializer(
    name="MailboxSenderList",
    fields={
        "name": serializers.CharField(help_text="The list"),
        "entries": serializers.ListField(child=serializers.CharField()),
    },
)


class _SenderListApi(_ProvisioningApi):
    def list_mailbox(self, request, customer: str, domain: str, name: str, list_name: str):
        """(domain, mailbox principal); the spec's "No user with the email address ..."
        for a mailbox that is not there (or is another tenant's)."""
        if list_name not in sender_lists.LISTS:
            raise NotFound()
        found = self.domain(request, customer, domain)
        try:
            mailbox = mailbox_selectors.mailbox_get(actor=request.user, domain=found, name=name)
        except NotFound:
            shown = f"{(name or '').strip().lower()}@{display_domain(found.name)}"
            raise NotFound(f"No user with the email address {shown} exists") from None
        return found, mailbox.principal

    def answer(self, request, mailbox, list_name: str):
        entries = sender_lists.entry_list(actor=request.user, mailbox=mailbox, list_name=list_name)
        return ok({"name": list_name, "entries": entries})


class MailboxSenderListApi(_SenderListApi):
    method_permissions = {"GET": Perm.PRINCIPAL_GET}

    @extend_schema(
        operation_id="provisioning_sender_list_get",
        parameters=[CUSTOMER, DOMAIN, NAME, LIST],
        responses={200: envelope("MailboxSenderListEnvelope", SenderListOutput), 404: PROBLEM},
    )
    def get(self, request, customer: str, domain: str, name: str, list_name: str):
        _, mailbox = self.list_mailbox(request, customer, domain, name, list_name)
        return self.answer(request, mailbox, list_name)


class MailboxSenderListEntryApi(_SenderListApi):
    method_permissions = {"POST": Perm.PRINCIPAL_UPDATE, "DELETE": Perm.PRINCIPAL_UPDATE}

    @extend_schema(
        operation_id="provisioning_sender_list_add",
        parameters=[CUSTOMER, DOMAIN, NAME, LIST, ENTRY],
        request=None,
        responses={
            200: envelope("MailboxSenderListAdded", SenderListOutput),
            400: PROBLEM,
            404: PROBLEM,
        },
    )
    def post(self, request, customer: str, domain: str, name: str, list_name: str, entry: str):
        found, mailbox = self.list_mailbox(request, customer, domain, name, list_name)
        target, _ = sender_lists.parse_entry(list_name, entry)
        sender_lists.entry_add(
            actor=request.user, mailbox=mailbox, domain=found, list_name=list_name, value=entry
        )
        return self.answer(request, mailbox, target)

    @extend_schema(
        operation_id="provisioning_sender_list_delete",
        parameters=[CUSTOMER, DOMAIN, NAME, LIST, ENTRY],
        responses={
            200: envelope("MailboxSenderListRemoved", SenderListOutput),
            400: PROBLEM,
            404: PROBLEM,
        },
    )
    def delete(self, request, customer: str, domain: str, name: str, list_name: str, entry: str):
        _, mailbox = self.list_mailbox(request, customer, domain, name, list_name)
        target = sender_lists.entry_remove(
            actor=request.user, mailbox=mailbox, list_name=list_name, value=entry
        )
        return self.answer(request, mailbox, target)


SpamSettingOutput = inline_serializer(
    name="MailboxSpamSetting",
    fields={
        "filterlevel": serializers.ChoiceField(choices=["on", "off", "exclusive"]),
        "sendtodomainquarantine": serializers.BooleanField(),
        "quarantineowner": serializers.CharField(allow_blank=True),
    },
)
SpamSettingInput = inline_serializer(
    name="MailboxSpamSettingInput",
    fields={
        "filterlevel": serializers.ChoiceField(choices=["on", "off", "exclusive"]),
        "sendtodomainquarantine": serializers.BooleanField(required=False),
        "quarantineowner": serializers.EmailField(required=False),
    },
)


class MailboxSpamSettingApi(_SenderListApi):
    """Show / Edit Spam Setting: `filterlevel` on/off/exclusive (off forces
    `sendtodomainquarantine` false; exclusive accepts only safe-listed senders)."""

    method_permissions = {"GET": Perm.PRINCIPAL_GET, "PUT": Perm.PRINCIPAL_UPDATE}

    @extend_schema(
        operation_id="provisioning_spam_setting_get",
        parameters=[CUSTOMER, DOMAIN, NAME],
        responses={200: envelope("MailboxSpamSettingEnvelope", SpamSettingOutput), 404: PROBLEM},
    )
    def get(self, request, customer: str, domain: str, name: str):
        mailbox = self.mailbox(request, customer, domain, name).principal  # "Mailbox not found"
        setting = sender_lists.setting_get(actor=request.user, mailbox=mailbox)
        return ok(sender_lists.setting_data(setting))

    @extend_schema(
        operation_id="provisioning_spam_setting_edit",
        parameters=[CUSTOMER, DOMAIN, NAME],
        request={
            "application/json": SpamSettingInput,
            "application/x-www-form-urlencoded": SpamSettingInput,
            "application/xml": SpamSettingInput,
        },
        responses={
            200: envelope("MailboxSpamSettingEdited", SpamSettingOutput),
            400: PROBLEM,
            404: PROBLEM,
        },
    )
    def put(self, request, customer: str, domain: str, name: str):
        _, mailbox = self.list_mailbox(request, customer, domain, name, "safelist")
        setting = sender_lists.setting_update(
            actor=request.user, mailbox=mailbox, raw=_body(request)
        )
        return ok(sender_lists.setting_data(setting))
