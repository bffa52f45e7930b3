"""Validation errors read like the spec: 'Missing required field: x', naming the field."""

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from mailadmin.api.exceptions import problem_exception_handler


class Sample(serializers.Serializer):
    displayName = serializers.CharField()
    quota = serializers.IntegerField()


def _problem(data):
    serializer = Sample(data=data)
    try:
        serializer.is_valid(raise_exception=True)
    except ValidationError as exc:
        return problem_exception_handler(exc, {}).data
    raise AssertionError("expected a validation error")


def test_it_names_a_missing_field():
    body = _problem({"quota": 1})
    assert body["status"] == 400
    assert body["detail"] == "Missing required field: displayName"
    assert body["errors"] == [
        {"field": "displayName", "message": "Missing required field: displayName"}
    ]


def test_it_names_a_field_of_the_wrong_type():
    body = _problem({"displayName": "x", "quota": "lots"})
    assert body["detail"] == "Invalid value for field quota: A valid integer is required."
