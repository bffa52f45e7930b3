"""HTML input of the domain pages (checking only; the rules live in apps.domains.services)."""

from __future__ import annotations

from django import forms

from apps.accounts.principals.forms import QuotaField
from apps.domains import dkim, mailbox_fields
from mailadmin.core.forms import ServiceErrorsMixin
from mailadmin.errors import ServiceError


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


# --- mailboxes, aliases, catch-all, import ------------------------------------------------

_MB = 1024**2
# A service refusal names the provisioning field; the form field it belongs beside.
_FORM_FIELD = {f.api: f.attr for f in mailbox_fields.FIELDS} | {"size": "quota"}


class MailboxForm(ServiceErrorsMixin, forms.Form):
    """A mailbox's fields as the provisioning API has them; the size as a quota with a
    unit (MB/GB/TB) like the account form. The name and domain are set at creation only."""

    # The new mailbox's credentials: never the browser's saved login for this console.
    name = forms.CharField(
        max_length=64,
        help_text="The part before the @.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    domain = forms.ModelChoiceField(queryset=None, empty_label=None)
    display_name = forms.CharField(
        max_length=256, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        max_length=1024,
        help_text="At least 8 characters.",
    )
    quota = QuotaField(label="Size", required=True, help_text="Whole megabytes, at least 1 MB.")
    enabled = forms.BooleanField(required=False, initial=True)
    is_hidden = forms.BooleanField(required=False, label="Hidden from the address list")
    first_name = forms.CharField(max_length=64, required=False)
    last_name = forms.CharField(max_length=64, required=False)
    company = forms.CharField(max_length=128, required=False)
    department = forms.CharField(max_length=128, required=False)
    job_title = forms.CharField(max_length=128, required=False)
    address_line1 = forms.CharField(max_length=256, required=False, label="Street address")
    city = forms.CharField(max_length=128, required=False)
    state = forms.CharField(max_length=128, required=False)
    zip = forms.CharField(max_length=32, required=False, label="Zip or postal code")
    country = forms.CharField(max_length=128, required=False)
    business_number = forms.CharField(max_length=32, required=False, label="Business phone")
    mobile_number = forms.CharField(max_length=32, required=False, label="Mobile phone")
    home_number = forms.CharField(max_length=32, required=False, label="Home phone")
    pager_number = forms.CharField(max_length=32, required=False, label="Pager")
    fax_number = forms.CharField(max_length=32, required=False, label="Fax")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    forwarding_address = forms.CharField(
        max_length=320,
        required=False,
        label="Forward mail to",
        help_text="Empty: no forwarding.",
    )

    def __init__(self, *args, domains=None, creating: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.creating = creating
        if creating:
            self.fields["domain"].queryset = domains
            self.fields["password"].required = True
        else:
            del self.fields["name"]
            del self.fields["domain"]
            self.fields["password"].help_text = "Empty keeps the current password."

    def clean_quota(self) -> int:
        quota = self.cleaned_data.get("quota")
        if not quota or quota < _MB:
            raise forms.ValidationError("The size must be at least 1 MB.")
        if quota % _MB:
            raise forms.ValidationError("The size must be a whole number of megabytes.")
        return quota

    def values(self) -> dict:
        """The fields as mailbox_services takes them (attribute names, size in MB)."""
        data = dict(self.cleaned_data)
        data.pop("name", None)
        data.pop("domain", None)
        values = {k: v for k, v in data.items() if k != "quota"}
        values["size"] = data["quota"] // _MB
        if not values.get("password"):
            values.pop("password", None)
        return values

    def add_service_error(self, exc: ServiceError) -> None:
        field = _FORM_FIELD.get(exc.field or "", exc.field)
        self.add_error(field if field in self.fields else None, exc.message)


class DomainAliasForm(ServiceErrorsMixin, forms.Form):
    alias = forms.CharField(max_length=253, help_text="Mail to x@alias goes to x@this domain.")


class CatchAllForm(ServiceErrorsMixin, forms.Form):
    target = forms.CharField(
        max_length=320,
        required=False,
        label="Catch-all address",
        help_text="An address of an account of this tenant that receives mail sent to "
        "unknown addresses of the domain. Empty: unknown addresses are refused.",
    )


# 5,000 rows (the import's cap) of every field filled take about 10 MB.
MB = 1024 * 1024
IMPORT_MAX_BYTES = 10 * MB


class MailboxImportForm(ServiceErrorsMixin, forms.Form):
    file = forms.FileField(
        help_text="CSV with a header row: name, then the provisioning fields "
        "(displayName, password, size in MB, ...), as the export writes them."
    )

    def text(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:  # read into memory whole, so bounded first
            raise ServiceError(
                f"The file is larger than the {IMPORT_MAX_BYTES // MB} MB limit.", field="file"
            )
        raw = upload.read()
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ServiceError("The file is not UTF-8 text.", field="file") from None
