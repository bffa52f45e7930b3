"""The cross-app isolation matrix: tenant B's admin, over the console and the API, names
tenant A's objects (by id, uuid, name, address, blob hash) in every route of the apps
beyond accounts (accounts has its own matrix in tests/unit/accounts/test_isolation.py),
and gets 404, changes nothing, starts nothing, and reads none of A's data.

The routes are walked from the URL resolver: a new route with an object in its path fails
`test_it_covers_every_object_route` until it joins the matrix."""

from __future__ import annotations

import re

import pytest
from django.urls import get_resolver
from django.utils import timezone

from tests.support.tenant_world import MAILBOX, SECRET, SOURCE_IP, World, message, object_ids, state
from tests.unit.core.test_permission_walk import walk

pytestmark = pytest.mark.django_db

BODY = {"anything": "pwned"}
# (method, path, body): console pages and API routes naming one of A's objects. `{x}` is
# A's object; `{b_x}` is B's own (a foreign object inside B's own path).
CONSOLE = [
    ("GET", "/tasks/{run}/", None),
    ("POST", "/account/api-keys/{api_key}/revoke/", None),
    ("GET", "/domains/{domain}/", None),
    ("POST", "/domains/{domain}/dns-check/", None),
    ("POST", "/domains/{domain}/dkim/", {"algorithm": "Ed25519"}),
    ("GET", "/domains/{domain}/records/", None),
    ("POST", "/domains/{domain}/dkim/{key}/rotate/", None),
    ("POST", "/domains/{domain}/dkim/{key}/retire/", None),
    ("POST", "/domains/{b_domain}/dkim/{key}/rotate/", None),
    ("POST", "/domains/{b_domain}/dkim/{key}/retire/", None),
    ("GET", "/domains/{domain}/mailboxes/", None),
    ("GET", "/domains/{domain}/mailboxes/new/", None),
    ("POST", "/domains/{domain}/mailboxes/new/", {"name": "pwned", **MAILBOX}),
    ("GET", "/domains/{domain}/mailboxes.csv", None),
    ("POST", "/domains/{domain}/mailboxes/import/", {"file": ""}),
    ("GET", "/domains/{domain}/mailboxes/{mailbox}/", None),
    ("POST", "/domains/{domain}/mailboxes/{mailbox}/", {"display_name": "pwned"}),
    ("GET", "/domains/{b_domain}/mailboxes/{mailbox}/", None),
    ("POST", "/domains/{b_domain}/mailboxes/{mailbox}/", {"display_name": "pwned"}),
    ("POST", "/domains/{domain}/mailboxes/{mailbox}/delete/", None),
    ("POST", "/domains/{b_domain}/mailboxes/{mailbox}/delete/", None),
    ("POST", "/domains/{domain}/aliases/", {"alias": "pwned.example"}),
    ("POST", "/domains/{domain}/aliases/{alias}/delete/", None),
    ("POST", "/domains/{b_domain}/aliases/{alias}/delete/", None),
    ("POST", "/domains/{domain}/catch-all/", {"target": ""}),
    ("GET", "/queue/{queued}/", None),
    ("GET", "/queue/{queued}/raw/", None),
    ("POST", "/queue/{queued}/reschedule/", None),
    ("POST", "/queue/{queued}/cancel/", None),
    ("GET", "/queue/fetch/{job}/", None),
    ("POST", "/queue/fetch/{job}/", {"host": "evil.test"}),
    ("POST", "/queue/fetch/{job}/validate/", None),
    ("POST", "/queue/fetch/{job}/run/", None),
    ("POST", "/queue/fetch/{job}/delete/", None),
    ("POST", "/queue/fetch/monitoring/{entry}/delete/", None),
    ("GET", "/reports/dmarc/{dmarc}/", None),
    ("GET", "/reports/tls/{tls}/", None),
    ("GET", "/reports/arf/{arf}/", None),
    ("GET", "/reports/failed/{failure}/raw/", None),
    ("POST", "/reports/failed/{failure}/delete/", None),
    ("POST", "/reports/dmarc/{dmarc}/delete/", None),
    ("POST", "/reports/tls/{tls}/delete/", None),
    ("POST", "/reports/arf/{arf}/delete/", None),
    ("GET", "/reports/dashboard/sources/192.0.2.1/", None),
    ("GET", "/reports/dashboard/?domain={domain}", None),
    ("GET", "/reports/dmarc/?domain={domain}", None),
    ("GET", "/spam-filter/bayes/purge/{jane}/", None),
    ("POST", "/spam-filter/bayes/purge/{jane}/", None),
    ("GET", "/spam-filter/mailboxes/{domain}/{mailbox}/", None),
    ("GET", "/spam-filter/mailboxes/{b_domain}/{mailbox}/", None),
    ("POST", "/spam-filter/mailboxes/{domain}/{mailbox}/blacklist/add/", {"value": "y@x.test"}),
    ("POST", "/spam-filter/mailboxes/{b_domain}/{mailbox}/blacklist/add/", {"value": "y@x.test"}),
    (
        "POST",
        "/spam-filter/mailboxes/{domain}/{mailbox}/blacklist/remove/",
        {"value": "x@spam.test"},
    ),  # noqa: E501
    ("POST", "/spam-filter/mailboxes/{domain}/{mailbox}/settings/", {"filter_level": "off"}),
    ("GET", "/spam-filter/quarantine/{held}/", None),
    ("POST", "/spam-filter/quarantine/{held}/release/", None),
    ("POST", "/spam-filter/quarantine/{held}/delete/", None),
    ("GET", "/store/mailboxes/{jane}/", None),
    ("POST", "/store/mailboxes/{jane}/purge/", None),
    ("POST", "/store/mailboxes/{jane}/uids/", None),
    ("GET", "/store/mailboxes/{jane}/deleted/", None),
    ("POST", "/store/mailboxes/{jane}/deleted/", {"ids": ["1"]}),
    ("GET", "/store/messages/{stored}/", None),
    ("GET", "/store/messages/{stored}/raw", None),
]
API = [
    ("GET", "/api/task/{run}", None),
    ("DELETE", "/api/account/api-keys/{api_key}", None),
    ("GET", "/api/dkim?domain={domain_name}", None),
    ("POST", "/api/dkim", {"domain": "{domain_name}", "algorithm": "Ed25519"}),
    ("DELETE", "/api/dkim/{key}", None),
    ("GET", "/api/dns/records/{domain_name}", None),
    ("GET", "/api/dns/check/{domain_name}", None),
    ("POST", "/api/dns/check/{domain_name}", None),
    ("GET", "/api/domains/{domain}", None),
    ("DELETE", "/api/domains/{domain}", None),
    ("GET", "/api/customers/{tenant}/domains/{domain_name}/mailboxes", None),
    ("GET", "/api/customers/{b_tenant}/domains/{domain_name}/mailboxes", None),
    ("GET", "/api/customers/{tenant}/domains/{domain_name}/mailboxes/jane", None),
    ("POST", "/api/customers/{tenant}/domains/{domain_name}/mailboxes/pwned", BODY),
    ("PUT", "/api/customers/{tenant}/domains/{domain_name}/mailboxes/jane", BODY),
    ("DELETE", "/api/customers/{tenant}/domains/{domain_name}/mailboxes/jane", None),
    (
        "POST",
        "/api/customers/{tenant}/domains/{domain_name}/mailboxes/jane/emailaddresses/x@{domain_name}",
        None,
    ),  # noqa: E501
    (
        "DELETE",
        "/api/customers/{tenant}/domains/{domain_name}/mailboxes/jane/emailaddresses/jane@{domain_name}",
        None,
    ),  # noqa: E501
    ("GET", "/api/customers/{tenant}/domains/{domain_name}/mailboxes/jane/spam/settings", None),
    (
        "PUT",
        "/api/customers/{tenant}/domains/{domain_name}/mailboxes/jane/spam/settings",
        {"filterlevel": "off"},
    ),  # noqa: E501
    ("GET", "/api/customers/{tenant}/domains/{domain_name}/mailboxes/jane/spam/blacklist", None),
    (
        "POST",
        "/api/customers/{tenant}/domains/{domain_name}/mailboxes/jane/spam/blacklist/y@x.test",
        None,
    ),  # noqa: E501
    (
        "DELETE",
        "/api/customers/{tenant}/domains/{domain_name}/mailboxes/jane/spam/blacklist/x@spam.test",
        None,
    ),  # noqa: E501
    ("GET", "/api/queue/messages/{queued}", None),
    ("PATCH", "/api/queue/messages/{queued}", None),
    ("DELETE", "/api/queue/messages/{queued}", None),
    ("GET", "/api/fetch/mailboxes/{job}", None),
    ("PUT", "/api/fetch/mailboxes/{job}", {"host": "evil.test"}),
    ("PATCH", "/api/fetch/mailboxes/{job}", {"host": "evil.test"}),
    ("DELETE", "/api/fetch/mailboxes/{job}", None),
    ("GET", "/api/fetch/mailboxes/{job}/validate", None),
    ("POST", "/api/fetch/mailboxes/{job}/validate", None),
    ("POST", "/api/fetch/mailboxes/{job}/run", None),
    ("GET", "/api/fetch/monitoring/{entry}", None),
    ("DELETE", "/api/fetch/monitoring/{entry}", None),
    ("GET", "/api/reports/dmarc/{dmarc}", None),
    ("DELETE", "/api/reports/dmarc/{dmarc}", None),
    ("GET", "/api/reports/tls/{tls}", None),
    ("DELETE", "/api/reports/tls/{tls}", None),
    ("GET", "/api/reports/arf/{arf}", None),
    ("DELETE", "/api/reports/arf/{arf}", None),
    ("GET", "/api/reports/failed/{failure}", None),
    ("DELETE", "/api/reports/failed/{failure}", None),
    ("GET", "/api/reports/dmarc?domain={domain_name}", None),
    ("GET", "/api/reports/dmarc/summary?domain={domain_name}", None),
    ("GET", "/api/store/blobs/{blob}", None),
    ("GET", "/api/store/purge/account/{jane}", None),
    ("GET", "/api/store/undelete/{jane}", None),
    ("POST", "/api/store/undelete/{jane}", [{"hash": "{blob}"}]),
    ("DELETE", "/api/store/uids/{jane}", None),
    ("POST", "/api/spam-filter/train/spam/{jane}", None),
    ("POST", "/api/spam-filter/train/ham/{jane_name}", None),
    ("GET", "/api/store/purge/in-memory/default/bayes-account/{jane}", None),
    ("GET", "/api/spam-filter/quarantine/{held}", None),
    ("DELETE", "/api/spam-filter/quarantine/{held}", None),
    ("POST", "/api/spam-filter/quarantine/{held}/release", None),
]


