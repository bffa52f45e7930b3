"""The settings page: every stored key by group (the key up to its last dot), a page at a
time, with inline edit and delete, and a form to add one. Superadmins only."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from apps.accounts.permissions import Perm
from apps.config import keys, selectors, services
from apps.config.models import MAX_KEY, MAX_VALUE
from mailadmin.api.pagination import paginate_query
from mailadmin.core.decorators import permission_required
from mailadmin.core.forms import ServiceErrorsMixin
from mailadmin.core.rendering import redirect_after_form, render_form, render_page
from mailadmin.errors import ServiceError

TEMPLATE = "config/settings.html"
PAGE_SIZE = 100


def superadmin_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The store is server-wide: a permission handed to anyone else still gets a 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            selectors.require_superadmin(request.user)
        except selectors.ServerWideOnly as exc:
            raise PermissionDenied(exc.message) from None
        return view(request, *args, **kwargs)

    return wrapper


class SettingForm(ServiceErrorsMixin, forms.Form):
    key = forms.CharField(
        label="Key", max_length=MAX_KEY, help_text="e.g. spam-filter.rule.MISSING_DATE.score"
    )
    value = forms.CharField(
        label="Value", max_length=MAX_VALUE, required=False, strip=False,
        widget=forms.TextInput,
    )  # fmt: skip

    def add_service_error(self, exc: ServiceError) -> None:
        # A value's check names the key as its field; it belongs beside the value.
        self.add_error("key" if exc.field in ("key", "prefix") else "value", exc.message)


def _dom_id(key: str) -> str:
    return "setting-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _row(key: str, value: str) -> dict:
    group, _, name = key.rpartition(".")
    return {"key": key, "value": value, "group": group, "name": name, "dom_id": _dom_id(key)}


def _page(request: HttpRequest, *, add_form: SettingForm | None = None) -> HttpResponse:
    prefix = (request.GET.get("q") or "").strip()[:MAX_KEY]
    nav = paginate_query(
        request.GET, selectors.setting_list(actor=request.user, prefix=prefix), limit=PAGE_SIZE
    )
    rows = [_row(s.key, s.value) for s in nav.page.items]
    context = {
        "rows": rows,
        "pagination": nav,
        "q": prefix,
        "add_form": add_form or SettingForm(),
        "form": add_form or SettingForm(),
    }
    if add_form is not None:
        return render_form(request, TEMPLATE, context, partial="setting-add")
    return render_page(request, TEMPLATE, context, partial="settings-table")


@permission_required(Perm.SETTINGS_LIST)
@superadmin_only
def settings_index(request: HttpRequest) -> HttpResponse:
    return _page(request)


@permission_required(Perm.SETTINGS_LIST, Perm.SETTINGS_UPDATE)
@superadmin_only
def setting_save(request: HttpRequest) -> HttpResponse:
    """Add a setting (the form above the list) or save one row (`row=1`)."""
    if request.method != "POST":
        return redirect_after_form(request, reverse("config:index"))
    form = SettingForm(request.POST)
    is_row = request.POST.get("row") == "1"
    if form.is_valid():
        key, value = form.cleaned_data["key"], form.cleaned_data["value"]
        try:
            services.settings_update(
                actor=request.user, changes=[services.Insert(values=[(key, value)])]
            )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            if is_row and getattr(request, "htmx", False):
                stored = selectors.setting_values(actor=request.user, keys=[key], prefixes=[])
                context = {"row": _row(key, stored.get(key, value)), "saved": True}
                return render_page(request, TEMPLATE, context, partial="setting-row")
            return redirect_after_form(request, reverse("config:index") + f"?q={key}")
    if is_row and getattr(request, "htmx", False):
        key = request.POST.get("key", "")
        context = {"row": _row(key, request.POST.get("value", "")), "row_form": form}
        return render_form(request, TEMPLATE, context, form=form, partial="setting-row")
    return _page(request, add_form=form)


@permission_required(Perm.SETTINGS_LIST, Perm.SETTINGS_DELETE)
@superadmin_only
def setting_delete(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        key = request.POST.get("key", "")
        try:
            keys.check_key(key)
            services.settings_update(actor=request.user, changes=[services.Delete(keys=[key])])
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            if getattr(request, "htmx", False):
                return HttpResponse("")  # the row goes away
            messages.success(request, f"Deleted {key}.")
    return redirect_after_form(request, reverse("config:index"))
