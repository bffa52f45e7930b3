"""HTML input of the fetch job pages (checking only; the rules live in
apps.queue.fetch_services, so the console and the API say the same)."""

from __future__ import annotations

from django import forms

from apps.queue import fetch_services
from apps.queue.fetch_services import FetchValues
from apps.queue.models import FetchJob
from mailadmin.core.forms import ServiceErrorsMixin
from mailadmin.errors import ServiceError

# A service refusal names the API's field; the form field it belongs beside.
_FORM_FIELD = {"type": "protocol", "useSsl": "security", "interval": "interval_minutes"}


class FetchJobForm(ServiceErrorsMixin, forms.Form):
    mailbox = forms.CharField(
        max_length=320, label="Local mailbox", help_text="An address of an account here."
    )
    protocol = forms.ChoiceField(choices=FetchJob.Protocol.choices, label="Protocol")
    host = forms.CharField(max_length=255, label="Remote server")
    security = forms.ChoiceField(
        choices=FetchJob.Security.choices,
        label="Encryption",
        help_text="Implicit TLS (IMAPS 993, POP3S 995) or STARTTLS; certificates are verified.",
    )
    port = forms.IntegerField(
        min_value=0, max_value=65535, required=False, help_text="Empty: the protocol's default."
    )
    # The remote account's credentials: never the browser's saved login for this console.
    username = forms.CharField(
        max_length=320,
        label="Remote user name",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    password = forms.CharField(
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    folders = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="IMAP folders, one a line (empty: INBOX). POP3 has none.",
    )
    delete_on_server = forms.BooleanField(
        required=False, label="Delete mails on the server once stored"
    )
    active = forms.BooleanField(required=False, initial=True, label="Active (fetch on schedule)")
    interval_minutes = forms.IntegerField(
        min_value=fetch_services.MIN_INTERVAL,
        max_value=fetch_services.MAX_INTERVAL,
        initial=fetch_services.DEFAULT_INTERVAL,
        label="Interval (minutes)",
    )

    def __init__(self, *args, job: FetchJob | None = None, **kwargs) -> None:
        if job is not None and "initial" not in kwargs:  # (a bound form ignores it)
            kwargs["initial"] = {
                "mailbox": job.mailbox_address,
                "protocol": job.protocol,
                "host": job.host,
                "security": job.security,
                "port": job.port,
                "username": job.username,
                "folders": "\n".join(job.folders),
                "delete_on_server": job.delete_on_server,
                "active": job.active,
                "interval_minutes": job.interval_minutes,
            }
        super().__init__(*args, **kwargs)
        if job is not None:
            self.fields["password"].required = False
            self.fields["password"].help_text = "Empty keeps the stored password."

    def values(self) -> FetchValues:
        data = self.cleaned_data
        folders = [line.strip() for line in data["folders"].splitlines() if line.strip()]
        return FetchValues(
            mailbox=data["mailbox"],
            active=data["active"],
            protocol=data["protocol"],
            host=data["host"],
            port=data["port"] or 0,
            security=data["security"],
            username=data["username"],
            password=data["password"] or None,
            folders=folders,
            delete_on_server=data["delete_on_server"],
            interval_minutes=data["interval_minutes"],
        )

    def add_service_error(self, exc: ServiceError) -> None:
        exc.field = _FORM_FIELD.get(exc.field or "", exc.field)
        super().add_service_error(exc)