def _fill(value, names: dict):
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def _all_ids(world_a: World, world_b: World) -> dict:
    return object_ids(world_a) | {f"b_{k}": v for k, v in object_ids(world_b).items()}


def _secrets(w: World, *, asked: str) -> list[str]:
    """What no answer to tenant B may contain (a name B itself sent may be echoed)."""
    found = [
        SECRET["a"],
        "jane@a.example",
        w.domain.name,
        w.alias.alias,
        w.stored.blob_hash,
        w.dmarc.reporter,
        SOURCE_IP["a"],
        str(w.job.uuid),
        w.key.name,
        w.admin.name,
    ]
    return [s for s in found if s not in asked]


@pytest.mark.parametrize(("method", "template", "body"), CONSOLE)
def test_console_answers_404_and_changes_nothing(
    method, template, body, world_a, world_b, client, admin_b
):
    client.force_login(admin_b)
    url = _fill(template, _all_ids(world_a, world_b))
    before = state()
    response = getattr(client, method.lower())(url, _fill(body, object_ids(world_a)) or {})
    assert response.status_code == 404, (method, url, response.status_code)
    text = response.content.decode(errors="replace")
    for secret in _secrets(world_a, asked=url):
        assert secret not in text, (method, url, secret)
    assert state() == before, (method, url)


