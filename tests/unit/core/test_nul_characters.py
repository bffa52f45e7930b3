"""A NUL in a query string (console or API) or a console page's path is refused before
any view: list pages and list APIs filter by their query parameters, and PostgreSQL
refuses NUL in text (each of these was a 500 there). Run with DATABASE_URL for that."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def console_root(client, superadmin):
    client.force_login(superadmin)
    return client


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/domains/?q=a%00b", "q"),
        ("/queue/?sender=%00", "sender"),
        ("/queue/fetch/?q=%00", "q"),
        ("/spam-filter/quarantine/?mailbox=%00", "mailbox"),
        ("/reports/dmarc/?reporter=%00", "reporter"),
        ("/settings/?q=%00", "q"),
        ("/domains/?a%00=1", "a%00"),
    ],
)
def test_a_nul_in_the_query_is_refused_naming_the_parameter(console_root, path, name):
    response = console_root.get(path)
    assert response.status_code == 400
    assert response.content.decode() == (
        f"The query parameter '{name}' holds a NUL character (%00), which no page accepts."
    )


def test_a_nul_in_the_path_names_nothing(console_root):
    assert console_root.get("/telemetry/traces/a%00b/").status_code == 404


def test_a_form_still_answers_a_nul_with_its_field_error(console_root):
    response = console_root.post("/domains/new/", {"name": "a\x00.example"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "Null characters are not allowed." in response.content.decode()


def test_the_api_keeps_its_own_answers(api_root):
    response = api_root.get("/api/principal/a%00b")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/queue/messages?text=%00", "text"),
        ("/api/queue/messages?sender=a%00b", "sender"),
        ("/api/principal?filter=%00", "filter"),
        ("/api/principal?types=individual&filter=x%00", "filter"),
        ("/api/reports/dmarc?reporter=%00", "reporter"),
        ("/api/reports/tls?reporter=%00", "reporter"),
        ("/api/spam-filter/quarantine?mailbox=%00", "mailbox"),
        ("/api/audit?q=%00", "q"),
        ("/api/principal?a%00=1", "a%00"),
    ],
)
def test_a_nul_in_an_api_query_is_a_problem_naming_the_parameter(api_root, path, name):
    """On PostgreSQL (DATABASE_URL) a NUL reaching a text filter was a 500."""
    response = api_root.get(path)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    message = f"Invalid value for field {name}: Null characters are not allowed."
    assert response.json() == {
        "type": "about:blank",
        "status": 400,
        "title": "Bad Request",
        "detail": message,
        "errors": [{"field": name, "message": message}],
    }
