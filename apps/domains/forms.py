"""HTML input of the domain pages (checking only; the rules live in apps.domains.services)."""

from __future__ import annotations

from django import forms

from apps.domains import dkim
from mailadmin.core.forms import ServiceErrorsMixin


class DkimKeyForm(ServiceErrorsMixin, forms.Form):
    """A new DKIM key: the service validates the selector, so the API and page say the same."""

    algorithm = forms.ChoiceField(
        choices=[(dkim.ED25519, "Ed25519"), (dkim.RSA, f"RSA-{dkim.RSA_BITS}")],
        initial=dkim.ED25519,
    )
    selector = forms.CharField(
        required=False,
        max_length=255,
        help_text="Empty picks a dated one such as 202611e.",
    )


class DomainCreateForm(ServiceErrorsMixin, forms.Form):
    """A new domain; a superadmin also picks its tenant (the service checks the rest: name
    taken, the tenant's domain limit, IDN)."""

    name = forms.CharField(
        max_length=255, help_text="In Unicode (bücher.example) or punycode (xn--...)."
    )
    tenant = forms.TypedChoiceField(coerce=int, required=False, label="Tenant")

    def __init__(self, *args, tenants: list[tuple[int, str]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if tenants is None:
            del self.fields["tenant"]
        else:
            self.fields["tenant"].choices = [("", "Choose a tenant"), *tenants]
            self.fields["tenant"].required = True