@pytest.mark.parametrize(("method", "template", "body"), API)
def test_api_answers_404_and_changes_nothing(method, template, body, world_a, world_b, api_b):
    names = _all_ids(world_a, world_b)
    url = _fill(template, names)
    before = state()
    if "/train/" in url:
        response = api_b.generic(
            method, url, data=message("x@y.test"), content_type="message/rfc822"
        )
    elif body is None:
        response = api_b.generic(method, url)
    else:
        response = getattr(api_b, method.lower())(url, _fill(body, names), format="json")
    assert response.status_code == 404, (method, url, response.status_code, response.content)
    text = response.content.decode(errors="replace")
    for secret in _secrets(world_a, asked=url):
        assert secret not in text, (method, url, secret)
    assert state() == before, (method, url)


# --- every route with an object in its path is in the matrix ------------------------------

# Path converters that name an object (not a list's page, a group or a list name).
OBJECT = re.compile(r"<(?:id|int|uuid|str|path):(?!group|list_name|op\b|name\b)[a-z_]+>")
# Routes whose path parameter names no tenant's object, each with why.
NOT_OBJECTS = {
    "api/troubleshoot/delivery/<str:recipient>": "superadmins only (token), any address",
    "api/telemetry/trace/<str:trace_id>": "superadmins only",
    "telemetry/traces/<str:trace_id>/": "superadmins only",
    "spam-filter/thresholds/<str:name>/": "server-wide settings (spam-filter-update)",
    "spam-filter/rules/<str:tag>/": "server-wide settings (spam-filter-update)",
    "spam-filter/rules/<str:tag>/reset/": "server-wide settings (spam-filter-update)",
    "api/queue/reports/<int:report_id>": "server-wide: test_outgoing_reports_are_superadmins",
    "reports/outgoing/<int:pk>/cancel/": "server-wide: test_outgoing_reports_are_superadmins",
    "account/app-passwords/<id:pk>/revoke/": "the actor's own app passwords only",
    "api/customers/<str:customer>/domains/<str:domain>/mailboxes/<str:name>/spam/<str:list_name>/<path:entry>": "the blocklist entry routes above",  # noqa: E501
}


