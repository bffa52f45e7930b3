"""What every console form shares."""

from __future__ import annotations

from django import forms

from mailadmin.errors import ServiceError


class ServiceErrorsMixin:
    """Show a ServiceError beside the field it names, or above the form."""

    def add_service_error(self, exc: ServiceError) -> None:
        name = exc.field if exc.field in self.fields else None
        self.add_error(name, exc.message)


def refusal_form(exc: ServiceError) -> forms.Form:
    """A field-less form carrying a service's refusal, for a form that is just a button
    (delete, regenerate): rendered like any invalid form, so it answers 422 the same way."""
    form = forms.Form(data={})
    form.add_error(None, exc.message)
    return form
