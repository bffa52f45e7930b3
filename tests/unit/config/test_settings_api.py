"""The settings store's API (management API: List Settings by Key / by Group, List
Settings, Update Settings, Reload Settings): shapes, checks with their exact messages,
permissions (superadmin only, fail closed), audit, query counts."""

from __future__ import annotations

import pytest

from apps.config.models import Generation, Setting
from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db

LISTENERS = {
    "server.listener.smtp.bind": "[::]:25",
    "server.listener.smtp.protocol": "smtp",
    "server.listener.submission.bind": "[::]:587",
    "server.listener.submission.protocol": "smtp",
    "server.listener.imaptls.bind": "[::]:993",
    "server.listener.imaptls.tls.implicit": "true",
    "server.hostname": "mx.example.org",
}


@pytest.fixture
def listeners(db):
    Setting.objects.bulk_create(Setting(key=k, value=v) for k, v in LISTENERS.items())


def _post(api, changes):
    return api.post("/api/settings", changes, format="json")


# --- reading ---------------------------------------------------------------------------------


def test_it_answers_keys_and_prefixes_in_full(api_root, listeners):
    response = api_root.get(
        "/api/settings/keys?keys=server.hostname,nope.missing&prefixes=server.listener.smtp"
    )
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "server.hostname": "mx.example.org",
            "server.listener.smtp.bind": "[::]:25",
            "server.listener.smtp.protocol": "smtp",
        }
    }
    assert api_root.get("/api/settings/keys").json() == {"data": {}}


def test_it_lists_a_prefix_without_it(api_root, listeners):
    data = api_root.get("/api/settings/list?prefix=server.listener.smtp").json()["data"]
    assert data["total"] == 2
    assert data["items"] == {"bind": "[::]:25", "protocol": "smtp"}
    page = api_root.get("/api/settings/list?prefix=server.listener&limit=2&page=2").json()["data"]
    assert page["total"] == 6
    assert page["items"] == {"smtp.bind": "[::]:25", "smtp.protocol": "smtp"}


def test_it_groups_settings_into_records(api_root, listeners):
    data = api_root.get("/api/settings/group?prefix=server.listener").json()["data"]
    assert data == {
        "total": 3,
        "items": [
            {"_id": "imaptls", "bind": "[::]:993", "tls.implicit": "true"},
            {"_id": "smtp", "bind": "[::]:25", "protocol": "smtp"},
            {"_id": "submission", "bind": "[::]:587", "protocol": "smtp"},
        ],
    }
    paged = api_root.get("/api/settings/group?prefix=server.listener.&limit=1&page=2").json()
    assert paged["data"] == {"total": 3, "items": [data["items"][1]]}


def test_it_groups_by_suffix_with_dotted_ids(api_root):
    Setting.objects.bulk_create(
        [
            Setting(key="queue.route.eu.west.address", value="10.0.0.1"),
            Setting(key="queue.route.eu.west.port", value="25"),
            Setting(key="queue.route.us.address", value="10.0.0.2"),
        ]
    )
    data = api_root.get("/api/settings/group?prefix=queue.route&suffix=address").json()["data"]
    assert data["items"] == [
        {"_id": "eu.west", "address": "10.0.0.1", "port": "25"},
        {"_id": "us", "address": "10.0.0.2"},
    ]


def test_it_refuses_unknown_query_parameters(api_root):
    response = api_root.get("/api/settings/list?colour=red")
    assert response.status_code == 400
    assert response.json()["detail"] == "Unrecognized field: colour"


@pytest.mark.parametrize(
    "url", ["/api/settings/list?prefix=server", "/api/settings/group?prefix=server"]
)
def test_it_reads_in_constant_queries(api_root, listeners, url, django_assert_max_num_queries):
    Setting.objects.bulk_create(
        Setting(key=f"server.listener.l{i}.bind", value=f"[::]:{i}") for i in range(300)
    )
    with django_assert_max_num_queries(6):  # auth (token, principal, roles) + the list
        response = api_root.get(url + "&limit=1000")
    assert response.status_code == 200


# --- Update Settings ------------------------------------------------------------------------


