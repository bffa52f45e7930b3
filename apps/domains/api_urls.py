"""DKIM and DNS record API routes (management API paths)."""

from django.urls import path

from apps.domains.api import DkimCollectionApi, DkimDetailApi
from apps.domains.check_api import DnsCheckApi, DnsRecordsApi
from apps.domains.domains_api import DomainCollectionApi, DomainDetailApi
from apps.domains.mailserver_api import MailServerApi
from apps.domains.provisioning_api import (
    MailboxAddressApi,
    MailboxDetailApi,
    MailboxListApi,
    MailboxSenderListApi,
    MailboxSenderListEntryApi,
    MailboxSpamSettingApi,
)

# The mailbox provisioning API (mailbox-provisioning-api.txt); the customer is the tenant.
MAILBOXES = "customers/<str:customer>/domains/<str:domain>/mailboxes"

urlpatterns = [
    path("dkim", DkimCollectionApi.as_view(), name="api-dkim-list"),
    path("dkim/<id:key_id>", DkimDetailApi.as_view(), name="api-dkim"),
    path("dns/records/<str:domain>", DnsRecordsApi.as_view(), name="api-dns-records"),
    path("dns/check/<str:domain>", DnsCheckApi.as_view(), name="api-dns-check"),
    # The domains API (domains-api.txt); /api/domains/{id} is the same row as /api/principal/{id}.
    path("domains", DomainCollectionApi.as_view(), name="api-domain-list"),
    path("domains/<str:domain_id>", DomainDetailApi.as_view(), name="api-domain"),
    path("mailserver/server", MailServerApi.as_view(), name="api-mailserver"),
    path(MAILBOXES, MailboxListApi.as_view(), name="api-provisioning-mailboxes"),
    path(f"{MAILBOXES}/<str:name>", MailboxDetailApi.as_view(), name="api-provisioning-mailbox"),
    path(
        f"{MAILBOXES}/<str:name>/emailaddresses/<str:address>",
        MailboxAddressApi.as_view(),
        name="api-provisioning-address",
    ),
    path(
        f"{MAILBOXES}/<str:name>/spam/settings",
        MailboxSpamSettingApi.as_view(),
        name="api-provisioning-spam-setting",
    ),
    # Its spam lists; an IP list's entry may be a CIDR network (hence path: it has a "/").
    path(
        f"{MAILBOXES}/<str:name>/spam/<str:list_name>",
        MailboxSenderListApi.as_view(),
        name="api-provisioning-sender-list",
    ),
    path(
        f"{MAILBOXES}/<str:name>/spam/<str:list_name>/<path:entry>",
        MailboxSenderListEntryApi.as_view(),
        name="api-provisioning-sender-list-entry",
    ),
]