def test_it_covers_every_object_route(world_a, world_b):
    exercised = set()
    resolver = get_resolver()
    names = _all_ids(world_a, world_b)
    for _, template, _ in CONSOLE + API:
        match = resolver.resolve(_fill(template, names).split("?")[0])
        exercised.add(match.route)
    routes = {
        r.route
        for r in walk(resolver.url_patterns)
        if OBJECT.search(r.route) and "admin" not in r.namespaces
    }
    # accounts/ and api/principal are walked by tests/unit/accounts/test_isolation.py.
    routes = {r for r in routes if not r.startswith(("accounts/", "api/principal"))}
    missing = routes - exercised - set(NOT_OBJECTS)
    assert not missing, sorted(missing)


# --- the matrix is not vacuous: B reaches its own objects through the same routes -------

OWN_GETS = [
    (kind, template)
    for kind, routes in (("console", CONSOLE), ("api", API))
    for method, template, _ in routes
    if method == "GET" and "{b_" not in template and "{b_tenant}" not in template
]


@pytest.mark.parametrize(("kind", "template"), OWN_GETS)
def test_the_same_reads_answer_tenant_b_about_its_own(
    kind, template, world_a, world_b, client, admin_b, api_b
):
    client.force_login(admin_b)
    url = template.format(**object_ids(world_b)).replace("192.0.2.1", SOURCE_IP["b"])
    response = (client if kind == "console" else api_b).get(url)
    assert response.status_code == 200, (url, response.status_code)


# --- lists, filters, searches, exports and totals -------------------------------------------

CONSOLE_LISTS = [
    "/",
    "/domains/",
    "/queue/",
    "/queue/fetch/",
    "/queue/fetch/monitoring/",
    "/reports/dmarc/",
    "/reports/tls/",
    "/reports/arf/",
    "/reports/failed/",
    "/reports/outgoing/",
    "/reports/dashboard/",
    "/spam-filter/bayes/",
    "/spam-filter/quarantine/",
    "/store/",
    "/account/api-keys/",
    "/accounts/audit/",
]
API_LISTS = [
    "/api/dkim",
    "/api/domains",
    "/api/mailserver/server",
    "/api/queue/messages",
    "/api/fetch/mailboxes",
    "/api/fetch/monitoring/failed",
    "/api/fetch/monitoring/successful",
    "/api/fetch/monitoring/info",
    "/api/reports/dmarc",
    "/api/reports/tls",
    "/api/reports/arf",
    "/api/reports/failed",
    "/api/reports/dmarc/summary",
    "/api/queue/reports",
    "/api/spam-filter/quarantine",
    "/api/account/api-keys",
    "/api/audit",
]
# Query strings naming tenant A's things the way each list filters.
FILTERS = [
    "",
    "?domain=a.example",
    "?domain={domain}",
    "?q=jane",
    "?q=a.example",
    "?filter=jane",
    "?text=jane",
    "?recipient=jane@a.example",
    "?sender=jane@a.example",
    "?mailbox=jane@a.example",
    "?account={jane}",
    "?account=jane@a.example",
    "?principal_id={jane}",
    "?tenant={tenant}",
    "?tenant=tenant-a",
    "?reporter=reporter-a.test",
    "?search=a.example",
    "?status=failed",
    "?kind=mailbox",
]


def _nowhere(text: str, world: World) -> str:
    """`text` naming things that exist in no tenant instead of tenant A's."""
    for mine, missing in (
        (str(world.domain.pk), "999999"),
        (str(world.jane.pk), "999998"),
        (str(world.tenant.pk), "999997"),
        ("tenant-a", "tenant-z"),
        ("a.example", "z.example"),
    ):
        text = text.replace(f"={mine}", f"={missing}").replace(mine, missing)
    return text