def test_it_inserts_deletes_and_clears_in_order(api_root, listeners, superadmin):
    response = _post(
        api_root,
        [
            {"type": "clear", "prefix": "server.listener."},
            {
                "type": "insert",
                "prefix": "server.listener.smtp",
                "values": [["bind", "[::]:2525"], ["protocol", "smtp"]],
                "assertEmpty": True,
            },
            {"type": "delete", "keys": ["server.hostname"]},
        ],
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"data": None}
    assert dict(Setting.objects.values_list("key", "value")) == {
        "server.listener.smtp.bind": "[::]:2525",
        "server.listener.smtp.protocol": "smtp",
    }
    event = AuditEvent.objects.get(action="settings.update")
    assert event.actor == superadmin
    assert event.changes["set"] == {
        "server.listener.smtp.bind": "[::]:2525",
        "server.listener.smtp.protocol": "smtp",
    }
    assert event.changes["cleared"] == ["server.listener."]
    assert event.changes["removed"] == 7
    assert Generation.objects.get(pk=1).value != 0  # a new generation for every process


def test_it_refuses_an_insert_over_existing_settings_when_asked(api_root, listeners):
    response = _post(
        api_root,
        [{"type": "insert", "prefix": "server.listener.smtp", "values": [["x", "1"]],
          "assertEmpty": True}],
    )  # fmt: skip
    assert response.status_code == 409
    assert response.json()["detail"] == "Settings under server.listener.smtp. already exist."
    response = _post(
        api_root, [{"type": "insert", "values": [["server.hostname", "b"]], "assertEmpty": True}]
    )
    assert response.json()["detail"] == "The setting server.hostname already exists."
    assert Setting.objects.get(key="server.hostname").value == "mx.example.org"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"type": "clear"}, "body", 'The body must be a list of changes, e.g. [{"type": '
         '"clear", "prefix": "a."}]'),
        ([{"prefix": "a."}], "[0].type", "Missing required field: [0].type"),
        ([{"type": "drop", "prefix": "a."}], "[0].type",
         "Invalid value for field [0].type: drop (insert, delete or clear)"),
        ([{"type": {}, "prefix": "a."}], "[0].type",
         "Invalid value for field [0].type: {} (insert, delete or clear)"),
        ([{"type": "clear", "prefix": "a.", "colour": 1}], "[0].colour",
         "Unrecognized field: colour"),
        ([{"type": "insert"}], "[0].values", "Missing required field: [0].values"),
        ([{"type": "insert", "values": [["a..b", "1"]]}], "key",
         'Invalid key: a..b (names of letters, digits, "-", "_" and "*", joined by dots)'),
        ([{"type": "insert", "values": [["a b", "1"]]}], "key",
         'Invalid key: a b (names of letters, digits, "-", "_" and "*", joined by dots)'),
        ([{"type": "delete", "keys": ["ok", "bad key"]}], "key",
         'Invalid key: bad key (names of letters, digits, "-", "_" and "*", joined by dots)'),
        ([{"type": "clear", "prefix": ""}], "prefix",
         "A prefix is required: clearing every setting at once is refused"),
        ([{"type": "insert", "values": [["spam-filter.rule.FROM_NO_DN.score", "high"]]}],
         "spam-filter.rule.FROM_NO_DN.score",
         "Invalid value for spam-filter.rule.FROM_NO_DN.score: high is not a number from "
         "-100 to 100"),
        ([{"type": "insert", "values": [["spam-filter.rule.FROM_NO_DN.score", "1000"]]}],
         "spam-filter.rule.FROM_NO_DN.score",
         "Invalid value for spam-filter.rule.FROM_NO_DN.score: 1000 is not a number from "
         "-100 to 100"),
        ([{"type": "insert", "values": [["spam-filter.rule.FROM_NO_DN.score", "nan"]]}],
         "spam-filter.rule.FROM_NO_DN.score",
         "Invalid value for spam-filter.rule.FROM_NO_DN.score: nan is not a number from "
         "-100 to 100"),
        ([{"type": "insert", "prefix": "spam-filter.rule.MISSING_DATE",
           "values": [["enabled", "yes"]]}],
         "spam-filter.rule.MISSING_DATE.enabled",
         "Invalid value for spam-filter.rule.MISSING_DATE.enabled: yes is not true or false"),
        ([{"type": "insert", "values": [["spam-filter.rule.NO_SUCH_TAG.score", "1"]]}],
         "spam-filter.rule.NO_SUCH_TAG.score",
         "Unknown spam-filter rule: NO_SUCH_TAG (no such tag in the rules file)"),
        ([{"type": "insert", "values": [["spam-filter.rule.FROM_NO_DN.colour", "red"]]}],
         "spam-filter.rule.FROM_NO_DN.colour",
         "Unknown spam-filter rule setting: spam-filter.rule.FROM_NO_DN.colour "
         "(spam-filter.rule.<TAG>.score or spam-filter.rule.<TAG>.enabled)"),
    ],
)  # fmt: skip
def test_it_names_what_is_wrong(api_root, body, field, message):
    response = _post(api_root, body)
    assert response.status_code == 400, response.content
    problem = response.json()
    assert problem["detail"] == message
    assert problem["errors"][0] == {"field": field, "message": message}
    assert not Setting.objects.exists()


