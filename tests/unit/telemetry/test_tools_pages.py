"""Telemetry -> Logs and Telemetry -> Troubleshoot delivery: superadmins only."""

from __future__ import annotations

import logging

import pytest
from django.core import signing

from apps.telemetry import troubleshoot
from apps.telemetry.logs import JsonLinesHandler

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client):
    def login(principal):
        client.force_login(principal)
        return client

    return login


@pytest.fixture
def records(settings, tmp_path):
    settings.MAILADMIN_LOG_FILE = tmp_path / "mailadmin.jsonl"
    handler = JsonLinesHandler(settings.MAILADMIN_LOG_FILE, max_bytes=100_000, backups=1)
    for level, message in ((logging.INFO, "routine work"), (logging.ERROR, "a real problem")):
        handler.emit(logging.LogRecord("apps.queue.delivery", level, "", 0, message, (), None))
    handler.close()


def test_it_shows_the_logs_page_with_its_level_filter(console, superadmin, records):
    client = console(superadmin)
    body = client.get("/telemetry/logs/").content.decode()
    assert "routine work" in body and "a real problem" in body
    assert 'hx-trigger="every 10s"' in body
    body = client.get("/telemetry/logs/?level=ERROR").content.decode()
    assert "a real problem" in body and "routine work" not in body
    fragment = client.get("/telemetry/logs/?level=ERROR", HTTP_HX_REQUEST="true")
    assert fragment.content.decode().lstrip().startswith('<div id="log-table"')
    index = client.get("/telemetry/").content.decode()
    assert 'href="/telemetry/logs/"' in index
    assert 'href="/telemetry/troubleshoot/delivery/"' in index


def test_it_answers_a_bad_level_with_422_and_the_message(console, superadmin, records):
    response = console(superadmin).get("/telemetry/logs/?level=loud")
    assert response.status_code == 422
    assert (
        "Invalid value for field level: use DEBUG, INFO, WARNING, ERROR or CRITICAL."
        in response.content.decode()
    )


def test_the_troubleshoot_page_carries_a_token_for_its_superadmin(console, superadmin):
    body = console(superadmin).get("/telemetry/troubleshoot/delivery/").content.decode()
    assert 'data-stream="/api/troubleshoot/delivery/RECIPIENT"' in body
    token = body.split('data-token="')[1].split('"')[0]
    assert troubleshoot.token_principal(token) == superadmin
    assert signing.loads(token, salt=troubleshoot.TOKEN_SALT)["p"] == superadmin.pk


@pytest.mark.parametrize("url", ["/telemetry/logs/", "/telemetry/troubleshoot/delivery/"])
def test_tenant_admins_may_not_open_them(console, admin_a, url):
    response = console(admin_a).get(url)
    assert response.status_code == 403
