"""The telemetry console: metrics with their chart data and live view, traces and a trace's
timeline; superadmins only."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest

from apps.telemetry import events, live

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _stored():
    events.reset()
    events.emit("smtp.connection-start", "smtp-p1", remoteIp="192.0.2.9", listenerId="smtp")
    events.emit("smtp.message-accepted", "smtp-p1", queueId="Q1", size=100, recipients=1)
    events.emit("smtp.message-accepted", "smtp-p2", queueId="Q2", size=100, recipients=1)
    events.emit("delivery.deferred", "delivery-5", to="a@remote.test", code=451)
    events.flush()
    yield
    events.reset()


@pytest.fixture
def console(client):
    def login(principal):
        client.force_login(principal)
        return client

    return login


def test_it_charts_messages_per_minute(console, superadmin):
    response = console(superadmin).get("/telemetry/metrics/?hours=6")
    assert response.status_code == 200
    body = response.content.decode()
    chart = json.loads(re.search(r'id="metrics-data"[^>]*>(.*?)</script>', body, re.S)[1])
    assert len(chart["labels"]) == 6 * 60 + 1
    assert sum(chart["series"]["in"]) == 2
    assert sum(chart["series"]["deferred"]) == 1
    assert sum(chart["series"]["delivered"]) == 0
    assert 'src="/static/vendor/chart-4.6.1.umd.min.js"' in body
    token = re.search(r'data-url="/api/telemetry/metrics/live\?interval=5&amp;token=([^"]+)"', body)
    assert live.token_principal(unquote(token[1]), stream="metrics") == superadmin


def test_it_lists_traces_filtered_by_event_type(console, superadmin):
    body = console(superadmin).get("/telemetry/traces/").content.decode()
    assert body.count('href="/telemetry/traces/') == 3
    assert "192.0.2.9" in body
    body = console(superadmin).get("/telemetry/traces/?type=delivery.deferred").content.decode()
    assert 'href="/telemetry/traces/delivery-5/"' in body
    assert "smtp-p1" not in body


def test_it_shows_a_traces_timeline(console, superadmin):
    response = console(superadmin).get("/telemetry/traces/smtp-p1/")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.index("SMTP connection started") < body.index("Message accepted")
    assert "192.0.2.9" in body
    assert console(superadmin).get("/telemetry/traces/nope/").status_code == 404


@pytest.mark.parametrize(
    "url", ["/telemetry/metrics/", "/telemetry/traces/", "/telemetry/traces/smtp-p1/"]
)
def test_it_refuses_a_tenant_admin(console, admin_a, url):
    assert console(admin_a).get(url).status_code == 403


def test_it_links_the_pages_from_the_index(console, superadmin):
    index = console(superadmin).get("/telemetry/").content.decode()
    assert 'href="/telemetry/metrics/"' in index
    assert 'href="/telemetry/traces/"' in index
