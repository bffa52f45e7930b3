"""Domain pages: the DNS status of every domain, and one domain's records with a live check.

HTMX requests get the named partial (`#domain-table`, `#dns-check-run`, `#dkim-form`); full
requests the page. Foreign and missing domains are both 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.emails import display_domain
from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import Perm
from apps.domains import checks, mailbox_selectors, mailbox_views, selectors, services
from apps.domains.forms import DkimKeyForm, DomainCreateForm
from apps.domains.models import DomainProfile
from mailadmin.api.pagination import paginate_query
from mailadmin.core.decorators import permission_required
from mailadmin.core.forms import refusal_form
from mailadmin.core.progress import task_run_list
from mailadmin.core.rendering import FORM_INVALID, redirect_after_form, render_form, render_page
from mailadmin.core.tenants import narrow
from mailadmin.errors import NotFound, ServiceError

PAGE_SIZE = 50
MAX_TOTAL = 10_000


@permission_required(Perm.DOMAIN_LIST, Perm.DNS_RECORD_GET)
def domain_list(request: HttpRequest) -> HttpResponse:
    actor = request.user
    search = (request.GET.get("q") or "").strip()[:255]
    queryset = narrow(selectors.domain_list(actor=actor, search=search), request)
    pagination = paginate_query(request.GET, queryset, limit=PAGE_SIZE, max_total=MAX_TOTAL)
    for domain in pagination.page.items:
        domain.display_name = display_domain(domain.name)
        domain.profile = getattr(domain, "domain_profile", None)
    context = {
        "page": pagination.page,
        "pagination": pagination,
        "search": search,
        "show_tenant": actor.reaches_all_tenants,
        "can_check": actor.has_permission(Perm.DNS_CHECK),
        "can_create": actor.has_permission(Perm.DOMAIN_CREATE),
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
    context = _detail_context(request, domain)
    if request.user.has_permission(Perm.PRINCIPAL_LIST):
        context.update(
            mailbox_views.mailbox_context(request, domain, aliases=context["aliases_found"])
        )
    return render(request, "domains/domain_detail.html", context)


def _alias_status(rows: list[dict]) -> str:
    """An alias's records' state as the domain's status words (Not checked yet when a
    record has no result: the alias was added after the latest check)."""
    if any(r["result"] is None for r in rows):
        return DomainProfile.Status.UNKNOWN.label
    status = checks.overall_status((r["result"].status, r["required"]) for r in rows)
    return DomainProfile.Status(status).label if status else "Could not check"


def _detail_context(request: HttpRequest, domain, dkim_form: DkimKeyForm | None = None) -> dict:
    actor = request.user
    # The results of the domain's records and of its aliases' (one query for both).
    latest = {
        (r.alias_id, r.record_type, r.name.lower(), r.expected): r
        for r in selectors.dns_results(actor=actor, domain=domain)
    }

    def with_results(records: list, alias_id: int | None) -> list[dict]:
        return [
            {
                **record,
                "result": latest.get(
                    (alias_id, record["type"], record["name"].lower(), record["content"])
                ),
            }
            for record in records
        ]

    rows = with_results(selectors.expected_records(domain=domain), None)
    aliases = list(mailbox_selectors.domain_alias_list(actor=actor, domain=domain))
    alias_sections = []
    for alias in aliases:
        records = selectors.alias_expected_records(alias_name=alias.alias, domain_name=domain.name)
        alias_rows = with_results(records, alias.pk)
        alias_sections.append(
            {
                "pk": alias.pk,
                "alias": alias.alias,
                "name": display_domain(alias.alias),
                "rows": alias_rows,
                "status": _alias_status(alias_rows),
                "table_id": f"dns-records-alias-{alias.pk}",
            }
        )
    every_row = rows + [r for section in alias_sections for r in section["rows"]]
    run = task_run_list(actor=actor).filter(kind=selectors.dns_check_kind(domain.pk)).first()
    context = {
        "domain": domain,
        "display_name": display_domain(domain.name),
        "profile": selectors.domain_profile(domain),
        "rows": rows,
        "alias_sections": alias_sections,
        "aliases_found": aliases,
        # The latest check could not finish (our resolver failed): the status shown is older.
        "could_not_check": any(r["result"] and r["result"].status == "error" for r in every_row),
        "run": run,
        "can_check": actor.has_permission(Perm.DNS_CHECK),
        "can_create_dkim": actor.has_permission(Perm.DKIM_SIGNATURE_CREATE),
        "dkim_form": dkim_form or DkimKeyForm(),
        **_dkim_context(request, domain),
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


# --- DKIM keys: the life cycle on the domain page ---------------------------------------

# The page lists the published keys and this many of the latest retired ones.
RETIRED_SHOWN = 5


def _dkim_next_step(key, grace) -> str:
    if key.state == key.State.PENDING:
        return (
            "Publish its record: it signs once a DNS check (by hand, or the one every "
            "10 minutes) finds it."
        )
    if key.state == key.State.ACTIVE:
        return "Signing. Rotate it to replace it with a new key."
    if key.state == key.State.RETIRING:
        return f"Withdrawn on {key.state_changed_at + grace:%Y-%m-%d %H:%M}; no longer signing."
    return "Record withdrawn and private key destroyed."


def _dkim_context(request: HttpRequest, domain) -> dict:
    keys = list(selectors.dkim_keys_of_domain(actor=request.user, domain=domain))
    published = [k for k in keys if k.is_published]
    retired = [k for k in keys if not k.is_published][-RETIRED_SHOWN:]
    grace = services.dkim_grace()
    rows = sorted(published, key=lambda k: (k.algorithm, -k.created_at.timestamp()))
    rows += sorted(retired, key=lambda k: k.state_changed_at, reverse=True)
    for key in rows:
        key.next_step = _dkim_next_step(key, grace)
    return {"dkim_keys": rows}


def _dkim_action(request: HttpRequest, pk: int, key_id: int, action) -> HttpResponse:
    """Rotate or retire one key of the domain; htmx gets #dns-records-box again (keys and
    records both change), or 422 with the service's refusal above the keys."""
    domain = _get(request, pk)
    key = selectors.dkim_keys_of_domain(actor=request.user, domain=domain).filter(pk=key_id)
    key = key.select_related("domain").first()
    if key is None:
        raise Http404
    try:
        message = action(key)
    except ServiceError as exc:
        if not request.htmx:
            messages.error(request, exc.message)
            return redirect("domains:detail", pk=pk)
        context = {**_detail_context(request, domain), "form": refusal_form(exc)}
        return render_page(
            request,
            "domains/domain_detail.html",
            context,
            partial="dns-records-box",
            status=FORM_INVALID,
        )
    messages.success(request, message)
    if not request.htmx:
        return redirect("domains:detail", pk=pk)
    return render_page(
        request,
        "domains/domain_detail.html",
        _detail_context(request, domain),
        partial="dns-records-box",
    )


