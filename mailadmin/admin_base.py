"""What every ModelAdmin of mailadmin shares.

Two rules hold in the Django admin as everywhere else:

- **Writes go through services.** A `ServiceAdmin` saves and deletes by calling the app's
  service (which checks, writes atomically and audits with interface "admin", set by the
  audit middleware for /admin/); a service's refusal (`ServiceError`) is shown on the form
  or as a message, never as a 500. Models without a service are `ReadOnlyAdmin`.
- **Nothing renders or counts a whole table** (a million principals): counts stop at
  `COUNT_CAP`, list filters offer no facet counts, the delete confirmation lists the
  chosen rows rather than walking everything related to them, and a bulk delete takes at
  most `BULK_DELETE_CAP` rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import model_ngettext
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy

from mailadmin.errors import ServiceError

COUNT_CAP = 10_000
BULK_DELETE_CAP = 100


class CappedPaginator(Paginator):
    """Counts matching rows up to `cap` and no further; pages beyond it need a search.

    `count_capped` tells the templates to say "more than 10000" rather than a number.
    """

    cap = COUNT_CAP
    count_capped = False

    @cached_property
    def count(self) -> int:
        if not hasattr(self.object_list, "count"):
            return len(self.object_list)
        # Without its ordering: any index counts the rows, where the list's order would
        # make the database walk the sort index (and the rows it names) to the cap.
        counted = self.object_list.order_by()[: self.cap + 1].count()
        self.count_capped = counted > self.cap
        return min(counted, self.cap)


class ScaledAdmin(admin.ModelAdmin):
    """List pages that cost the same with a thousand rows or a million."""

    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50

    def get_deleted_objects(self, objs, request: HttpRequest):
        """The confirmation page lists the chosen rows only: Django's default walks every
        related row (for a tenant, all its principals), and the service decides what goes
        with them anyway."""
        objs = list(objs)
        refused = {
            str(self.opts.verbose_name)
            for obj in objs
            if not self.has_delete_permission(request, obj)
        }
        summary = [self.delete_summary(obj) for obj in objs]
        return summary, {self.opts.verbose_name_plural: len(objs)}, refused, []

    def delete_summary(self, obj) -> str:
        """One line of the delete confirmation; say here what goes with the row."""
        return f"{self.opts.verbose_name.capitalize()}: {obj}"


class ServiceAdmin(ScaledAdmin):
    """A model the admin may write, through its service: subclasses implement
    `save_model` and `delete_model` by calling it, with `request.user` as the actor."""

    # ServiceError.field (API field names) -> the form field that shows the message.
    service_error_fields: dict[str, str] = {}

    def save_model(self, request, obj, form, change) -> None:
        raise NotImplementedError(f"{type(self).__name__} must save through a service")

    def delete_model(self, request, obj) -> None:
        raise NotImplementedError(f"{type(self).__name__} must delete through a service")

    def save_related(self, request, form, formsets, change) -> None:
        """Nothing: the service wrote the related rows (form.save_m2m() would write again,
        around it)."""

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            actions["delete_selected"] = (
                delete_selected,
                "delete_selected",
                delete_selected.short_description,
            )
        return actions

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        error: ServiceError | None = getattr(request, "_service_error", None)
        if error is None:
            return form_class
        field = self.service_error_fields.get(error.field or "", error.field)

        class RefusedByService(form_class):
            def clean(self):
                cleaned = super().clean()
                self.add_error(field if field in self.fields else None, error.message)
                return cleaned

        return RefusedByService

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A service's refusal rolls the save back and shows the form again with the
        service's message on the field it names."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as error:
            if request.method != "POST":
                raise
            request._service_error = error
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceError as error:
            self.message_user(request, error.message, messages.ERROR)
            opts = self.opts
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            return HttpResponseRedirect(url)


class ReadOnlyAdmin(ScaledAdmin):
    """Rows only mailadmin itself writes, or that no service edits: visible, not writable."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.action(
    permissions=["delete"],
    description=gettext_lazy("Delete selected %(verbose_name_plural)s"),
)
def delete_selected(modeladmin: ServiceAdmin, request: HttpRequest, queryset):
    """Django's action, with each row deleted by the service (one refusal does not undo
    the others) and at most BULK_DELETE_CAP rows at a time."""
    rows = list(queryset[: BULK_DELETE_CAP + 1])
    plural = modeladmin.opts.verbose_name_plural
    if len(rows) > BULK_DELETE_CAP:
        modeladmin.message_user(
            request, f"Select at most {BULK_DELETE_CAP} {plural} to delete at once.", messages.ERROR
        )
        return None
    if not request.POST.get("post"):
        chosen = queryset.model._default_manager.filter(pk__in=[row.pk for row in rows])
        return django_delete_selected(modeladmin, request, chosen)  # the confirmation page
    deleted = 0
    for row in rows:
        if not modeladmin.has_delete_permission(request, row):
            modeladmin.message_user(request, f"{row}: you can't delete this.", messages.ERROR)
            continue
        try:
            with transaction.atomic():
                modeladmin.log_deletions(request, [row])
                modeladmin.delete_model(request, row)
        except ServiceError as error:
            modeladmin.message_user(request, f"{row}: {error.message}", messages.ERROR)
            continue
        deleted += 1
    if deleted:
        noun = model_ngettext(modeladmin.opts, deleted)
        modeladmin.message_user(request, f"Deleted {deleted} {noun}.", messages.SUCCESS)
    return None
