"""Domain pages: the DNS status of every domain, and one domain's records with a live check.

HTMX requests get the named partial (`#domain-table`, `#dns-check-run`, `#dkim-form`); full
requests the page. Foreign and missing domains are both 404.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.emails import display_domain
from apps.accounts.permissions import Perm
from apps.domains import selectors, services
from apps.domains.forms import DkimKeyForm
from mailadmin.api.pagination import paginate
from mailadmin.core.decorators import permission_required
from mailadmin.core.progress import task_run_list
from mailadmin.core.rendering import redirect_after_form, render_form, render_page
from mailadmin.core.tenants import narrow
from mailadmin.errors import NotFound, ServiceError

PAGE_SIZE = 50
MAX_TOTAL = 10_000


def _page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() and 0 < int(value) < 10**6 else 1


@permission_required(Perm.DOMAIN_LIST, Perm.DNS_RECORD_GET)
def domain_list(request: HttpRequest) -> HttpResponse:
    actor = request.user
    search = (request.GET.get("q") or "").strip()[:255]
    page_number = _page_number(request.GET.get("page"))
    queryset = narrow(selectors.domain_list(actor=actor, search=search), request)
    page = paginate(queryset, page=page_number, limit=PAGE_SIZE, max_total=MAX_TOTAL)
    pages = max(1, -(-page.total // PAGE_SIZE))
    for domain in page.items:
        domain.display_name = display_domain(domain.name)
        domain.profile = getattr(domain, "domain_profile", None)

    def link(**changes) -> str:
        query = {"q": search, "page": page_number, **changes}
        return "?" + urlencode({k: v for k, v in query.items() if v not in ("", None)})

    context = {
        "page": page,
        "search": search,
        "page_number": page_number,
        "pages": pages,
        "prev_url": link(page=page_number - 1) if page_number > 1 else None,
        "next_url": link(page=page_number + 1) if page_number < pages else None,
        "show_tenant": actor.is_superuser,
        "can_check": actor.has_permission(Perm.DNS_CHECK),
    }
    return render_page(request, "domains/domain_list.html", context, partial="domain-table")


def _get(request: HttpRequest, pk: int):
    try:
        return selectors.domain_get(actor=request.user, name_or_id=pk)
    except NotFound:
        raise Http404 from None


@permission_required(Perm.DOMAIN_GET, Perm.DNS_RECORD_GET)
def domain_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Reads only: a domain never checked has no profile yet, and the page says so."""
    domain = _get(request, pk)
    return render(request, "domains/domain_detail.html", _detail_context(request, domain))


def _detail_context(request: HttpRequest, domain, dkim_form: DkimKeyForm | None = None) -> dict:
    actor = request.user
    latest = {
        (r.record_type, r.name.lower(), r.expected): r
        for r in selectors.dns_results(actor=actor, domain=domain)
    }
    rows = [
        {
            **record,
            "result": latest.get((record["type"], record["name"].lower(), record["content"])),
        }
        for record in selectors.expected_records(domain=domain)
    ]
    run = task_run_list(actor=actor).filter(kind=selectors.dns_check_kind(domain.pk)).first()
    context = {
        "domain": domain,
        "display_name": display_domain(domain.name),
        "profile": selectors.domain_profile(domain),
        "rows": rows,
        # The latest check could not finish (our resolver failed): the status shown is older.
        "could_not_check": any(r["result"] and r["result"].status == "error" for r in rows),
        "run": run,
        "can_check": actor.has_permission(Perm.DNS_CHECK),
        "can_create_dkim": actor.has_permission(Perm.DKIM_SIGNATURE_CREATE),
        "dkim_form": dkim_form or DkimKeyForm(),
    }
    return context


@require_POST
@permission_required(Perm.DKIM_SIGNATURE_CREATE)
def domain_dkim_create(request: HttpRequest, pk: int) -> HttpResponse:
    domain = _get(request, pk)
    form = DkimKeyForm(request.POST)
    if form.is_valid():
        try:
            key = services.dkim_key_create(
                actor=request.user,
                domain=domain,
                algorithm=form.cleaned_data["algorithm"],
                selector=form.cleaned_data["selector"] or None,
            )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Created DKIM key {key.selector}. Publish its record.")
            return redirect_after_form(request, reverse("domains:detail", args=[domain.pk]))
    if request.htmx:
        context = {"domain": domain, "dkim_form": form}
    else:
        context = _detail_context(request, domain, dkim_form=form)
    return render_form(
        request, "domains/domain_detail.html", context, form=form, partial="dkim-form"
    )


@require_POST
@permission_required(Perm.DNS_CHECK)
def domain_dns_check(request: HttpRequest, pk: int) -> HttpResponse:
    domain = _get(request, pk)
    run = services.domain_dns_check_start(actor=request.user, domain=domain)
    if request.htmx:
        return render(request, "core/task_progress.html", {"run": run})
    return redirect("domains:detail", pk=pk)


@require_POST
@permission_required(Perm.DNS_CHECK)
def domain_dns_check_all(request: HttpRequest) -> HttpResponse:
    """ "Check all": one run over every domain the user may see, its progress shown here."""
    run = services.domain_dns_check_all_start(actor=request.user)
    if request.htmx:
        return render(request, "core/task_progress.html", {"run": run})
    return redirect("domains:index")
