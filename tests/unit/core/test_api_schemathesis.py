"""Schemathesis over every operation of /api/schema/: no 5xx, no answer the schema denies.

It runs in-process against the WSGI application (no server, no network), as a superadmin
with a bearer token, a few generated requests per operation, with every one of
Schemathesis' checks (server errors, status codes, content types, response schemas and
headers, schema-invalid data refused, schema-valid data accepted, authentication not
ignored, unsupported methods, ...) and one of ours: every error is a problem body.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from defusedxml import ElementTree
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from mailadmin.wsgi import application

pytestmark = pytest.mark.django_db

# Operations whose schema-valid input can still be refused with a 400 naming the field,
# because the rule depends on what is stored or on the clock, which no schema can say:
# names already taken, members/roles/domains that must exist, addresses on the tenant's
# own domains, a DKIM selector in use, an API key expiring in the past, an app password
# to remove that is not there, OpenPGP keys that must parse, an OAuth code that must be
# valid (RFC 6749 answers invalid_grant with 400), deleting oneself or a built-in role,
# a superadmin registering a domain without a project or asking for a mail server record
# without a tenant (a tenant admin needs neither), deleting a domain with mailboxes (409),
# the provisioning API's customers, domains and mailboxes that must exist (404 with the
# spec's words) and its Add/Edit rules (a name in use, an address of another tenant), and
# a mailbox's spam list entries (the current domain; an entry to delete that is not there),
# a setting's value that must suit its key (a rule's score is a number, its tag must be in
# the rules file) and Update Settings' assertEmpty (409 when the key is already set), and
# a fetch job's local mailbox (an address that must exist) and its remote host (plain text
# only to loopback hosts), and a telemetry live stream's token (signed by us, unexpired).
STATEFUL_OPERATIONS = [
    "principal_create",
    "principal_update",
    "principal_delete",
    "dkim_create",
    "domain_create",
    "domain_delete",
    "mailserver_get",
    "account_auth_create",
    "account_crypto_create",
    "account_api_keys_create",
    "oauth_token_create",
    "provisioning_mailbox_list",
    "provisioning_mailbox_get",
    "provisioning_mailbox_add",
    "provisioning_mailbox_edit",
    "provisioning_mailbox_delete",
    "provisioning_address_add",
    "provisioning_address_delete",
    "provisioning_sender_list_get",
    "provisioning_sender_list_add",
    "provisioning_sender_list_delete",
    "provisioning_spam_setting_get",
    "provisioning_spam_setting_edit",
    "settings_update",
    "fetch_mailbox_create",
    "fetch_mailbox_update",
    "fetch_mailbox_patch",
    # a live stream's token must be one we signed and not yet expired
    "telemetry_metrics_live",
    "telemetry_traces_live",
]


def _paged_operations() -> list[str]:
    """Lists with `page`/`limit`: `page` x `limit` deeper than pagination.MAX_OFFSET rows is a
    400 naming `page` (deeper pages are reached by cursor), a product no schema can say."""
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return sorted(
        operation["operationId"]
        for operations in paths.values()
        for operation in operations.values()
        if any(p.get("name") == "page" for p in operation.get("parameters", []))
    )


REFUSABLE = ["2xx", "400", "401", "403", "404", "409", "429"]
CONFIG = SchemathesisConfig.from_dict(
    {
        # Every text field refuses NUL bytes ("Null characters are not allowed.", see
        # test_api_errors.py); the schema does not spell that out on each string.
        "generation": {"allow-x00": False},
        "operations": [
            {
                "include-operation-id": [*STATEFUL_OPERATIONS, *_paged_operations()],
                "checks": {"positive_data_acceptance": {"expected-statuses": REFUSABLE}},
            }
        ],
    }
)
# Loaded as served (GET /api/schema/ is public and reads no database), at collection time.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)


def errors_are_problems(ctx, response, case) -> bool | None:
    """Every error is RFC 7807 problem JSON (or XML when asked), with its own status.
    The OAuth token endpoint answers in RFC 6749's shape instead, as OAuth clients expect."""
    if response.status_code < 400 or case.path == "/api/oauth/token":
        return None
    content_type = response.headers.get("content-type", [""])[0]
    if "xml" in content_type:
        root = ElementTree.fromstring(response.content)
        body = {child.tag: child.text for child in root}
    else:
        body = response.json()
    assert {"type", "status", "title", "detail"} <= set(body), body
    assert int(body["status"]) == response.status_code, body
    return True


@pytest.fixture
def _same_connection() -> Iterator[None]:
    """Keep the test's database connection (and its transaction) across WSGI requests, as
    Django's test client does: the handler would otherwise close it after each one."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def root_token(superadmin) -> str:
    from apps.accounts.auth.tokens import token_issue
    from apps.accounts.models import AccessToken

    _, secret = token_issue(principal=superadmin, kind=AccessToken.Kind.OAUTH, name="fuzz")
    return secret


@pytest.fixture
def _no_lockout(settings) -> None:
    """The auth checks send bad credentials again and again from one address; the lockout
    would rightly answer 429 (tested on its own in tests/unit/accounts/)."""
    settings.MAILADMIN_LOGIN_LOCKOUT = {"account": (10**6, 900, 900), "ip": (10**6, 900, 900)}


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_it_answers_every_operation_as_the_schema_says(
    case, root_token, _same_connection, _no_lockout
):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {root_token}"},
        additional_checks=[errors_are_problems],
    )
