"""Reports pages: lists of DMARC, TLS-RPT and ARF reports with upload, one report, the
files that failed to ingest, and a per-domain dashboard whose charts draw API data.

HTMX requests get the named partial (`#report-table`, `#upload-result`); full requests
the page. Another tenant's report (or a missing one) is 404.
"""

from __future__ import annotations

import io
import ipaddress
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import Perm
from apps.reports import outgoing, selectors, services
from apps.reports.forms import ReportUploadForm
from apps.reports.models import Source
from apps.reports.serializers import parse_day
from mailadmin.api.pagination import paginate_query
from mailadmin.converters import is_id
from mailadmin.core.decorators import permission_required
from mailadmin.core.rendering import render_form, render_page
from mailadmin.core.tenants import narrow
from mailadmin.errors import NotFound, ServiceError
from mailadmin.tenancy import scope

PAGE_SIZE = 50
MAX_TOTAL = 10_000
RECORDS_PAGE = 100
GROUP_TITLES = {"dmarc": "DMARC aggregate", "tls": "TLS-RPT", "arf": "ARF and failure"}


def _visible_domains(request: HttpRequest):
    domains = scope(Principal.objects.filter(type=PrincipalType.DOMAIN), request.user)
    return narrow(domains, request).only("id", "name").order_by("name")[:500]


def _domain_choice(request: HttpRequest) -> Principal | None:
    value = (request.GET.get("domain") or "").strip()
    if not is_id(value):
        return None
    domain = scope(Principal.objects.filter(type=PrincipalType.DOMAIN), request.user)
    found = domain.filter(pk=int(value)).first()
    if found is None:
        raise Http404
    return found


def _filters(request: HttpRequest, group: str) -> tuple[selectors.ReportFilters, list[str]]:
    """The list's filters from the query string; bad values are dropped and reported."""
    problems = []
    since = until = None
    try:
        since = parse_day(request.GET.get("from") or None, "from")
    except ServiceError as exc:
        problems.append(exc.message)
    try:
        until = parse_day(request.GET.get("to") or None, "to", end_of_day=True)
    except ServiceError as exc:
        problems.append(exc.message)
    result = request.GET.get("result", "")
    return (
        selectors.ReportFilters(
            domain=_domain_choice(request),
            reporter=(request.GET.get("reporter") or "").strip()[:255],
            since=since,
            until=until,
            result=result if result in {"pass", "fail"} and group != "arf" else "",
            feedback_type=(request.GET.get("feedback-type") or "").strip()[:64]
            if group == "arf"
            else "",
        ),
        problems,
    )


def _list_context(request: HttpRequest, group: str) -> dict:
    filters, problems = _filters(request, group)
    queryset = narrow(
        selectors.report_list(actor=request.user, group=group, filters=filters), request
    )
    pagination = paginate_query(request.GET, queryset, limit=PAGE_SIZE, max_total=MAX_TOTAL)
    return {
        "group": group,
        "title": GROUP_TITLES[group],
        "page": pagination.page,
        "pagination": pagination,
        "filters": request.GET,
        "feedback_type": request.GET.get("feedback-type", ""),
        "problems": problems,
        "domains": _visible_domains(request),
        "show_tenant": request.user.reaches_all_tenants,
        "can_upload": request.user.has_permission(Perm.INCOMING_REPORT_CREATE),
    }


def _list_view(group: str):
    @permission_required(Perm.INCOMING_REPORT_LIST)
    def view(request: HttpRequest) -> HttpResponse:
        context = _list_context(request, group)
        context["form"] = ReportUploadForm()
        return render_page(request, "reports/report_list.html", context, partial="report-table")

    view.__name__ = f"{group}_report_list"
    return view


dmarc_list = _list_view("dmarc")
tls_list = _list_view("tls")
arf_list = _list_view("arf")


@require_POST
@permission_required(Perm.INCOMING_REPORT_CREATE)
def report_upload(request: HttpRequest) -> HttpResponse:
    """Several files at once; a large upload goes to a worker (live progress)."""
    form = ReportUploadForm(request.POST, request.FILES)
    context: dict = {"form": form, "can_upload": True}
    if form.is_valid():
        files = [(f.name, f.read()) for f in form.cleaned_data["files"]]
        try:
            if sum(len(d) for _, d in files) > settings.MAILADMIN_REPORTS_ASYNC_UPLOAD:
                context["run"] = services.report_upload_start(
                    actor=request.user, files=files, source=Source.UPLOAD
                )
            else:
                context["results"] = services.report_upload(
                    actor=request.user, files=files, source=Source.UPLOAD
                )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            context["form"] = ReportUploadForm()
    if not request.htmx:
        context.update(_list_context(request, "dmarc"))
    return render_form(
        request, "reports/report_list.html", context, form=form, partial="upload-form"
    )


def _get(request: HttpRequest, group: str, pk: int):
    try:
        return selectors.report_get(actor=request.user, group=group, report_id=pk)
    except NotFound:
        raise Http404 from None


def _detail_view(group: str):
    @permission_required(Perm.INCOMING_REPORT_GET)
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        report = _get(request, group, pk)
        context = {
            "report": report,
            "group": group,
            "title": GROUP_TITLES[group],
            "can_delete": request.user.has_permission(Perm.INCOMING_REPORT_DELETE),
        }
        if group == "dmarc":
            records = selectors.dmarc_record_list(report=report)
            pagination = paginate_query(
                request.GET, records, limit=RECORDS_PAGE, max_total=MAX_TOTAL
            )
            context.update(records=pagination.page, pagination=pagination)
        elif group == "tls":
            context["policies"] = [
                (p, [{k.replace("-", "_"): v for k, v in d.items()} for d in p.failure_details])
                for p in report.tls_policies.all()
            ]
        else:
            context["fields"] = sorted(report.details.get("fields", {}).items())
        return render_page(
            request, "reports/report_detail.html", context, partial="dmarc-records-box"
        )

    view.__name__ = f"{group}_report_detail"
    return view


