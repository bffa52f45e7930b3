"""The management API spec's own examples work: each request example of
specs/management-api.txt, for every endpoint we serve, is sent as written and its answer
has the shape of the spec's 200 example.

The examples are read from the spec file itself, so a new endpoint of ours that the spec
describes is picked up here (and fails until it is replayed).
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.urls import Resolver404, resolve

from apps.accounts.models import AppPassword, EncryptionSettings, Principal
from tests.conftest import ROOT, TEST_PASSWORD, skip_or_fail

pytestmark = pytest.mark.django_db

SPECS_DIR = Path(os.environ.get("MAILADMIN_SPECS_DIR") or ROOT.parent / "shared" / "specs")
ENDPOINT = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/\S*)$", re.MULTILINE)
# The spec's pages hide e-mail addresses ("[email protected]"); these stand in for them.
JANE, JANE_DOE = "jane@example.org", "jane.doe@example.org"

# Where we answer differently from the spec's example, on purpose.
DEVIATIONS = {
    # Secrets are write-only: no hash ever leaves the server.
    ("GET /principal/{principal_id}", "data.secrets"),
    # Always a list of addresses, even of one (the spec shows a single one bare).
    ("GET /principal/{principal_id}", "data.emails"),
    # The example is a fallback administrator's refusal; a real account gets {"data": null}.
    ("POST /account/auth", "error"),
    ("POST /account/auth", "details"),
    ("POST /account/auth", "reason"),
    # Tags that need data we do not have (an IP-to-ASN/country database) or a DNS block
    # list, which is off by default (MAILADMIN_SPAM_DNSBL).
    ("POST /spam-filter/classify", "data.tags.SOURCE_ASN_15169"),
    ("POST /spam-filter/classify", "data.tags.SOURCE_COUNTRY_US"),
    ("POST /spam-filter/classify", "data.tags.RBL_SENDERSCORE_REPUT_BLOCKED"),
    # The example is null; we answer what the reload changed (the schema allows an object).
    ("GET /update/spam-filter", "data"),
    # The examples are a server without a metrics or tracing store; ours has one.
    ("GET /telemetry/metrics", "error"),
    ("GET /telemetry/metrics", "details"),
    ("GET /telemetry/metrics", "reason"),
    ("GET /telemetry/traces", "error"),
    ("GET /telemetry/traces", "details"),
    # Only the connection's first event carries the listener and both ends (as in the
    # spec's example); the schema lists those fields for every event.
    ("GET /telemetry/trace/{trace_id}", "data.data.listenerId"),
    ("GET /telemetry/trace/{trace_id}", "data.data.localPort"),
    ("GET /telemetry/trace/{trace_id}", "data.data.remoteIp"),
    ("GET /telemetry/trace/{trace_id}", "data.data.remotePort"),
}


@dataclass(frozen=True)
class Example:
    method: str
    path: str
    body: Any  # the "Body parameter" example, None without one
    response: Any  # the "200 Response" example, None without one

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def spec_examples() -> dict[str, Example]:
    spec = SPECS_DIR / "management-api.txt"
    if not spec.is_file():
        skip_or_fail(f"{spec} missing (set MAILADMIN_SPECS_DIR)")
    text = spec.read_text()
    found = list(ENDPOINT.finditer(text))
    examples = {}
    for match, following in zip(found, [*found[1:], None], strict=True):
        section = text[match.end() : following.start() if following else len(text)]
        example = Example(
            match[1],
            match[2],
            _json_after(section, "Body parameter\n"),
            _json_after(section, "200 Response\n"),
        )
        examples[example.key] = example
    return examples


def _json_after(section: str, marker: str) -> Any:
    start = section.find(marker)
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(section, start + len(marker))
    except ValueError:
        return None
    return json.loads(json.dumps(value).replace("[email protected]", JANE))


def served(example: Example) -> bool:
    """Whether /api/<path> is one of our routes and answers the method."""
    url = "/api" + re.sub(r"\{[^}]+\}", "example.org", example.path)
    try:
        match = resolve(url)
    except Resolver404:
        return False
    view_class = getattr(match.func, "view_class", None)
    return view_class is not None and hasattr(view_class, example.method.lower())


def shape_mismatches(ours: Any, spec: Any, where: str, key: str) -> list[str]:
    """Where `ours` lacks a key of `spec` or holds another JSON type (lists: every item)."""
    if (key, where) in DEVIATIONS:
        return []
    if isinstance(spec, dict):
        if not isinstance(ours, dict):
            return [f"{where}: expected an object, got {ours!r}"]
        return [
            problem
            for name, value in spec.items()
            for problem in _field(ours, name, value, where, key)
        ]
    if isinstance(spec, list):
        if not isinstance(ours, list):
            return [f"{where}: expected a list, got {ours!r}"]
        if not spec:
            return []
        return [
            p for i, item in enumerate(ours) for p in shape_mismatches(item, spec[0], where, key)
        ]
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", type(None): "null"}
    if kinds[type(ours)] != kinds[type(spec)]:
        return [f"{where}: expected a {kinds[type(spec)]}, got {ours!r}"]
    return []


def _field(ours: dict, name: str, value: Any, where: str, key: str) -> list[str]:
    path = f"{where}.{name}" if where else name
    if (key, path) in DEVIATIONS:
        return []
    if name not in ours:
        return [f"{path}: missing"]
    return shape_mismatches(ours[name], value, path, key)


def basic(principal_name: str) -> str:
    token = base64.b64encode(f"{principal_name}:{TEST_PASSWORD}".encode()).decode()
    return f"Basic {token}"


@pytest.fixture
def spec() -> dict[str, Example]:
    return spec_examples()


def replay(client, spec: dict[str, Example], key: str, path: str | None = None, **extra):
    """Send the spec's example request for `key` (on `path`) and check the answer's shape."""
    example = spec[key]
    url = "/api" + (path or example.path)
    body = example.body
    if body is None:
        response = getattr(client, example.method.lower())(url, **extra)
    else:
        response = getattr(client, example.method.lower())(url, body, format="json", **extra)
    assert response.status_code == 200, (key, response.content[:500])
    data = response.json()
    assert shape_mismatches(data, example.response, "", key) == [], key
    return data


REPLAYED = {
    "GET /telemetry/metrics",
    "GET /telemetry/live/metrics-token",
    "GET /telemetry/metrics/live",
    "GET /telemetry/traces",
    "GET /telemetry/trace/{trace_id}",
    "GET /telemetry/live/tracing-token",
    "GET /telemetry/traces/live",
    "POST /oauth",
    "POST /principal",
    "GET /principal",
    "POST /dkim",
    "GET /dns/records/{domain}",
    "GET /principal/{principal_id}",
    "PATCH /principal/{principal_id}",
    "DELETE /principal/{principal_id}",
    "GET /account/crypto",
    "POST /account/crypto",
    "GET /account/auth",
    "POST /account/auth",
    "GET /reports/dmarc",
    "GET /reports/tls",
    "GET /reports/arf",
    "GET /queue/reports",
    "GET /store/blobs/{blob_id}",
    "GET /queue/messages",
    "PATCH /queue/messages",
    "DELETE /queue/messages",
    "GET /queue/messages/{message_id}",
    "PATCH /queue/messages/{message_id}",
    "DELETE /queue/messages/{message_id}",
    "GET /queue/status",
    "PATCH /queue/status/stop",
    "PATCH /queue/status/start",
    "POST /spam-filter/classify",
    "POST /spam-filter/train/spam",
    "POST /spam-filter/train/ham",
    "POST /spam-filter/train/spam/{account_id}",
    "POST /spam-filter/train/ham/{account_id}",
    "GET /update/spam-filter",
    "POST /troubleshoot/dmarc",
    "GET /store/purge/in-memory/default/bayes-global",
    "GET /store/purge/in-memory/default/bayes-account/{account_id}",
    "GET /store/reindex",
    "GET /store/purge/account/{account_id}",
    "GET /store/purge/account",
    "GET /store/purge/blob",
    "GET /store/purge/data",
    "GET /store/purge/in-memory",
    "GET /store/undelete/{account_id}",
    "POST /store/undelete/{account_id}",
    "DELETE /store/uids/{account_id}",
    "GET /settings/keys",
    "GET /settings/group",
    "GET /settings/list",
    "POST /settings",
    "GET /reload/",
    "GET /logs",
    "GET /troubleshoot/token",
    "GET /troubleshoot/delivery/{recipient}",
    "GET /update/webadmin",
}


def test_it_replays_every_example_of_an_endpoint_we_serve(spec):
    assert {key for key, example in spec.items() if served(example)} == REPLAYED


def test_it_creates_the_specs_domain_for_the_superadmin(api_root, spec):
    data = replay(api_root, spec, "POST /principal")
    domain = Principal.objects.get(pk=data["data"])
    assert (domain.type, domain.name, domain.tenant) == ("domain", "example.org", None)
    assert domain.description == "Example domain"


def test_it_creates_the_specs_domain_in_a_tenant_admins_own_tenant(api_a, spec, tenant_a):
    data = replay(api_a, spec, "POST /principal")
    assert Principal.objects.get(pk=data["data"]).tenant == tenant_a


def test_it_answers_the_oauth_example(api_root, spec):
    data = replay(api_root, spec, "POST /oauth")
    assert data["data"]["code"]
    assert "dkim-signature-create" in data["data"]["permissions"]


def test_it_answers_the_dkim_and_dns_examples(api_root, spec, settings):
    settings.MAILADMIN_HOSTNAME = "mx.example.org"
    replay(api_root, spec, "POST /principal")
    assert replay(api_root, spec, "POST /dkim") == {"data": None}
    records = replay(api_root, spec, "GET /dns/records/{domain}", "/dns/records/example.org")
    kinds = {(r["type"], r["name"]) for r in records["data"]}
    assert ("MX", "example.org.") in kinds
    assert any(t == "TXT" and n.endswith("._domainkey.example.org.") for t, n in kinds)


def test_it_answers_the_principal_examples(api_root, spec):
    replay(api_root, spec, "POST /principal")
    listing = api_root.post("/api/principal", {"type": "list", "name": "all"}, format="json")
    assert listing.status_code == 200, listing.content
    jane = {
        "type": "individual",
        "name": "jane",
        "description": "Jane Doe",
        "emails": [JANE],
        "roles": ["user"],
        "lists": ["all"],
        "secrets": [TEST_PASSWORD],
    }
    assert api_root.post("/api/principal", jane, format="json").status_code == 200

    listed = replay(api_root, spec, "GET /principal")
    assert "jane" in [item["name"] for item in listed["data"]["items"]]

    fetched = replay(api_root, spec, "GET /principal/{principal_id}", "/principal/jane")
    assert fetched["data"]["emails"] == [JANE]
    assert "secrets" not in fetched["data"]

    # The spec's update renames jane and swaps her address (its addresses are hidden:
    # the one it adds stands here as jane.doe@, the one it removes as jane@).
    spec["PATCH /principal/{principal_id}"].body[2]["value"] = JANE_DOE
    assert replay(api_root, spec, "PATCH /principal/{principal_id}", "/principal/jane") == {
        "data": None
    }
    renamed = api_root.get("/api/principal/jane.doe").json()["data"]
    assert (renamed["description"], renamed["emails"]) == ("Jane Mary Doe", [JANE_DOE])

    deleted = replay(api_root, spec, "DELETE /principal/{principal_id}", "/principal/jane.doe")
    assert deleted == {"data": None}
    assert not Principal.objects.filter(name="jane.doe").exists()


def test_it_answers_the_account_examples(anon_api, spec, superadmin):
    auth = {"HTTP_AUTHORIZATION": basic(superadmin.name)}
    assert replay(anon_api, spec, "GET /account/crypto", **auth) == {"data": {"type": "disabled"}}
    assert replay(anon_api, spec, "POST /account/crypto", **auth) == {"data": 1}
    assert EncryptionSettings.objects.get(principal=superadmin).type == "pgp"

    assert replay(anon_api, spec, "GET /account/auth", **auth) == {
        "data": {"otpEnabled": False, "appPasswords": []}
    }
    assert replay(anon_api, spec, "POST /account/auth", **auth) == {"data": None}
    name = spec["POST /account/auth"].body[0]["name"]
    assert AppPassword.objects.get(principal=superadmin).name == name


def test_it_answers_the_incoming_report_examples(api_root, spec):
    for kind in ("dmarc", "tls", "arf"):
        data = replay(api_root, spec, f"GET /reports/{kind}")
        assert data == {"data": {"items": [], "total": 0}}


def test_it_answers_the_queued_reports_example(api_root, spec):
    data = replay(api_root, spec, "GET /queue/reports")["data"]
    assert (data["items"], data["total"]) == ([], 0)  # plus the cursors of a seekable list


def test_it_answers_the_blob_example_with_raw_bytes(api_root, spec, make_principal):
    """The spec shows no body for Fetch Blob by ID: the answer is the blob itself."""
    from apps.store.services import deliver

    example = spec["GET /store/blobs/{blob_id}"]
    data = b"From: a@example.org\r\nSubject: spec\r\n\r\nbody\r\n"
    stored = deliver(make_principal(name="jane", password=""), data)
    # The spec's blob ids are unpadded base64url SHA-256s (see its queue example).
    b64 = base64.urlsafe_b64encode(bytes.fromhex(stored.blob_hash)).decode().rstrip("=")
    for blob_id in (stored.blob_hash, b64):
        url = "/api" + example.path.replace("{blob_id}", blob_id)
        response = api_root.get(url)
        assert response.status_code == 200, response.content[:300]
        assert response.content == data
        assert api_root.get(url + "?limit=4").content == data[:4]


def test_it_answers_the_queue_examples(api_root, spec, settings, tmp_path, monkeypatch):
    from apps.queue import delivery
    from apps.queue.services import enqueue

    settings.MAILADMIN_BLOB_DIR = str(tmp_path)
    monkeypatch.setattr(delivery, "wake", lambda domain_id: None)
    empty = replay(api_root, spec, "GET /queue/messages")["data"]
    assert (empty["items"], empty["total"], empty["status"]) == ([], 0, True)
    queued = enqueue(return_path=JANE, recipients=[JANE_DOE], data=b"Subject: hi\r\n\r\nhello\r\n")
    listed = replay(api_root, spec, "GET /queue/messages")
    assert [item["id"] for item in listed["data"]["items"]] == [queued.pk]
    one = f"/queue/messages/{queued.pk}"
    details = replay(api_root, spec, "GET /queue/messages/{message_id}", one)
    assert details["data"]["domains"][0]["recipients"][0]["address"] == JANE_DOE
    assert replay(api_root, spec, "PATCH /queue/messages/{message_id}", one) == {"data": True}
    assert replay(api_root, spec, "PATCH /queue/messages") == {"data": True}
    assert replay(api_root, spec, "GET /queue/status") == {"data": True}
    assert replay(api_root, spec, "PATCH /queue/status/stop") == {"data": True}
    assert replay(api_root, spec, "PATCH /queue/status/start") == {"data": False}
    assert replay(api_root, spec, "DELETE /queue/messages/{message_id}", one) == {"data": True}
    assert replay(api_root, spec, "DELETE /queue/messages") == {"data": True}
    assert queued.recipients.get().status == "cancelled"


def test_it_answers_the_spam_filter_examples(api_root, spec, settings, dns_server, make_principal):
    from apps.spamfilter import bayes

    settings.REDIS_URL = ""  # the database store (test_bayes.py covers Redis)
    # The example's hidden addresses differ (its tags say so): From and To share a domain,
    # the envelope sender is another organisation's, the recipient is not in To.
    example = spec["POST /spam-filter/classify"]
    example.body["message"] = example.body["message"].replace(f"To: {JANE}", "To: john@example.org")
    example.body["envFrom"] = "bounce@example.net"
    dns_server.set_zone("8.8.8.8.in-addr.arpa", {"PTR": ["dns.google."]})
    dns_server.set_zone("dns.google", {"A": ["8.8.8.8"]})
    data = replay(api_root, spec, "POST /spam-filter/classify")["data"]
    assert data["score"] == example.response["data"]["score"] == 12.7
    # The spec's text has stray spaces in three line breaks ("\r \n", "\r\n \t").
    expected = example.response["data"]["disposition"]["value"]
    expected = expected.replace("\r \n", "\r\n").replace("\r\n \t", "\r\n\t")
    assert data["disposition"]["value"] == expected.replace(
        "\tRBL_SENDERSCORE_REPUT_BLOCKED (0.00),\r\n", ""
    )
    for tag, result in example.response["data"]["tags"].items():
        if ("POST /spam-filter/classify", f"data.tags.{tag}") not in DEVIATIONS:
            assert data["tags"][tag] == result, tag

    account = make_principal(name="jane")
    for kind in ("spam", "ham"):
        assert replay(api_root, spec, f"POST /spam-filter/train/{kind}") == {"data": None}
        path = f"/spam-filter/train/{kind}/jane"
        assert replay(api_root, spec, f"POST /spam-filter/train/{kind}/{{account_id}}", path) == {
            "data": None
        }
    assert bayes.learned(bayes.GLOBAL) == (1, 1)
    assert bayes.learned(bayes.account_scope(account.pk)) == (1, 1)
    purge = "GET /store/purge/in-memory/default/bayes-account/{account_id}"
    path = "/store/purge/in-memory/default/bayes-account/jane"
    assert replay(api_root, spec, purge, path) == {"data": None}
    assert replay(api_root, spec, "GET /store/purge/in-memory/default/bayes-global") == {
        "data": None
    }
    assert bayes.learned(bayes.GLOBAL) == bayes.learned(bayes.account_scope(account.pk)) == (0, 0)
    assert replay(api_root, spec, "GET /update/spam-filter")["data"]["rules"] > 50

    troubleshooting = replay(api_root, spec, "POST /troubleshoot/dmarc")["data"]
    assert troubleshooting["ipRevPtr"] == ["dns.google."]
    assert troubleshooting["spfMailFromDomain"] == "example.org"


def test_it_answers_the_settings_examples(api_root, spec):
    """The store is filled through Update Settings with the values the spec's own list
    examples show, then each example is asked for."""
    groups = spec["GET /settings/group"].response["data"]["items"]
    listed = spec["GET /settings/list"].response["data"]["items"]
    keys = spec["GET /settings/keys"].response["data"]
    changes = [
        {
            "type": "insert",
            "prefix": f"server.listener.{group['_id']}",
            "values": [[k, v] for k, v in group.items() if k != "_id"],
        }
        for group in groups
    ]
    values = [list(item) for item in listed.items()]
    changes.append({"type": "insert", "prefix": "lookup.openphish", "values": values})
    changes.append({"type": "insert", "values": [list(i) for i in keys.items()]})
    changes.append({"type": "insert", "values": [["spam-filter.rule.MISSING_DATE.score", "2"]]})
    assert api_root.post("/api/settings", changes, format="json").status_code == 200

    path = "/settings/keys?keys=" + ",".join(keys)
    assert replay(api_root, spec, "GET /settings/keys", path) == {"data": keys}
    data = replay(api_root, spec, "GET /settings/group", "/settings/group?prefix=server.listener")
    assert data["data"]["total"] == len(groups) == 10
    assert sorted(data["data"]["items"], key=lambda g: g["_id"]) == sorted(
        groups, key=lambda g: g["_id"]
    )
    data = replay(api_root, spec, "GET /settings/list", "/settings/list?prefix=lookup.openphish")
    assert (data["data"]["total"], data["data"]["items"]) == (9, listed)

    # Update Settings' example clears a prefix; ours is a rule's overrides.
    spec["POST /settings"].body.append({"type": "clear", "prefix": "spam-filter.rule."})
    assert replay(api_root, spec, "POST /settings") == {"data": None}
    assert api_root.get("/api/settings/keys?prefixes=spam-filter").json() == {"data": {}}

    reloaded = replay(api_root, spec, "GET /reload/")["data"]
    assert reloaded["errors"] == {}
    assert set(reloaded["warnings"]) >= set(keys)  # stored only: nothing reads them


def test_it_answers_the_store_maintenance_examples(
    api_root, spec, make_principal, django_capture_on_commit_callbacks
):
    from apps.store import maintenance, services
    from mailadmin.core.models import TaskRun

    jane = make_principal(name="jane", password="")
    for key in (
        "GET /store/reindex",
        "GET /store/purge/account",
        "GET /store/purge/blob",
        "GET /store/purge/data",
        "GET /store/purge/in-memory",
    ):
        with django_capture_on_commit_callbacks(execute=False):
            assert replay(api_root, spec, key) == {"data": None}, key
    with django_capture_on_commit_callbacks(execute=False):
        purge = "GET /store/purge/account/{account_id}"
        assert replay(api_root, spec, purge, "/store/purge/account/jane") == {"data": None}
    assert set(TaskRun.objects.values_list("task_name", flat=True)) == {
        maintenance.REINDEX_TASK,
        maintenance.PURGE_ACCOUNTS_TASK,
        maintenance.PURGE_ACCOUNT_TASK,
        maintenance.PURGE_BLOB_TASK,
        maintenance.PURGE_DATA_TASK,
        maintenance.PURGE_IN_MEMORY_TASK,
    }

    listing = "GET /store/undelete/{account_id}"
    empty = replay(api_root, spec, listing, "/store/undelete/jane")["data"]
    assert (empty["items"], empty["total"]) == ([], 0)  # plus the cursors of a seekable list
    stored = services.deliver(jane, b"Subject: spec\r\n\r\nbody\r\n", flags=["\\Deleted"])
    maintenance.account_purge(jane.pk)
    item = replay(api_root, spec, listing, "/store/undelete/jane")["data"]["items"][0]
    assert item["hash"] == maintenance.blob_id(stored.blob_hash)
    # The spec's example names a blob of its own server; ours is the one just deleted.
    example = spec["POST /store/undelete/{account_id}"]
    example.body[0]["hash"] = item["hash"]
    example.body[0]["restoreTime"] = item["deletedAt"]
    restored = replay(api_root, spec, "POST /store/undelete/{account_id}", "/store/undelete/jane")
    assert restored == {"data": [{"type": "success"}]}

    uids = replay(api_root, spec, "DELETE /store/uids/{account_id}", "/store/uids/jane")
    assert uids == {"data": [4, 1]}


def test_it_answers_the_log_troubleshooting_and_webadmin_examples(
    api_root, anon_api, spec, settings, tmp_path, dns_server
):
    import logging

    from apps.telemetry.logs import JsonLinesHandler

    settings.MAILADMIN_LOG_FILE = tmp_path / "mailadmin.jsonl"
    handler = JsonLinesHandler(settings.MAILADMIN_LOG_FILE, max_bytes=100_000, backups=1)
    record = logging.LogRecord("mailadmin.api", logging.DEBUG, "", 0, "HTTP request URL", (), None)
    record.url = "/api/logs?page=1&limit=50&"
    handler.emit(record)
    handler.close()
    data = replay(api_root, spec, "GET /logs", "/logs?page=1&limit=50")["data"]
    assert data["items"][0]["details"] == 'url = "/api/logs?page=1&limit=50&"'

    token = replay(api_root, spec, "GET /troubleshoot/token")["data"]
    # No 200 example: the answer is a stream of Server-Sent Events (the spec's client reads
    # it with EventSource), here for a domain with a null MX.
    dns_server.set_zone("example.org", {"MX": [(0, ".")]})
    response = anon_api.get(f"/api/troubleshoot/delivery/{JANE}?token={token}")
    assert (response.status_code, response["Content-Type"]) == (200, "text/event-stream")
    assert b"event: verdict" in b"".join(response.streaming_content)

    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
    assert replay(api_root, spec, "GET /update/webadmin") == {"data": None}


def test_it_answers_the_telemetry_examples(api_root, anon_api, spec, settings):
    from apps.telemetry import events

    events.reset()
    events.emit("smtp.connection-start", "smtp-example", listenerId="smtp", localPort=25,
                remoteIp="::1", remotePort=57513)  # fmt: skip
    events.emit("smtp.mail-from", "smtp-example", **{"from": JANE})
    events.flush()
    assert replay(api_root, spec, "GET /telemetry/metrics")["data"]
    path = "/telemetry/traces?page=1&type=smtp.mail-from&limit=10&values=1"
    listed = replay(api_root, spec, "GET /telemetry/traces", path)["data"]
    assert [item["id"] for item in listed["items"]] == ["smtp-example"]
    trace = replay(
        api_root, spec, "GET /telemetry/trace/{trace_id}", "/telemetry/trace/smtp-example"
    )
    assert [event["type"] for event in trace["data"]] == ["smtp.connection-start", "smtp.mail-from"]
    # The live streams have no example body: Server-Sent Events, opened with a token.
    settings.MAILADMIN_TELEMETRY_LIVE_SECONDS = 0
    for stream, key in (("metrics", "GET /telemetry/metrics/live"),
                        ("tracing", "GET /telemetry/traces/live")):  # fmt: skip
        token = replay(api_root, spec, f"GET /telemetry/live/{stream}-token")["data"]
        response = anon_api.get("/api" + spec[key].path, {"token": token})
        assert response.status_code == 200
        assert response["Content-Type"] == "text/event-stream"
        assert b"".join(response.streaming_content).endswith(b'reconnect with a new token."}\n\n')
