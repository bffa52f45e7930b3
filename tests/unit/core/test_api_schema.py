"""The OpenAPI schema tells the whole contract: every error an operation can answer, the
complete problem body, and a type for every `data`."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db

PROBLEM_REF = "#/components/schemas/Problem"


@pytest.fixture
def schema(anon_api) -> dict[str, Any]:
    response = anon_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict[str, Any]):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_it_declares_the_common_errors_on_every_operation(schema):
    for name, operation in operations(schema):
        for status in ("400", "401", "403", "404", "429"):
            assert status in operation["responses"], f"{name} lacks {status}"
            if name != "POST /api/oauth/token" or status != "400":  # RFC 6749's error body
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == {"$ref": PROBLEM_REF}, f"{name} {status}"


def test_it_declares_413_and_415_where_a_body_is_read(schema):
    for name, operation in operations(schema):
        if "requestBody" in operation:
            assert operation["requestBody"]["required"] is True, name
            assert {"413", "415"} <= set(operation["responses"]), name


def test_it_describes_the_whole_problem_body(schema):
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {
        "type",
        "status",
        "title",
        "detail",
        "errors",
        "permission",
    }
    assert problem["required"] == ["detail", "status", "title", "type"]
    field_error = schema["components"]["schemas"]["ProblemFieldError"]
    assert set(field_error["properties"]) == {"field", "message"}


def test_it_types_every_data_envelope(schema):
    untyped = [
        name
        for name, component in schema["components"]["schemas"].items()
        if component.get("properties", {}).get("data", "absent") == {}
    ]
    assert untyped == []


def test_it_answers_null_data_as_null(schema):
    assert schema["components"]["schemas"]["NullData"]["properties"]["data"] == {"type": "null"}


def test_it_generates_a_valid_schema_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s"))