dmarc_detail = _detail_view("dmarc")
tls_detail = _detail_view("tls")
arf_detail = _detail_view("arf")


@require_POST
@permission_required(Perm.INCOMING_REPORT_DELETE)
def report_delete(request: HttpRequest, group: str, pk: int) -> HttpResponse:
    if group not in selectors.GROUPS:
        raise Http404
    report = _get(request, group, pk)
    services.report_delete(actor=request.user, report=report)
    messages.success(request, f"Deleted the report {report.report_id} from {report.reporter}.")
    return redirect(f"reports:{group}")


@permission_required(Perm.INCOMING_REPORT_LIST)
def failure_list(request: HttpRequest) -> HttpResponse:
    queryset = narrow(selectors.ingest_failure_list(actor=request.user), request)
    pagination = paginate_query(request.GET, queryset, limit=PAGE_SIZE, max_total=MAX_TOTAL)
    context = {
        "group": "failed",
        "page": pagination.page,
        "pagination": pagination,
        "can_delete": request.user.has_permission(Perm.INCOMING_REPORT_DELETE),
        "show_tenant": request.user.reaches_all_tenants,
    }
    return render_page(request, "reports/failure_list.html", context, partial="failure-table")


@permission_required(Perm.INCOMING_REPORT_GET)
def failure_raw(request: HttpRequest, pk: int) -> FileResponse:
    """The file as it was received, to download and look at."""
    try:
        failure = selectors.ingest_failure_get(actor=request.user, failure_id=pk, with_raw=True)
    except NotFound:
        raise Http404 from None
    name = failure.filename.replace("/", "_").replace("\\", "_") or f"failed-{pk}"
    response = FileResponse(
        io.BytesIO(bytes(failure.raw)),
        as_attachment=True,
        filename=name,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
@permission_required(Perm.INCOMING_REPORT_DELETE)
def failure_delete(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        failure = selectors.ingest_failure_get(actor=request.user, failure_id=pk)
    except NotFound:
        raise Http404 from None
    services.ingest_failure_delete(actor=request.user, failure=failure)
    messages.success(request, f"Deleted the failed file {failure.filename}.")
    return redirect("reports:failed")


@permission_required(Perm.INCOMING_REPORT_LIST)
def dashboard(request: HttpRequest) -> HttpResponse:
    """One domain's DMARC picture (or all the actor's domains): charts from the summary API,
    the sources table rendered here from the same selector."""
    domain = _domain_choice(request)
    query = {"domain": domain.pk} if domain else {}
    summary_url = reverse("api-reports-dmarc-summary") + ("?" + urlencode(query) if query else "")
    context = {
        "group": "dashboard",
        "domain": domain,
        "domains": _visible_domains(request),
        "summary_url": summary_url,
        "sources": selectors.dmarc_sources(actor=request.user, domain=domain),
        "tls": selectors.tls_breakdown(actor=request.user, domain=domain),
    }
    return render(request, "reports/dashboard.html", context)


@permission_required(Perm.INCOMING_REPORT_LIST)
def source_detail(request: HttpRequest, ip: str) -> HttpResponse:
    """One sending source: its PTR name, figures and records, in the actor's reports (of
    one domain with ?domain=). A source none of them names is 404."""
    try:
        address = str(ipaddress.ip_address(ip))
    except ValueError:
        raise Http404 from None
    domain = _domain_choice(request)
    try:
        summary, records = selectors.dmarc_source(actor=request.user, ip=address, domain=domain)
    except NotFound:
        raise Http404 from None
    pagination = paginate_query(request.GET, records, limit=RECORDS_PAGE, max_total=MAX_TOTAL)
    query = {"domain": domain.pk} if domain else {}
    context = {
        "group": "dashboard",
        "domain": domain,
        "source": summary,
        "records": pagination.page,
        "pagination": pagination,
        "back_url": reverse("reports:dashboard") + ("?" + urlencode(query) if query else ""),
    }
    return render_page(request, "reports/source_detail.html", context, partial="source-records")


@permission_required(Perm.OUTGOING_REPORT_LIST)
def outgoing_list(request: HttpRequest) -> HttpResponse:
    """Our own queued and sent reports (server-wide: superadmins see them, others none)."""
    queryset = outgoing.outgoing_report_list(actor=request.user)
    pagination = paginate_query(request.GET, queryset, limit=PAGE_SIZE, max_total=MAX_TOTAL)
    context = {
        "group": "outgoing",
        "page": pagination.page,
        "pagination": pagination,
        "can_cancel": request.user.has_permission(Perm.OUTGOING_REPORT_DELETE),
    }
    return render_page(request, "reports/outgoing_list.html", context, partial="outgoing-table")


@require_POST
@permission_required(Perm.OUTGOING_REPORT_DELETE)
def outgoing_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        report = outgoing.outgoing_report_cancel(actor=request.user, report_id=pk)
    except NotFound:
        raise Http404 from None
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Cancelled the report {report.filename}.")
    return redirect("reports:outgoing")
