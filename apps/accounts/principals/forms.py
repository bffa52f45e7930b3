"""HTML forms of the principal console. They only turn text into the API-shaped values
the services take; every rule lives in apps.accounts.principals.services."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext
from itertools import zip_longest
from typing import Any

from django import forms

from apps.accounts.emails import InvalidAddress, display_address, display_domain, normalize_domain
from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import ALL_PERMISSIONS, BUILTIN_ROLES
from apps.accounts.principals.services import APPLIES, SUPERADMIN_ROLE
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


# --- quota: a number and a unit, stored as bytes ----------------------------------------

QUOTA_UNITS: dict[str, int] = {"MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
DEFAULT_QUOTA_UNIT = "GB"
MAX_QUOTA = 2**63 - 1  # the column is a signed 64-bit integer


class QuotaWidget(forms.MultiWidget):
    """A number and a unit select side by side (binary units, as filesizeformat shows)."""

    template_name = "accounts/widgets/quota.html"

    def __init__(self, attrs: dict | None = None) -> None:
        number = forms.NumberInput(attrs={"min": "0", "step": "any", "inputmode": "decimal"})
        unit = forms.Select(choices=[(u, u) for u in QUOTA_UNITS], attrs={"aria-label": "Unit"})
        super().__init__([number, unit], attrs)

    def id_for_label(self, id_: str) -> str:
        """The label names the number; the unit select carries its own name ("Unit")."""
        return f"{id_}_0" if id_ else ""

    def decompress(self, value: Any) -> list[Any]:
        """Bytes as the largest unit that holds them whole, else exact MB with decimals."""
        if not value:
            return [None, DEFAULT_QUOTA_UNIT]
        for unit, size in reversed(QUOTA_UNITS.items()):
            if value % size == 0:
                return [value // size, unit]
        with localcontext(prec=60):  # exact: a few bytes past a whole MB still round-trip
            megabytes = Decimal(value) / QUOTA_UNITS["MB"]
        return [format(megabytes.normalize(), "f"), "MB"]


class QuotaField(forms.MultiValueField):
    """Quota as number + unit; cleans to bytes, or None for "no limit"."""

    widget = QuotaWidget

    def __init__(self, **kwargs) -> None:
        fields = (
            forms.DecimalField(min_value=0, required=False),
            forms.ChoiceField(choices=[(u, u) for u in QUOTA_UNITS], required=False),
        )
        kwargs.setdefault("required", False)
        super().__init__(fields=fields, require_all_fields=False, **kwargs)

    def compress(self, data_list: Sequence[Any]) -> int | None:
        if not data_list or data_list[0] in (None, ""):
            return None
        number, unit = data_list[0], data_list[1] or DEFAULT_QUOTA_UNIT
        size = QUOTA_UNITS[unit]
        if number > Decimal(MAX_QUOTA) / size:
            limit = MAX_QUOTA // size
            raise forms.ValidationError(f"The quota can be at most {limit:,} {unit}.")
        return int((number * size).to_integral_value(rounding=ROUND_HALF_UP))


# --- addresses: a local part and one of the tenant's domains per row -------------------

MAX_ADDRESS_ROWS = 100


def _split_address(value: Any) -> tuple[str, str]:
    """(local part, stored domain) of an address as shown ("jane@bücher.example")."""
    if isinstance(value, list | tuple):
        local, domain = (list(value) + ["", ""])[:2]
        return str(local or ""), str(domain or "")
    local, _, domain = str(value).rpartition("@")
    with contextlib.suppress(InvalidAddress):  # shown as it is; the services will refuse it
        domain = normalize_domain(domain)
    return local, domain


class AddressesWidget(forms.Widget):
    """Rows of "local part @ domain select", posted as the lists <name>_local and
    <name>_domain. One empty row for a new address; app.js adds more rows in place."""

    template_name = "accounts/widgets/addresses.html"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs)
        self.domain_groups: list[tuple[str | None, list[str]]] = []

    def value_from_datadict(self, data, files, name) -> list[tuple[str, str]]:
        getlist = getattr(data, "getlist", lambda key: data.get(key) or [])
        locals_ = getlist(f"{name}_local")[:MAX_ADDRESS_ROWS]
        domains = getlist(f"{name}_domain")[:MAX_ADDRESS_ROWS]
        return list(zip_longest(locals_, domains, fillvalue=""))

    def value_omitted_from_data(self, data, files, name) -> bool:
        return f"{name}_local" not in data and f"{name}_domain" not in data

    def get_context(self, name, value, attrs) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        rows = [_split_address(v) for v in (value or [])]
        known = {d for _, names in self.domain_groups for d in names}
        groups = [
            (label, [(d, display_domain(d)) for d in names]) for label, names in self.domain_groups
        ]
        stray = sorted({d for _, d in rows if d and d not in known})
        if stray:  # an address on a domain not offered (yet): keep it selectable
            groups.append(("Other", [(d, display_domain(d)) for d in stray]))
        default = rows[-1][1] if rows else next((o[0][0] for _, o in groups if o), "")
        rows.append(("", default))
        context["widget"].update(
            rows=[{"local": local, "domain": domain} for local, domain in rows],
            groups=groups,
            grouped=len(groups) > 1,
            has_domains=any(options for _, options in groups),
        )
        return context

    def format_value(self, value: Any) -> Any:
        return value


class AddressesField(forms.Field):
    """Addresses built from a local part and a picked domain; cleans to "local@domain"
    strings in the order given (the first is the primary). The services check the rest:
    the address format, that it is free, that the tenant owns the domain."""

    widget = AddressesWidget

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def set_domains(self, groups: list[tuple[str | None, list[str]]]) -> None:
        """The domains to offer: (tenant label or None, [stored domain names]) groups."""
        self.widget.domain_groups = groups

    def to_python(self, value: Any) -> list[str]:
        if not value:
            return []
        if isinstance(value, str):
            value = value.splitlines()
        addresses = []
        for row in value:
            local, domain = (s.strip() for s in _split_address(row))
            if not local:
                continue  # an empty row (its domain select always has a value)
            if "@" in local:
                raise forms.ValidationError(
                    f"Enter only the part before the @ in '{local}' and pick the domain."
                )
            if not domain:
                raise forms.ValidationError(f"Pick a domain for '{local}'.")
            addresses.append(f"{local}@{domain}")
        return addresses


def _limit(label: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label, required=False, min_value=0, help_text="Empty means no limit."
    )


class PrincipalForm(ServiceErrorsMixin, forms.Form):
    """Name, description, quota, password, addresses and limits (fields by type)."""

    tenant = forms.ChoiceField(required=False, help_text="Superadmins only; empty for none.")
    # The browser takes the text box before a password box for the user name and would fill
    # in this console's login: autocomplete="off" on both (the name is another principal's).
    name = forms.CharField(max_length=255, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    description = forms.CharField(
        max_length=1024, required=False, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    quota = QuotaField(help_text="Empty or 0 means no limit.")
    secrets = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the current password.",
    )
    emails = AddressesField(label="Email addresses", help_text="The first one is the primary.")
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
        domains: list[tuple[str | None, list[str]]] | None = None,
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
        if "emails" in self.fields:
            self.fields["emails"].set_domains(domains or [])
        if principal is None and "secrets" in self.fields:
            self.fields["secrets"].help_text = "Leave empty for an account that cannot log in."
        creating_in_tenant = (
            principal is None and actor.reaches_all_tenants and type_ != PrincipalType.TENANT
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
    """The principal list's query string (tab, search, sort; paging is
    mailadmin.api.pagination's)."""

    type = forms.ChoiceField(choices=PrincipalType.choices, required=False)
    q = forms.CharField(required=False, max_length=255)
    sort = forms.ChoiceField(
        choices=[(s, s) for s in ("name", "-name", "created", "-created")], required=False
    )


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
