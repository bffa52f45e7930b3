"""HTML forms of the principal console. They only turn text into the API-shaped values
the services take; every rule lives in apps.accounts.principals.services."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.accounts.emails import display_address
from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import ALL_PERMISSIONS, BUILTIN_ROLES
from apps.accounts.principals.services import APPLIES, SUPERADMIN_ROLE
from mailadmin.api.pagination import MAX_PAGE
from mailadmin.core.forms import ServiceErrorsMixin


class LinesField(forms.CharField):
    """One value per line (or comma-separated) in a textarea, as a list."""

    widget = forms.Textarea(attrs={"rows": 3})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value) or ""
        return [v.strip() for v in text.replace(",", "\n").splitlines() if v.strip()]


def _limit(label: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label, required=False, min_value=0, help_text="Empty means no limit."
    )


class PrincipalForm(ServiceErrorsMixin, forms.Form):
    """Name, description, quota, password, addresses and limits (fields by type)."""

    tenant = forms.ChoiceField(required=False, help_text="Superadmins only; empty for none.")
    name = forms.CharField(max_length=255)
    description = forms.CharField(max_length=1024, required=False)
    quota = forms.IntegerField(
        required=False, min_value=0, help_text="Bytes; empty or 0 means no limit."
    )
    secrets = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the current password.",
    )
    emails = LinesField(label="Email addresses", help_text="The first one is the primary.")
    urls = LinesField(label="URLs")
    externalMembers = LinesField(label="External members", help_text="Addresses elsewhere.")
    maxDomains = _limit("Max domains")
    maxAccounts = _limit("Max accounts")
    maxMailboxesPerUser = _limit("Max addresses per account")

    def __init__(
        self,
        *args,
        type_: str,
        actor: Principal,
        principal: Principal | None = None,
        tenants: list[str] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.type = type_
        self.principal = principal
        applies = APPLIES[type_]
        for name in ("quota", "secrets", "emails", "urls", "externalMembers"):
            if name not in applies:
                del self.fields[name]
        for name in ("maxDomains", "maxAccounts", "maxMailboxesPerUser"):
            if name not in applies:
                del self.fields[name]
        if principal is None and "secrets" in self.fields:
            self.fields["secrets"].help_text = "Leave empty for an account that cannot log in."
        creating_in_tenant = (
            principal is None and actor.is_superuser and type_ != PrincipalType.TENANT
        )
        if creating_in_tenant:
            self.fields["tenant"].choices = [("", "—")] + [(t, t) for t in tenants or []]
        else:
            del self.fields["tenant"]
        if type_ == PrincipalType.DOMAIN:
            self.fields["name"].label = "Domain name"

    def create_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        for name, value in self.cleaned_data.items():
            if value in (None, "") and name != "description":
                continue
            data[name] = value
        return data

    def operations(self) -> list[dict[str, Any]]:
        ops = []
        for name, value in self.cleaned_data.items():
            if name == "secrets":
                if value:
                    ops.append({"action": "set", "field": name, "value": value})
                continue
            if name == "quota" and value is None:
                value = 0
            ops.append({"action": "set", "field": name, "value": value})
        return ops


def principal_initial(state: dict[str, Any]) -> dict[str, Any]:
    """Form initial values from services.principal_state (addresses shown in Unicode)."""
    initial = dict(state)
    initial["emails"] = [display_address(a) for a in state["emails"]]
    initial["externalMembers"] = [display_address(a) for a in state["externalMembers"]]
    return initial


class MembershipForm(ServiceErrorsMixin, forms.Form):
    """Groups and lists it belongs to, roles it holds, and its own members."""

    roles = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    memberOf = LinesField(label="Member of groups", help_text="Group names, one per line.")
    lists = LinesField(label="Member of mailing lists", help_text="List names, one per line.")
    members = LinesField(label="Members", help_text="Names, one per line.")

    def __init__(self, *args, type_: str, actor: Principal, role_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        applies = APPLIES[type_]
        for name in ("roles", "memberOf", "lists", "members"):
            if name not in applies:
                del self.fields[name]
        if "roles" in self.fields:
            builtin = [n for n in BUILTIN_ROLES if actor.is_superuser or n != SUPERADMIN_ROLE]
            names = builtin + [n for n in role_names if n not in builtin]
            self.fields["roles"].choices = [(n, n) for n in names]

    def operations(self) -> list[dict[str, Any]]:
        return [
            {"action": "set", "field": name, "value": list(value)}
            for name, value in self.cleaned_data.items()
        ]


PERMISSION_CHOICES = [(p, p) for p in sorted(ALL_PERMISSIONS)]


class PermissionForm(ServiceErrorsMixin, forms.Form):
    enabledPermissions = forms.MultipleChoiceField(
        label="Enabled", required=False, choices=PERMISSION_CHOICES
    )
    disabledPermissions = forms.MultipleChoiceField(
        label="Disabled", required=False, choices=PERMISSION_CHOICES
    )

    def operations(self) -> list[dict[str, Any]]:
        return [
            {"action": "set", "field": name, "value": list(value)}
            for name, value in self.cleaned_data.items()
        ]


class ListParams(forms.Form):
    """The principal list's query string (tab, search, sort, page)."""

    type = forms.ChoiceField(choices=PrincipalType.choices, required=False)
    q = forms.CharField(required=False, max_length=255)
    sort = forms.ChoiceField(
        choices=[(s, s) for s in ("name", "-name", "created", "-created")], required=False
    )
    page = forms.IntegerField(min_value=1, max_value=MAX_PAGE, required=False)


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=64)
    actor = forms.CharField(required=False, max_length=255)
    object_type = forms.CharField(required=False, max_length=64, label="Object type")
    since = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    page = forms.IntegerField(
        min_value=1, max_value=MAX_PAGE, required=False, widget=forms.HiddenInput
    )
