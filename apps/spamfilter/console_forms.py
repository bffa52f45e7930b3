"""Forms of the spam filter console pages (apps.spamfilter.console_views).

They only carry the input: the rules (what a list entry may be, the spam settings, an
empty message) are the services', whose messages land beside the field they name.
"""

from __future__ import annotations

from django import forms

from apps.spamfilter.forms import MAX_MESSAGE, RemoteIpField
from apps.spamfilter.models import SenderListEntry
from mailadmin.core.forms import ServiceErrorsMixin


class BayesTrainForm(ServiceErrorsMixin, forms.Form):
    kind = forms.ChoiceField(
        label="Learn it as",
        choices=[("spam", "Spam"), ("ham", "Ham (not spam)")],
        widget=forms.RadioSelect,
        initial="spam",
        error_messages={"required": "Choose spam or ham."},
    )
    account = forms.CharField(
        label="Account",
        required=False,
        max_length=255,
        help_text="An account's name or id; empty: the global model (superadmins only).",
    )
    message = forms.CharField(
        label="Message",
        required=False,
        strip=False,
        max_length=MAX_MESSAGE,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        help_text="The whole message: headers, a blank line, the body. Or upload it below.",
    )
    upload = forms.FileField(label="Or upload a message file (.eml)", required=False)

    def clean_upload(self):
        upload = self.cleaned_data.get("upload")
        if upload is not None and upload.size > MAX_MESSAGE:
            raise forms.ValidationError(
                f"The file is larger than {MAX_MESSAGE // 1_000_000} MB.", code="too_large"
            )
        return upload

    def raw_message(self) -> bytes:
        """The uploaded file, else the pasted text (the service refuses an empty one)."""
        upload = self.cleaned_data.get("upload")
        if upload is not None:
            return upload.read(MAX_MESSAGE + 1)
        return self.cleaned_data.get("message", "").encode("utf-8", "surrogateescape")


class AccountSearchForm(forms.Form):
    q = forms.CharField(label="Account", required=False, max_length=255)


class DmarcTroubleshootForm(ServiceErrorsMixin, forms.Form):
    """The fields of POST /api/troubleshoot/dmarc (remoteIp, ehloDomain, mailFrom, body)."""

    remote_ip = RemoteIpField(label="Sending IP address (remoteIp)", required=False)
    ehlo_domain = forms.CharField(
        label="HELO/EHLO name (ehloDomain)", required=False, max_length=255
    )
    mail_from = forms.CharField(
        label="Envelope sender, MAIL FROM (mailFrom)", required=False, max_length=512
    )
    body = forms.CharField(
        label="Message (body)",
        strip=False,
        max_length=MAX_MESSAGE,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text="The whole message as received: DKIM, ARC and DMARC need it.",
        error_messages={"required": "Paste the message to check."},
    )

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError("Paste the message to check.")
        return body


class SenderListEntryForm(ServiceErrorsMixin, forms.Form):
    """One entry to add to a mailbox's list; apps.spamfilter.sender_lists checks it."""

    address = forms.CharField(label="Add", required=False, max_length=320, strip=False)

    def __init__(self, *args, prefix: str, **kwargs) -> None:
        super().__init__(*args, prefix=prefix, **kwargs)
        # Four of these on one page (the prefix is the list): name each box after its list.
        title = dict(SenderListEntry.LISTS).get(prefix)
        if title:
            self.fields["address"].label = f"{title}: new entry"


LEVEL_CHOICES = [
    ("on", "On"),
    ("off", "Off: every message to the inbox (block lists still hold)"),
    ("exclusive", "Exclusive: only safe-listed senders"),
]


class SpamSettingForm(ServiceErrorsMixin, forms.Form):
    """The provisioning API's spam settings, named as it names them so its messages land
    beside the field (sender_lists.setting_update validates)."""

    filterlevel = forms.CharField(
        label="Spam filter", required=False, widget=forms.Select(choices=LEVEL_CHOICES)
    )
    sendtodomainquarantine = forms.BooleanField(
        label="Send spam to the domain's quarantine", required=False
    )
    quarantineowner = forms.CharField(
        label="Quarantine owner", required=False, max_length=320, help_text="An address."
    )

    def raw(self) -> dict:
        """The fields as the API would receive them (a missing field stays missing)."""
        raw: dict = {}
        if "filterlevel" in self.data:
            raw["filterlevel"] = self.cleaned_data.get("filterlevel", "")
        raw["sendtodomainquarantine"] = bool(self.cleaned_data.get("sendtodomainquarantine"))
        raw["quarantineowner"] = self.cleaned_data.get("quarantineowner", "")
        return raw
