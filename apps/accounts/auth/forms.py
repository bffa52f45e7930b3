"""HTML input of login and the own-account security pages (checking, not doing)."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.names import name_problem
from apps.accounts.permissions import Perm, by_area
from mailadmin.core.forms import ServiceErrorsMixin


class LoginForm(forms.Form):
    username = forms.CharField(max_length=320, label="Name or e-mail address")
    password = forms.CharField(max_length=1024, strip=False, widget=forms.PasswordInput)


def current_password() -> forms.CharField:
    """Credential changes are confirmed with the account password, even in a session
    that passed two factors (views check it with login.confirm_password)."""
    return forms.CharField(
        max_length=1024,
        strip=False,
        label="Current password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"required": "Enter your current password."},
    )


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=32,
        label="Authentication code",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class TotpEnrolForm(CodeForm):
    password = current_password()


class ConfirmPasswordForm(forms.Form):
    """Turning two-factor authentication off, new recovery codes."""

    password = current_password()


class PasswordChangeForm(ServiceErrorsMixin, forms.Form):
    """Current password, the new one twice, and the code when two-factor login is on."""

    current = forms.CharField(
        label="Current password",
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new = forms.CharField(
        label="New password",
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new2 = forms.CharField(
        label="New password again",
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=32,
        help_text="Or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, *args, otp_enabled: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not otp_enabled:
            del self.fields["code"]

    def clean(self):
        data = super().clean()
        if data.get("new") and data.get("new2") is not None and data["new"] != data["new2"]:
            self.add_error("new2", "The two new passwords don't match.")
        return data


class AppPasswordForm(forms.Form):
    name = forms.CharField(max_length=255, label="Name (e.g. the device or mail client)")
    password = current_password()


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=255)
    password = current_password()

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if (problem := name_problem(name)) is not None:
            raise forms.ValidationError(problem)
        return name

    permissions = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="only permissions you hold; none ticked gives the key all of yours",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at (optional, UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        held = [p.value for p in Perm if p.value in actor.permissions]
        self.fields["permissions"].choices = [(p, p) for p in held]

    def permission_groups(self) -> list[dict]:
        """The permission checkboxes by area, for a fieldset (and a select-all) per area."""
        boxes = {str(box.data["value"]): box for box in self["permissions"]}
        return [
            {"area": area, "slug": slugify(area), "boxes": [boxes[p] for p in names]}
            for area, names in by_area(boxes)
        ]

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return value
