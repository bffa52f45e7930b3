"""A NUL in a console page's query string or path is refused before any view: list pages
filter by their query parameters, and PostgreSQL refuses NUL in text (each of these
was a 500 there)."""

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
