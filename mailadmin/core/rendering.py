"""One rule for every HTML view: HTMX requests get the named partial, others the page.

Forms follow one more rule: a form that failed validation answers `422 Unprocessable
Content` with itself re-rendered. htmx 2 swaps no 4xx by default; the page's htmx config
(`templates/base.html`) swaps `422` and only `422`, so the errors reach the screen while a
`403` or `500` never replaces a form with an error page.
"""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

FORM_INVALID = 422


def render_page(
    request, template: str, context: dict, *, partial: str | None = None, status: int = 200
) -> HttpResponse:
    """`partial` names a `{% partialdef %}` of `template`, called after the DOM id it fills."""
    if partial and getattr(request, "htmx", False):
        template = f"{template}#{partial}"
    return render(request, template, context, status=status)


def render_form(
    request: HttpRequest,
    template: str,
    context: dict,
    *,
    form: forms.BaseForm | None = None,
    partial: str | None = None,
    status: int | None = None,
) -> HttpResponse:
    """The page (or partial) holding `form` (default: `context["form"]`).

    `422` when the form carries errors, else `200`; `status` overrides both for the rare
    answer that means something else (`429` for a locked login).
    """
    form = context["form"] if form is None else form
    if status is None:
        status = FORM_INVALID if form.errors else 200
    return render_page(request, template, context, partial=partial, status=status)


def redirect_after_form(request: HttpRequest, url: str) -> HttpResponse:
    """After a successful POST: a normal redirect, or `HX-Redirect` for htmx (whose
    XMLHttpRequest would follow a 302 silently and swap the next page into the form)."""
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)