@require_POST
@permission_required(Perm.DKIM_SIGNATURE_CREATE)
def domain_dkim_rotate(request: HttpRequest, pk: int, key_id: int) -> HttpResponse:
    def rotate(key) -> str:
        new = services.dkim_key_rotate(actor=request.user, key=key)
        return (
            f"Created DKIM key {new.selector} to replace {key.selector}. Publish its record: "
            "it takes over signing once DNS shows it."
        )

    return _dkim_action(request, pk, key_id, rotate)


@require_POST
@permission_required(Perm.DKIM_SIGNATURE_CREATE)
def domain_dkim_retire(request: HttpRequest, pk: int, key_id: int) -> HttpResponse:
    def retire(key) -> str:
        key = services.dkim_key_retire(actor=request.user, key=key)
        if key.state == key.State.RETIRED:
            return f"Withdrew DKIM key {key.selector}."
        return f"DKIM key {key.selector} no longer signs; its record stays published for now."

    return _dkim_action(request, pk, key_id, retire)


@permission_required(Perm.DOMAIN_GET, Perm.DNS_RECORD_GET)
def domain_dns_records(request: HttpRequest, pk: int) -> HttpResponse:
    """The status line and records table alone, refreshed when a check finishes."""
    domain = _get(request, pk)
    return render(
        request,
        "domains/domain_detail.html#dns-records-box",
        _detail_context(request, domain),
    )


# --- a new domain -------------------------------------------------------------------------


def _tenant_choices(actor) -> list[tuple[int, str]] | None:
    """The tenants a superadmin picks from (None: others register in their own)."""
    if not actor.reaches_all_tenants:
        return None
    return list(
        Principal.objects.filter(type=PrincipalType.TENANT)
        .order_by("name")
        .values_list("pk", "name")[:1000]
    )


@permission_required(Perm.DOMAIN_CREATE)
def domain_create(request: HttpRequest) -> HttpResponse:
    """The "New domain" form: 422 with the errors beside the fields, else the new domain's
    page (where its records are)."""
    tenants = _tenant_choices(request.user)
    form = DomainCreateForm(request.POST or None, tenants=tenants)
    if request.method == "POST" and form.is_valid():
        try:
            domain = services.domain_register(
                actor=request.user,
                name=form.cleaned_data["name"].strip(),
                tenant_id=form.cleaned_data.get("tenant"),
            )
        except ServiceError as exc:
            if exc.field == "project_id":
                exc.field = "tenant"
            form.add_service_error(exc)
        else:
            messages.success(
                request, f"Added {display_domain(domain.name)}. Publish its DNS records."
            )
            return redirect_after_form(request, reverse("domains:detail", args=[domain.pk]))
    return render_form(request, "domains/domain_create.html", {"form": form}, partial="domain-form")
