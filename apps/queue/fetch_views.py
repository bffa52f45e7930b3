"""Fetch job pages (console): the jobs with their last run, a job's settings (the edit
form) with Validate / Fetch now / Delete and its latest processed messages, the "New"
form, and the monitoring list (failed or stored) with a delete per entry.

Forms answer 422 with their errors; HTMX requests get the named partial. Another
tenant's job or entry (or a missing one) is 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.permissions import Perm
from apps.queue import fetch_selectors as selectors
from apps.queue import fetch_services as services
from apps.queue.fetch_forms import FetchJobForm
from apps.queue.models import FetchEntry
from mailadmin.api.pagination import paginate_query
from mailadmin.core.decorators import permission_required
from mailadmin.core.rendering import redirect_after_form, render_form, render_page
from mailadmin.core.tenants import narrow
from mailadmin.errors import NotFound, ServiceError

RECENT_ENTRIES = 20


def _job(request: HttpRequest, job_uuid):
    try:
        return selectors.fetch_job_get(actor=request.user, job_uuid=job_uuid)
    except NotFound:
        raise Http404 from None


def _need(request: HttpRequest, permission: str) -> None:
    if not request.user.has_permission(permission):
        raise PermissionDenied(f"You do not have the permission '{permission}' needed for this.")


@permission_required(Perm.MAILBOX_FETCH_LIST)
def fetch_list(request: HttpRequest) -> HttpResponse:
    search = (request.GET.get("q") or "").strip()[:320]
    jobs = narrow(selectors.fetch_job_list(actor=request.user, search=search), request)
    context = {
        "pagination": paginate_query(request.GET, jobs),
        "search": search,
        "show_tenant": request.user.reaches_all_tenants,
        "can_create": request.user.has_permission(Perm.MAILBOX_FETCH_CREATE),
    }
    return render_page(request, "queue/fetch_list.html", context, partial="fetch-table")


@permission_required(Perm.MAILBOX_FETCH_CREATE)
def fetch_create(request: HttpRequest) -> HttpResponse:
    form = FetchJobForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.fetch_job_create(actor=request.user, values=form.values())
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Fetch job for {job.mailbox_address} created.")
            return redirect_after_form(request, reverse("queue:fetch-detail", args=[job.uuid]))
    return render_form(request, "queue/fetch_form.html", {"form": form}, partial="fetch-form")


@permission_required(Perm.MAILBOX_FETCH_GET)
def fetch_detail(request: HttpRequest, job_uuid) -> HttpResponse:
    """The job's settings as a form (saved with POST, 422 on errors), its last run, and
    the latest processed messages."""
    job = _job(request, job_uuid)
    can_update = request.user.has_permission(Perm.MAILBOX_FETCH_UPDATE)
    form = FetchJobForm(request.POST or None, job=job)
    if request.method == "POST":
        _need(request, Perm.MAILBOX_FETCH_UPDATE)
        if form.is_valid():
            try:
                job = services.fetch_job_update(actor=request.user, job=job, values=form.values())
            except ServiceError as exc:
                form.add_service_error(exc)
            else:
                messages.success(request, "Saved.")
                return redirect_after_form(request, reverse("queue:fetch-detail", args=[job.uuid]))
    entries = selectors.fetch_entry_list(actor=request.user, job=job)[:RECENT_ENTRIES]
    context = {
        "job": job,
        "form": form,
        "entries": entries,
        "can_update": can_update,
        "can_delete": request.user.has_permission(Perm.MAILBOX_FETCH_DELETE),
    }
    return render_form(request, "queue/fetch_detail.html", context, partial="fetch-form")


@require_POST
@permission_required(Perm.MAILBOX_FETCH_UPDATE)
def fetch_validate(request: HttpRequest, job_uuid) -> HttpResponse:
    job = _job(request, job_uuid)
    result = services.fetch_job_validate(actor=request.user, job=job)
    context = {"job": job, "result": result}
    if request.htmx:
        return render(request, "queue/fetch_detail.html#fetch-validation", context)
    (messages.success if result.ok else messages.error)(request, result.message)
    return redirect("queue:fetch-detail", job.uuid)


@require_POST
@permission_required(Perm.MAILBOX_FETCH_UPDATE)
def fetch_run(request: HttpRequest, job_uuid) -> HttpResponse:
    """Fetch now: the run's progress in place (htmx), else back to the job."""
    job = _job(request, job_uuid)
    run = services.fetch_job_run_start(actor=request.user, job=job)
    if request.htmx:
        return render(request, "core/task_progress.html", {"run": run})
    messages.info(request, "Fetching now.")
    return redirect("queue:fetch-detail", job.uuid)


@require_POST
@permission_required(Perm.MAILBOX_FETCH_DELETE)
def fetch_delete(request: HttpRequest, job_uuid) -> HttpResponse:
    job = _job(request, job_uuid)
    services.fetch_job_delete(actor=request.user, job=job)
    messages.success(request, f"Fetch job for {job.mailbox_address} deleted.")
    return redirect_after_form(request, reverse("queue:fetch-list"))


@permission_required(Perm.MAILBOX_FETCH_LIST)
def fetch_monitoring(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or ""
    status = status if status in selectors.ENTRY_STATUSES else ""
    job = None
    if request.GET.get("job"):
        job = _job(request, request.GET["job"])
    entries = narrow(
        selectors.fetch_entry_list(actor=request.user, status=status, job=job), request
    )
    context = {
        "pagination": paginate_query(request.GET, entries),
        "status": status,
        "job": job,
        "statuses": FetchEntry.Status.choices,
        "can_delete": request.user.has_permission(Perm.MAILBOX_FETCH_DELETE),
    }
    return render_page(request, "queue/fetch_monitoring.html", context, partial="entry-table")


@require_POST
@permission_required(Perm.MAILBOX_FETCH_DELETE)
def fetch_entry_delete(request: HttpRequest, entry_id: int) -> HttpResponse:
    try:
        entry = selectors.fetch_entry_get(actor=request.user, entry_id=entry_id)
    except NotFound:
        raise Http404 from None
    services.fetch_entry_delete(actor=request.user, entry=entry)
    if request.htmx:
        return HttpResponse("")  # the row is swapped out
    messages.success(request, "Monitoring entry deleted.")
    back = request.POST.get("next") or ""
    return redirect(back if back.startswith("/queue/fetch/") else reverse("queue:fetch-monitoring"))
