"""Console forms of the spam filter pages."""

from __future__ import annotations

import re

from django import forms

from apps.spamfilter.services import valid_ip
from mailadmin.core.forms import ServiceErrorsMixin

MAX_MESSAGE = 10_000_000
# The url-encoded form of a pasted message of MAX_MESSAGE characters: up to three bytes a
# byte (%XX), and the other fields beside it.
MAX_FORM_BODY = 3 * MAX_MESSAGE + 1_000_000


class RemoteIpField(forms.CharField):
    """A sending IP address, read as the services read it (services.valid_ip): an address
    literal like `[192.0.2.1]` or `[IPv6:2001:db8::1]` too. The cleaned value is the
    address in canonical text, "" when empty."""

    default_error_messages = {"invalid": "Enter a valid IPv4 or IPv6 address."}

    def __init__(self, **kwargs) -> None:
        super().__init__(max_length=64, **kwargs)

    def to_python(self, value) -> str:
        text = super().to_python(value)
        if text in self.empty_values:
            return ""
        address = valid_ip(text)
        if not address:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return address


class ClassifyForm(ServiceErrorsMixin, forms.Form):
    message = forms.CharField(
        label="Message",
        strip=False,
        max_length=MAX_MESSAGE,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text="The whole message as received: headers, a blank line, the body.",
        error_messages={"required": "Paste the message to classify."},
    )
    remote_ip = RemoteIpField(label="Sending IP address", required=False)
    ehlo_domain = forms.CharField(label="HELO/EHLO name", required=False, max_length=255)
    env_from = forms.CharField(label="Envelope sender (MAIL FROM)", required=False, max_length=512)
    env_rcpt_to = forms.CharField(
        label="Envelope recipients (RCPT TO)",
        required=False,
        max_length=10_000,
        help_text="Separated by commas or spaces.",
    )
    is_tls = forms.BooleanField(label="Received over TLS", required=False)
    smtputf8 = forms.BooleanField(
        label="Sent with SMTPUTF8",
        required=False,
        help_text="MAIL FROM carried SMTPUTF8: raw UTF-8 in header fields is allowed.",
    )

    def clean_message(self) -> str:
        message = self.cleaned_data["message"]
        if not message.strip():
            raise forms.ValidationError("Paste the message to classify.")
        return message

    def clean_env_rcpt_to(self) -> list[str]:
        return [r for r in re.split(r"[\s,;]+", self.cleaned_data["env_rcpt_to"]) if r][:1000]