def _answer(response) -> tuple[int, str]:
    """Status and problem detail (with the asked names masked) of an answer."""
    detail = ""
    if response.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        detail = body.get("detail", "") if isinstance(body, dict) else ""
    return response.status_code, detail


@pytest.mark.parametrize("query", FILTERS)
def test_no_list_shows_or_counts_tenant_a(query, world_a, world_b, client, admin_b, api_b):
    client.force_login(admin_b)
    asked = query.format(**object_ids(world_a))
    for kind, routes in (("console", CONSOLE_LISTS), ("api", API_LISTS)):
        c = client if kind == "console" else api_b
        for route in routes:
            url = route + asked
            response = c.get(url)
            assert response.status_code in (200, 400, 404), (url, response.status_code)
            text = response.content.decode(errors="replace")
            for secret in _secrets(world_a, asked=asked):
                assert secret not in text, (url, secret)
            if kind == "api" and response.status_code == 200 and route != "/api/audit":
                data = response.json()["data"]
                if isinstance(data, dict) and "total" in data:
                    assert data["total"] <= 1, (url, data["total"])  # B's own one at most
            # A's name answers as a name that exists nowhere: existence does not leak.
            missing = c.get(_nowhere(url, world_a))
            status, detail = _answer(response)
            assert (status, _nowhere(detail, world_a)) == _answer(missing), url


def test_the_mailbox_export_of_a_foreign_domain_is_404_and_empty(world_a, world_b, client, admin_b):
    client.force_login(admin_b)
    response = client.get(f"/domains/{world_a.domain.pk}/mailboxes.csv")
    assert response.status_code == 404
    own = client.get(f"/domains/{world_b.domain.pk}/mailboxes.csv")
    text = b"".join(own.streaming_content).decode()
    assert "jane" in text and "a.example" not in text


# --- bulk actions naming tenant A's ids ------------------------------------------------------


def test_bulk_actions_ignore_foreignids(world_a, world_b, client, admin_b, api_b):
    client.force_login(admin_b)
    before = state()
    for action in ("release", "delete"):
        for confirm in ("", "yes"):
            response = client.post(
                "/spam-filter/quarantine/bulk/",
                {"action": action, "ids": [world_a.held.pk], "confirm": confirm},
            )
            assert response.status_code == 302
        response = api_b.post(
            f"/api/spam-filter/quarantine/{action}", {"ids": [world_a.held.pk]}, format="json"
        )
        assert response.json()["data"] == {"done": 0, "failed": []}
    for action in ("reschedule", "cancel"):
        for confirm in ("", "yes"):
            response = client.post(
                "/queue/bulk/", {"action": action, "ids": [world_a.queued.pk], "confirm": confirm}
            )
            assert response.status_code == 302
    for method in ("patch", "delete"):
        for query in ("", "?domain=remote.test", f"?text={SECRET['a']}"):
            getattr(api_b, method)(f"/api/queue/messages{query}")
    after = state()
    mine = {
        "queue": {world_a.queued.pk},
        "queue_domains": _queue_domainids(world_a.queued),
        "held": {world_a.held.pk},
    }
    for name, rows in before.items():
        if name in mine:  # tenant B's own rows there may change; A's stay as they were
            assert [r for r in after[name] if r[0] in mine[name]] == [
                r for r in rows if r[0] in mine[name]
            ], name
        else:
            assert after[name] == rows, name


def _queue_domainids(message) -> set[int]:
    from apps.queue.models import QueueDomain

    return set(QueueDomain.objects.filter(message=message).values_list("pk", flat=True))


def test_outgoing_reports_are_superadmins(world_a, client, admin_b, api_b):
    """Our own outgoing reports are server-wide: a tenant admin holding the permissions
    still finds none of them."""
    from apps.reports.models import OutgoingReport

    now = timezone.now()
    report = OutgoingReport.objects.create(
        kind="dmarc",
        policy_domain="a.example",
        range_begin=now,
        range_end=now,
        report_id="r1",
        filename="r1.xml.gz",
        payload=b"",
    )
    client.force_login(admin_b)
    before = state()
    answers = [
        client.post(f"/reports/outgoing/{report.pk}/cancel/").status_code,
        api_b.get(f"/api/queue/reports/{report.pk}").status_code,
        api_b.delete(f"/api/queue/reports/{report.pk}").status_code,
    ]
    assert answers == [404, 404, 404]
    assert api_b.get("/api/queue/reports").json()["data"]["total"] == 0
    assert state() == before
    assert OutgoingReport.objects.get().status == OutgoingReport.Status.QUEUED
