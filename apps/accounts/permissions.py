"""The permission vocabulary (names as in the management API) and the built-in roles."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Perm(StrEnum):
    # principals (accounts, groups, lists, domains, tenants, roles, API keys)
    PRINCIPAL_LIST = "principal-list"
    PRINCIPAL_GET = "principal-get"
    PRINCIPAL_CREATE = "principal-create"
    PRINCIPAL_UPDATE = "principal-update"
    PRINCIPAL_DELETE = "principal-delete"
    TENANT_LIST = "tenant-list"
    TENANT_GET = "tenant-get"
    TENANT_CREATE = "tenant-create"
    TENANT_UPDATE = "tenant-update"
    TENANT_DELETE = "tenant-delete"
    API_KEY_LIST = "api-key-list"
    API_KEY_CREATE = "api-key-create"
    API_KEY_DELETE = "api-key-delete"
    AUDIT_LOG_VIEW = "audit-log-view"
    # own account
    MANAGE_PASSWORDS = "manage-passwords"
    MANAGE_ENCRYPTION = "manage-encryption"
    MANAGE_OWN_QUARANTINE = "manage-own-quarantine"  # list/release/delete own mailbox's
    # domains, DKIM, DNS
    DOMAIN_LIST = "domain-list"
    DOMAIN_GET = "domain-get"
    DOMAIN_CREATE = "domain-create"
    DOMAIN_UPDATE = "domain-update"
    DOMAIN_DELETE = "domain-delete"
    DKIM_SIGNATURE_GET = "dkim-signature-get"
    DKIM_SIGNATURE_CREATE = "dkim-signature-create"
    DNS_RECORD_GET = "dns-record-get"
    DNS_CHECK = "dns-check"
    # outbound queue and queued reports
    MESSAGE_QUEUE_LIST = "message-queue-list"
    MESSAGE_QUEUE_GET = "message-queue-get"
    MESSAGE_QUEUE_UPDATE = "message-queue-update"
    MESSAGE_QUEUE_DELETE = "message-queue-delete"
    QUEUE_CONTROL = "queue-control"
    OUTGOING_REPORT_LIST = "outgoing-report-list"
    OUTGOING_REPORT_GET = "outgoing-report-get"
    OUTGOING_REPORT_DELETE = "outgoing-report-delete"
    # fetch jobs: mail fetched from remote mailboxes (IMAP, POP3) and their monitoring
    MAILBOX_FETCH_LIST = "mailbox-fetch-list"
    MAILBOX_FETCH_GET = "mailbox-fetch-get"
    MAILBOX_FETCH_CREATE = "mailbox-fetch-create"
    MAILBOX_FETCH_UPDATE = "mailbox-fetch-update"
    MAILBOX_FETCH_DELETE = "mailbox-fetch-delete"
    # incoming reports
    INCOMING_REPORT_LIST = "incoming-report-list"
    INCOMING_REPORT_GET = "incoming-report-get"
    INCOMING_REPORT_DELETE = "incoming-report-delete"
    INCOMING_REPORT_CREATE = "incoming-report-create"  # upload (not in the management API)
    # telemetry and logs
    METRICS_LIST = "metrics-list"
    METRICS_LIVE = "metrics-live"
    TRACING_LIST = "tracing-list"
    TRACING_GET = "tracing-get"
    TRACING_LIVE = "tracing-live"
    LOGS_VIEW = "logs-view"
    TROUBLESHOOT = "troubleshoot"
    # spam filter
    SPAM_FILTER_TRAIN = "spam-filter-train"
    SPAM_FILTER_CLASSIFY = "spam-filter-classify"
    SPAM_FILTER_UPDATE = "spam-filter-update"
    # the quarantine of every mailbox and domain in reach (held mail: private contents,
    # so not implied by principal-get/-update)
    QUARANTINE_LIST = "quarantine-list"
    QUARANTINE_RELEASE = "quarantine-release"
    QUARANTINE_DELETE = "quarantine-delete"
    # store maintenance
    UNDELETE = "undelete"
    FTS_REINDEX = "fts-reindex"
    PURGE_ACCOUNT = "purge-account"
    PURGE_IN_MEMORY_STORE = "purge-in-memory-store"
    PURGE_DATA_STORE = "purge-data-store"
    PURGE_BLOB_STORE = "purge-blob-store"
    BLOB_FETCH = "blob-fetch"
    IMAP_UID_RESET = "imap-uid-reset"
    # settings and server
    SETTINGS_LIST = "settings-list"
    SETTINGS_UPDATE = "settings-update"
    SETTINGS_DELETE = "settings-delete"
    SETTINGS_RELOAD = "settings-reload"
    WEBADMIN_UPDATE = "webadmin-update"
    # console
    DASHBOARD = "dashboard"
    TASK_START = "task-start"


ALL_PERMISSIONS: frozenset[str] = frozenset(p.value for p in Perm)

# What only a superadmin's "admin" role may do: server-wide state shared by every tenant.
# (blob-fetch is not: apps.store.selectors.blob_visible limits it to the tenant's mail.)
SERVER_WIDE: frozenset[str] = frozenset(
    {
        Perm.TENANT_LIST,
        Perm.TENANT_GET,
        Perm.TENANT_CREATE,
        Perm.TENANT_UPDATE,
        Perm.TENANT_DELETE,
        Perm.QUEUE_CONTROL,
        Perm.PURGE_IN_MEMORY_STORE,
        Perm.PURGE_DATA_STORE,
        Perm.PURGE_BLOB_STORE,
        Perm.SETTINGS_LIST,
        Perm.SETTINGS_UPDATE,
        Perm.SETTINGS_DELETE,
        Perm.SETTINGS_RELOAD,
        Perm.WEBADMIN_UPDATE,
        Perm.SPAM_FILTER_UPDATE,
        Perm.LOGS_VIEW,
        Perm.TRACING_LIVE,
        Perm.METRICS_LIVE,
    }
)

USER_PERMISSIONS: frozenset[str] = frozenset(
    {
        Perm.DASHBOARD,
        Perm.MANAGE_PASSWORDS,
        Perm.MANAGE_ENCRYPTION,
        Perm.MANAGE_OWN_QUARANTINE,
        Perm.SPAM_FILTER_TRAIN,
        Perm.SPAM_FILTER_CLASSIFY,
        Perm.UNDELETE,
    }
)

BUILTIN_ROLES: dict[str, frozenset[str]] = {
    "admin": ALL_PERMISSIONS,
    "tenant-admin": ALL_PERMISSIONS - SERVER_WIDE,
    "user": USER_PERMISSIONS,
}

# How the console groups permissions (the API-key form, a role's page): one area per
# section of the vocabulary above. A test checks every permission is in exactly one.
PERMISSION_AREAS: dict[str, tuple[str, ...]] = {
    "Accounts and access": (
        Perm.PRINCIPAL_LIST,
        Perm.PRINCIPAL_GET,
        Perm.PRINCIPAL_CREATE,
        Perm.PRINCIPAL_UPDATE,
        Perm.PRINCIPAL_DELETE,
        Perm.TENANT_LIST,
        Perm.TENANT_GET,
        Perm.TENANT_CREATE,
        Perm.TENANT_UPDATE,
        Perm.TENANT_DELETE,
        Perm.API_KEY_LIST,
        Perm.API_KEY_CREATE,
        Perm.API_KEY_DELETE,
        Perm.AUDIT_LOG_VIEW,
    ),
    "Own account": (Perm.MANAGE_PASSWORDS, Perm.MANAGE_ENCRYPTION, Perm.MANAGE_OWN_QUARANTINE),
    "Domains, DKIM and DNS": (
        Perm.DOMAIN_LIST,
        Perm.DOMAIN_GET,
        Perm.DOMAIN_CREATE,
        Perm.DOMAIN_UPDATE,
        Perm.DOMAIN_DELETE,
        Perm.DKIM_SIGNATURE_GET,
        Perm.DKIM_SIGNATURE_CREATE,
        Perm.DNS_RECORD_GET,
        Perm.DNS_CHECK,
    ),
    "Outbound queue": (
        Perm.MESSAGE_QUEUE_LIST,
        Perm.MESSAGE_QUEUE_GET,
        Perm.MESSAGE_QUEUE_UPDATE,
        Perm.MESSAGE_QUEUE_DELETE,
        Perm.QUEUE_CONTROL,
        Perm.OUTGOING_REPORT_LIST,
        Perm.OUTGOING_REPORT_GET,
        Perm.OUTGOING_REPORT_DELETE,
    ),
    "Fetch jobs": (
        Perm.MAILBOX_FETCH_LIST,
        Perm.MAILBOX_FETCH_GET,
        Perm.MAILBOX_FETCH_CREATE,
        Perm.MAILBOX_FETCH_UPDATE,
        Perm.MAILBOX_FETCH_DELETE,
    ),
    "Incoming reports": (
        Perm.INCOMING_REPORT_LIST,
        Perm.INCOMING_REPORT_GET,
        Perm.INCOMING_REPORT_DELETE,
        Perm.INCOMING_REPORT_CREATE,
    ),
    "Telemetry and logs": (
        Perm.METRICS_LIST,
        Perm.METRICS_LIVE,
        Perm.TRACING_LIST,
        Perm.TRACING_GET,
        Perm.TRACING_LIVE,
        Perm.LOGS_VIEW,
        Perm.TROUBLESHOOT,
    ),
    "Spam filter": (
        Perm.SPAM_FILTER_TRAIN,
        Perm.SPAM_FILTER_CLASSIFY,
        Perm.SPAM_FILTER_UPDATE,
        Perm.QUARANTINE_LIST,
        Perm.QUARANTINE_RELEASE,
        Perm.QUARANTINE_DELETE,
    ),
    "Store maintenance": (
        Perm.UNDELETE,
        Perm.FTS_REINDEX,
        Perm.PURGE_ACCOUNT,
        Perm.PURGE_IN_MEMORY_STORE,
        Perm.PURGE_DATA_STORE,
        Perm.PURGE_BLOB_STORE,
        Perm.BLOB_FETCH,
        Perm.IMAP_UID_RESET,
    ),
    "Settings and server": (
        Perm.SETTINGS_LIST,
        Perm.SETTINGS_UPDATE,
        Perm.SETTINGS_DELETE,
        Perm.SETTINGS_RELOAD,
        Perm.WEBADMIN_UPDATE,
    ),
    "Console": (Perm.DASHBOARD, Perm.TASK_START),
}
OTHER_AREA = "Other"


def by_area(permissions: Iterable[str]) -> list[tuple[str, list[str]]]:
    """`permissions` grouped by area, in vocabulary order; areas with none are left out.

    A name outside the areas (a permission added without one) lands in "Other" rather
    than disappearing from the page.
    """
    wanted = set(permissions)
    groups = []
    for area, members in PERMISSION_AREAS.items():
        found = [str(p) for p in members if p in wanted]
        if found:
            groups.append((area, found))
    known = {p for members in PERMISSION_AREAS.values() for p in members}
    rest = sorted(wanted - known)
    if rest:
        groups.append((OTHER_AREA, rest))
    return groups
