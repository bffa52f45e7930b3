"""One rule for every HTML view: HTMX requests get the named partial, others the page."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render


def render_page(
    request, template: str, context: dict, *, partial: str | None = None, status: int = 200
) -> HttpResponse:
    """`partial` names a `{% partialdef %}` of `template`, called after the DOM id it fills."""
    if partial and getattr(request, "htmx", False):
        template = f"{template}#{partial}"
    return render(request, template, context, status=status)