def test_it_writes_nothing_when_one_change_is_bad(api_root, listeners):
    response = _post(
        api_root,
        [
            {"type": "clear", "prefix": "server."},
            {"type": "insert", "values": [["spam-filter.rule.FROM_NO_DN.score", "x"]]},
        ],
    )
    assert response.status_code == 400
    assert Setting.objects.count() == len(LISTENERS)
    assert not AuditEvent.objects.filter(action="settings.update").exists()


def test_it_stores_rule_values_normalised(api_root):
    _post(
        api_root,
        [{"type": "insert", "prefix": "spam-filter.rule.MISSING_DATE",
          "values": [["score", " 2.50 "], ["enabled", "FALSE"]]}],
    )  # fmt: skip
    assert dict(Setting.objects.values_list("key", "value")) == {
        "spam-filter.rule.MISSING_DATE.score": "2.5",
        "spam-filter.rule.MISSING_DATE.enabled": "false",
    }


def test_it_refuses_a_json_number_as_a_value(api_root):
    response = _post(api_root, [{"type": "insert", "values": [["a.b", 5]]}])
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"].startswith("[0].values")


# --- Reload Settings ------------------------------------------------------------------------


def test_it_reloads_and_reports_what_it_ignores(api_root, listeners):
    Setting.objects.bulk_create(
        [
            Setting(key="spam-filter.rule.MISSING_DATE.score", value="2"),
            Setting(key="spam-filter.rule.GONE_RULE.score", value="2"),
            Setting(key="spam-filter.rule.MISSING_MID.enabled", value="maybe"),
        ]
    )
    response = api_root.get("/api/reload/")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["errors"] == {
        "spam-filter.rule.GONE_RULE.score": (
            "Unknown spam-filter rule: GONE_RULE (no such tag in the rules file)"
        ),
        "spam-filter.rule.MISSING_MID.enabled": (
            "Invalid value for spam-filter.rule.MISSING_MID.enabled: maybe is not true or false"
        ),
    }
    assert data["warnings"]["server.hostname"] == (
        "Stored only: nothing in mailadmin reads this key."
    )
    assert "spam-filter.rule.MISSING_DATE.score" not in data["warnings"]
    assert AuditEvent.objects.filter(action="settings.reload").count() == 1


# --- permissions ----------------------------------------------------------------------------

READS = ["/api/settings/keys?keys=a", "/api/settings/list", "/api/settings/group", "/api/reload/"]


@pytest.mark.parametrize("url", READS)
def test_it_forbids_tenant_admins(api_a, url):
    response = api_a.get(url)
    assert response.status_code == 403
    assert response.json()["permission"].startswith("settings-")


def test_it_forbids_tenant_admins_to_write(api_a):
    response = _post(api_a, [{"type": "insert", "values": [["a.b", "1"]]}])
    assert response.status_code == 403
    assert response.json()["permission"] == "settings-update"
    assert not Setting.objects.exists()


@pytest.mark.parametrize("url", READS)
def test_it_refuses_a_global_account_granted_the_permissions(make_principal, api_client_for, url):
    """settings-* handed to an account outside any tenant that is not a superadmin: still
    refused (the store is server-wide; fail closed)."""
    granted = make_principal(
        roles=(),
        enabled_permissions=["settings-list", "settings-update", "settings-reload"],
    )
    response = api_client_for(granted).get(url)
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "The settings store is server-wide: only a superadmin may read or change it."
    )


def test_it_needs_settings_delete_to_delete(make_principal, api_client_for, superadmin):
    from apps.accounts.models import Principal, PrincipalType

    key = Principal.objects.create(
        name="key-1", type=PrincipalType.API_KEY, created_by=superadmin,
        enabled_permissions=["settings-update"],
    )  # fmt: skip
    client = api_client_for(key)
    assert _post(client, [{"type": "insert", "values": [["a.b", "1"]]}]).status_code == 200
    response = _post(client, [{"type": "delete", "keys": ["a.b"]}])
    assert response.status_code == 403
    assert response.json()["permission"] == "settings-delete"
    assert Setting.objects.filter(key="a.b").exists()


def test_it_needs_a_login(anon_api):
    assert anon_api.get("/api/settings/list").status_code == 401
