"""The mailbox part of the domain page: the domain's mailboxes (search, pages), a mailbox
form (create with a domain picker, edit), aliases, the catch-all address, and CSV import
(a task run with live progress) and export.

Writes go through apps.domains.mailbox_services; a refused form answers 422 with itself.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.emails import display_address, display_domain
from apps.accounts.permissions import Perm
from apps.domains import mailbox_fields, mailbox_selectors, mailbox_services, selectors
from apps.domains.forms import CatchAllForm, DomainAliasForm, MailboxForm, MailboxImportForm
from apps.domains.mailbox_services import MB
from mailadmin.api.pagination import paginate_query
from mailadmin.core.decorators import permission_required
from mailadmin.core.progress import task_run_list
from mailadmin.core.rendering import FORM_INVALID, redirect_after_form, render_form
from mailadmin.errors import NotFound, ServiceError

PAGE_SIZE = 50
MAX_TOTAL = 10_000


def _domain(request: HttpRequest, pk: int):
    try:
        return selectors.domain_get(actor=request.user, name_or_id=pk)
    except NotFound:
        raise Http404 from None


def _mailbox(request: HttpRequest, domain, mailbox_id: int):
    try:
        mailbox = mailbox_selectors.mailbox_by_id(actor=request.user, mailbox_id=mailbox_id)
    except NotFound:
        raise Http404 from None
    if mailbox.domain_id != domain.pk:
        raise Http404
    return mailbox


def import_kind(domain_id: int) -> str:
    return f"mailbox-import:{domain_id}"


def mailbox_context(request: HttpRequest, domain, aliases: list | None = None) -> dict:
    """The domain page's mailbox section: one page of mailboxes (a fixed number of
    queries), the aliases (`aliases` when the caller already read them), the catch-all,
    and the latest import run."""
    actor = request.user
    search = (request.GET.get("mq") or "").strip()[:64]
    queryset = mailbox_selectors.mailbox_list(actor=actor, domain=domain, search=search)
    pagination = paginate_query(
        {
            "mq": search,
            "page": request.GET.get("page", ""),
            "cursor": request.GET.get("cursor", ""),
        },
        queryset,
        limit=PAGE_SIZE,
        max_total=MAX_TOTAL,
        path=reverse("domains:mailboxes", args=[domain.pk]),
    )
    page = pagination.page
    for mailbox in page.items:
        addresses = [display_address(e.address) for e in mailbox.principal.emails.all()]
        mailbox.address = addresses[0] if addresses else ""
        mailbox.extra_addresses = addresses[1:]
        mailbox.size_mb = mailbox.principal.quota // MB

    catch_all = mailbox_selectors.catch_all_of(actor=actor, domain=domain)
    run = task_run_list(actor=actor).filter(kind=import_kind(domain.pk)).first()
    return {
        "domain": domain,
        "mailbox_page": page,
        "mailbox_search": search,
        "mailbox_pagination": pagination,
        "aliases": [
            {"pk": a.pk, "name": display_domain(a.alias)}
            for a in (
                mailbox_selectors.domain_alias_list(actor=actor, domain=domain)
                if aliases is None
                else aliases
            )
        ],
        "catch_all": catch_all,
        "can_create_mailbox": actor.has_permission(Perm.PRINCIPAL_CREATE),
        "can_update_domain": actor.has_permission(Perm.DOMAIN_UPDATE),
        "alias_form": DomainAliasForm(),
        "catch_all_form": CatchAllForm(
            initial={"target": catch_all.target.name if catch_all else ""}
        ),
        "import_form": MailboxImportForm(),
        "import_run": run,
    }


@permission_required(Perm.DOMAIN_GET, Perm.PRINCIPAL_LIST)
def mailbox_list(request: HttpRequest, pk: int) -> HttpResponse:
    """The mailbox table alone (search and pages of the domain page's mailbox section)."""
    domain = _domain(request, pk)
    context = {**mailbox_context(request, domain), "display_name": display_domain(domain.name)}
    return _section(request, context, "mailbox-table")


def _section(request, context: dict, partial: str, status: int = 200) -> HttpResponse:
    """htmx gets the named partial of the mailbox section; others the section's page."""
    if request.htmx:
        template = f"domains/_mailbox_section.html#{partial}"
    else:
        template = "domains/mailbox_list.html"
    return render(request, template, context, status=status)


def _form_page(request, domain, form, mailbox=None) -> HttpResponse:
    context = {
        "form": form,
        "domain": domain,
        "display_name": display_domain(domain.name),
        "mailbox": mailbox,
    }
    return render_form(request, "domains/mailbox_form.html", context, partial="mailbox-form")


@permission_required(Perm.PRINCIPAL_CREATE)
def mailbox_create(request: HttpRequest, pk: int) -> HttpResponse:
    domain = _domain(request, pk)
    domains = selectors.domain_list(actor=request.user).filter(tenant_id=domain.tenant_id)
    if request.method != "POST":
        form = MailboxForm(domains=domains, initial={"domain": domain.pk})
        return _form_page(request, domain, form)
    form = MailboxForm(request.POST, domains=domains)
    if form.is_valid():
        picked = form.cleaned_data["domain"]
        try:
            mailbox = mailbox_services.mailbox_create(
                actor=request.user,
                domain=picked,
                name=form.cleaned_data["name"],
                values=form.values(),
            )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Created mailbox {mailbox.principal.name}.")
            return redirect_after_form(request, reverse("domains:detail", args=[picked.pk]))
    return _form_page(request, domain, form)


def _initial(mailbox) -> dict:
    initial = {attr: getattr(mailbox, attr) for attr in mailbox_fields.PROFILE_ATTRS}
    initial["quota"] = mailbox.principal.quota
    initial["enabled"] = mailbox.principal.is_active
    return initial


@permission_required(Perm.PRINCIPAL_GET)
def mailbox_edit(request: HttpRequest, pk: int, mailbox_id: int) -> HttpResponse:
    domain = _domain(request, pk)
    mailbox = _mailbox(request, domain, mailbox_id)
    if request.method != "POST":
        form = MailboxForm(initial=_initial(mailbox), creating=False)
        return _form_page(request, domain, form, mailbox)
    form = MailboxForm(request.POST, initial=_initial(mailbox), creating=False)
    if form.is_valid():
        try:
            mailbox_services.mailbox_update(
                actor=request.user, mailbox=mailbox, values=form.values()
            )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Saved mailbox {mailbox.principal.name}.")
            return redirect_after_form(request, reverse("domains:detail", args=[domain.pk]))
    return _form_page(request, domain, form, mailbox)


@require_POST
@permission_required(Perm.PRINCIPAL_DELETE)
def mailbox_delete(request: HttpRequest, pk: int, mailbox_id: int) -> HttpResponse:
    domain = _domain(request, pk)
    mailbox = _mailbox(request, domain, mailbox_id)
    try:
        mailbox_services.mailbox_delete(actor=request.user, mailbox=mailbox)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Deleted mailbox {mailbox.principal.name}.")
    return redirect_after_form(request, reverse("domains:detail", args=[domain.pk]))


@permission_required(Perm.DOMAIN_GET, Perm.PRINCIPAL_LIST)
def mailbox_export(request: HttpRequest, pk: int) -> HttpResponse:
    domain = _domain(request, pk)
    lines = mailbox_services.mailboxes_csv_export(actor=request.user, domain=domain)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="mailboxes-{domain.name}.csv"'
    return response


def _section_form(request, domain, partial: str, **forms) -> HttpResponse:
    """The mailbox section's form `partial` re-rendered with its errors (422)."""
    context = {**mailbox_context(request, domain), **forms}
    context["display_name"] = display_domain(domain.name)
    return _section(request, context, partial, status=FORM_INVALID)


@require_POST
@permission_required(Perm.PRINCIPAL_CREATE)
def mailbox_import(request: HttpRequest, pk: int) -> HttpResponse:
    domain = _domain(request, pk)
    form = MailboxImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            run = mailbox_services.mailboxes_import_start(
                actor=request.user, domain=domain, text=form.text()
            )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            if request.htmx:
                return render(request, "core/task_progress.html", {"run": run})
            return redirect("domains:detail", pk=domain.pk)
    return _section_form(request, domain, "import-form", import_form=form)


@require_POST
@permission_required(Perm.DOMAIN_UPDATE)
def domain_alias_create(request: HttpRequest, pk: int) -> HttpResponse:
    domain = _domain(request, pk)
    form = DomainAliasForm(request.POST)
    if form.is_valid():
        try:
            alias = mailbox_services.domain_alias_create(
                actor=request.user, domain=domain, alias=form.cleaned_data["alias"]
            )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            messages.success(
                request,
                f"{display_domain(alias.alias)} is now an alias. Publish its DNS records "
                "(under the domain's): mail reaches it only once its MX points here.",
            )
            return redirect_after_form(request, reverse("domains:detail", args=[domain.pk]))
    return _section_form(request, domain, "alias-form", alias_form=form)


@require_POST
@permission_required(Perm.DOMAIN_UPDATE)
def domain_alias_delete(request: HttpRequest, pk: int, alias_id: int) -> HttpResponse:
    domain = _domain(request, pk)
    alias = mailbox_selectors.domain_alias_list(actor=request.user, domain=domain)
    alias = alias.filter(pk=alias_id).first()
    if alias is None:
        raise Http404
    mailbox_services.domain_alias_delete(actor=request.user, alias=alias)
    messages.success(request, f"Removed the alias {display_domain(alias.alias)}.")
    return redirect_after_form(request, reverse("domains:detail", args=[domain.pk]))


@require_POST
@permission_required(Perm.DOMAIN_UPDATE)
def domain_catch_all(request: HttpRequest, pk: int) -> HttpResponse:
    domain = _domain(request, pk)
    form = CatchAllForm(request.POST)
    if form.is_valid():
        try:
            row = mailbox_services.catch_all_set(
                actor=request.user, domain=domain, target=form.cleaned_data["target"]
            )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            messages.success(
                request,
                f"Unknown addresses go to {row.target.name}."
                if row
                else "Unknown addresses are refused.",
            )
            return redirect_after_form(request, reverse("domains:detail", args=[domain.pk]))
    return _section_form(request, domain, "catch-all-form", catch_all_form=form)
