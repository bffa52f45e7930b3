"""The base layout's navigation (one entry per app, by permission: a tuple is any one of
them) and tenant switcher."""

from __future__ import annotations

from django.urls import reverse

from mailadmin.core.tenants import TenantSwitcher

NAVIGATION = [
    ("Dashboard", "dashboard", "dashboard"),
    ("Accounts", "accounts:index", "principal-list"),
    ("Domains", "domains:index", "domain-list"),
    ("Queue", "queue:index", "message-queue-list"),
    ("Fetch", "queue:fetch-list", "mailbox-fetch-list"),
    ("Reports", "reports:index", "incoming-report-list"),
    ("Spam filter", "spamfilter:index", "spam-filter-classify"),
    ("Quarantine", "spamfilter:quarantine", ("quarantine-list", "manage-own-quarantine")),
    ("Telemetry", "telemetry:index", "metrics-list"),
    ("Store", "store:index", "undelete"),
    ("Settings", "config:index", "settings-list"),
]


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"navigation": []}
    path = request.path
    items = []
    for label, url_name, permission in NAVIGATION:
        needed = permission if isinstance(permission, tuple) else (permission,)
        if not any(user.has_permission(p) for p in needed):
            continue
        url = reverse(url_name)
        active = path == url if url == "/" else path.startswith(url)
        items.append({"label": label, "url": url, "active": active})
    # One entry is current: the longest match (Quarantine, not Spam filter, at its URL).
    current = max((i for i in items if i["active"]), key=lambda i: len(i["url"]), default=None)
    for item in items:
        item["active"] = item is current
    return {"navigation": items}


def tenant_switcher(request) -> dict:
    """The tenant switcher, for superadmins only; tenant admins get none."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.reaches_all_tenants:
        return {}
    return {"tenant_switcher": TenantSwitcher(request)}
