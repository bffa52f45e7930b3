"""Console forms of the reports pages."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from apps.reports.parsing import size_text
from mailadmin.core.forms import ServiceErrorsMixin

MAX_FILES = 50


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (Django's documented recipe)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None) -> list[UploadedFile]:
        single = super().clean
        if isinstance(data, list | tuple) and data:
            return [single(item, initial) for item in data]
        return [single(data or None, initial)]  # nothing chosen: "required"


class ReportUploadForm(ServiceErrorsMixin, forms.Form):
    files = MultipleFileField(
        label="Report files",
        help_text="DMARC (XML, .gz, .zip), TLS-RPT (JSON, .gz) or ARF / failure reports "
        "(.eml), or the whole report e-mails. Several at once.",
        error_messages={"required": "Choose at least one report file."},
    )

    def clean_files(self) -> list[UploadedFile]:
        files = self.cleaned_data["files"]
        if len(files) > MAX_FILES:
            raise forms.ValidationError(f"Upload at most {MAX_FILES} files at once.")
        cap = settings.MAILADMIN_REPORTS_MAX_UPLOAD  # the API's cap on its whole body
        if sum(f.size for f in files) > cap:  # each is read into memory, then stored
            raise forms.ValidationError(f"The upload is larger than the {size_text(cap)} limit.")
        return files
