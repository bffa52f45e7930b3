"""/api/dns/check/{domain} and /api/dns/records/{domain}?format=zone: shapes, permissions,
tenant isolation, and a zone file that BIND's named-checkzone loads."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from apps.domains import services
from apps.domains.models import DkimKey
from apps.domains.selectors import expected_records
from apps.domains.tasks import domain_dns_check_task
from apps.domains.zone import txt_data
from mailadmin.core.models import TaskRun
from tests.conftest import skip_or_fail
from tests.unit.domains.test_dns_task import HOST, publish

pytestmark = pytest.mark.django_db

NOT_FOUND = {
    "type": "about:blank",
    "status": 404,
    "title": "Not Found",
    "detail": "The requested resource does not exist on this server.",
}


@pytest.fixture(autouse=True)
def _hostname(settings):
    settings.MAILADMIN_HOSTNAME = HOST


# --- /api/dns/check/{domain} -----------------------------------------------------------


def test_it_starts_a_check_as_a_run(api_a, admin_a, domain_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = api_a.post("/api/dns/check/A.example")
    assert response.status_code == 202, response.content
    run = TaskRun.objects.get()
    assert response.json() == {"data": {"runId": str(run.id)}}
    assert (run.kind, run.actor, run.arguments) == (
        f"dns-check:{domain_a.pk}",
        admin_a,
        {"domain_id": domain_a.pk},
    )


def test_it_returns_the_latest_results_record_by_record(
    api_a, domain_a, dns_server, django_capture_on_commit_callbacks, django_assert_num_queries
):
    assert api_a.get("/api/dns/check/a.example").json() == {
        "data": {"status": "unknown", "checkedAt": None, "records": []}
    }
    records = expected_records(domain=domain_a)
    publish(dns_server, records, replace={("MX", "a.example."): [(0, ".")]})
    with django_capture_on_commit_callbacks(execute=False):
        run_id = api_a.post("/api/dns/check/a.example").json()["data"]["runId"]
    domain_dns_check_task(run_id)
    with django_assert_num_queries(4):  # auth, domain+profile, results (+ api key touch)
        data = api_a.get(f"/api/dns/check/{domain_a.pk}").json()["data"]
    assert data["status"] == "failing"
    assert data["checkedAt"].endswith("Z") or "+" in data["checkedAt"]
    assert len(data["records"]) == len(records)
    assert data["records"][0] == {
        "type": "MX",
        "name": "a.example.",
        "expected": f"10 {HOST}.",
        "found": ["0 ."],
        "state": "mismatch",
        "diagnostic": "null MX (RFC 7505): the domain says it accepts no mail at all; "
        f"replace it with an MX pointing to {HOST}.",
    }
    assert {r["state"] for r in data["records"][2:]} == {"ok"}


def test_it_names_the_missing_permissions(api_client_for, user_a, domain_a):
    api = api_client_for(user_a)
    assert api.get("/api/dns/check/a.example").json()["permission"] == "dns-record-get"
    assert api.post("/api/dns/check/a.example").json()["permission"] == "dns-check"


def test_it_hides_other_tenants_domains(api_a, domain_b, admin_a):
    assert api_a.get("/api/dns/check/b.example").json() == NOT_FOUND
    assert api_a.post("/api/dns/check/b.example").json() == NOT_FOUND
    assert api_a.post(f"/api/dns/check/{domain_b.pk}").status_code == 404
    assert api_a.get(f"/api/dns/check/{admin_a.pk}").status_code == 404
    assert not TaskRun.objects.exists()


# --- /api/dns/records/{domain}: TXT quoted, and ?format=zone ---------------------------


def test_it_quotes_txt_content_in_the_json(api_a, domain_a, admin_a):
    services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    data = api_a.get("/api/dns/records/a.example").json()["data"]
    spf = next(r for r in data if r["type"] == "TXT" and r["name"] == "a.example.")
    assert spf["content"] == '"v=spf1 mx -all"'
    dkim = next(r for r in data if "._domainkey." in r["name"])
    assert dkim["content"].startswith('"v=DKIM1; k=rsa; h=sha256; p=MII')
    strings = dkim["content"][1:-1].split('" "')
    assert [len(s) for s in strings] == [255, len(dkim["content"]) - 2 - 3 - 255]
    mx = next(r for r in data if r["type"] == "MX")
    assert mx["content"] == f"10 {HOST}."


def test_it_splits_and_escapes_txt_strings():
    assert txt_data('a "b" \\ c; d') == '"a \\"b\\" \\\\ c; d"'
    assert txt_data("x" * 300) == '"' + "x" * 255 + '" "' + "x" * 45 + '"'
    assert txt_data("é" * 200) == '"' + "\\195\\169" * 127 + '" "' + "\\195\\169" * 73 + '"'


def test_it_downloads_a_zone_file_that_bind_loads(api_a, domain_a, admin_a, tmp_path):
    services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="ed25519")
    response = api_a.get("/api/dns/records/a.example?format=zone")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/dns")
    assert response["Content-Disposition"] == 'attachment; filename="a.example.zone"'
    text = response.content.decode()
    assert "\ta.example.\t" not in text  # names are full, lines are name TTL IN type data
    assert 'a.example.\t3600\tIN\tTXT\t"v=spf1 mx -all"' in text
    key = DkimKey.objects.filter(domain=domain_a, algorithm="rsa").get()
    assert key.public_key[:200] in text.replace('" "', "")
    checkzone = shutil.which("named-checkzone") or "/usr/bin/named-checkzone"
    if not shutil.which(checkzone):
        skip_or_fail("named-checkzone missing (apt-get install bind9-utils)")
    path = tmp_path / "a.example.zone"
    path.write_text(text)
    result = subprocess.run(
        [checkzone, "-i", "local", "a.example", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_it_answers_zone_requests_for_foreign_domains_with_problem_json(api_a, domain_b):
    response = api_a.get("/api/dns/records/b.example?format=zone")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
