"""The principal console and the audit log page: validate a form, call a service, render.

HTMX requests get the named partial (`#principal-table`, `#principal-form`, `#audit-table`);
full requests the page. Foreign and missing principals are both 404.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from apps.accounts.emails import display_address
from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import ALL_PERMISSIONS, SERVER_WIDE, Perm, by_area
from apps.accounts.principals import selectors, services
from apps.accounts.principals.forms import (
    PERMISSION_CHOICES,
    AuditFilterForm,
    ListParams,
    MembershipForm,
    PermissionForm,
    PrincipalForm,
    principal_initial,
)
from mailadmin.api.pagination import paginate_query
from mailadmin.core.decorators import permission_required
from mailadmin.core.forms import refusal_form
from mailadmin.core.rendering import redirect_after_form, render_form, render_page
from mailadmin.core.tenants import narrow, selected_tenant
from mailadmin.errors import NotFound, ServiceError

PAGE_SIZE = 50
MAX_TOTAL = 10_000
T = PrincipalType
TABS = [
    ("Accounts", T.INDIVIDUAL, Perm.PRINCIPAL_LIST),
    ("Groups", T.GROUP, Perm.PRINCIPAL_LIST),
    ("Lists", T.LIST, Perm.PRINCIPAL_LIST),
    ("Domains", T.DOMAIN, Perm.PRINCIPAL_LIST),
    ("Tenants", T.TENANT, Perm.TENANT_LIST),
    ("Roles", T.ROLE, Perm.PRINCIPAL_LIST),
    ("API keys", T.API_KEY, Perm.API_KEY_LIST),
]
NOUNS = {
    T.INDIVIDUAL: "account",
    T.GROUP: "group",
    T.LIST: "mailing list",
    T.DOMAIN: "domain",
    T.TENANT: "tenant",
    T.ROLE: "role",
    T.API_KEY: "API key",
}


MEMBERSHIP_FIELDS = {"roles", "memberOf", "lists", "members"}


def has_memberships(type_: str) -> bool:
    return bool(services.APPLIES[type_] & MEMBERSHIP_FIELDS)


def has_permissions(type_: str) -> bool:
    return "enabledPermissions" in services.APPLIES[type_]


def _get(request: HttpRequest, pk: int) -> Principal:
    try:
        return selectors.principal_get(actor=request.user, id_or_name=pk)
    except NotFound:
        raise Http404 from None


def _tabs(actor: Principal) -> list[tuple[str, str]]:
    return [(label, type_) for label, type_, perm in TABS if actor.has_permission(perm)]


@permission_required(Perm.PRINCIPAL_LIST)
def principal_list(request: HttpRequest) -> HttpResponse:
    actor = request.user
    params = ListParams(request.GET)
    params.is_valid()
    tabs = _tabs(actor)
    allowed = [t for _, t in tabs]
    type_ = params.cleaned_data.get("type") or T.INDIVIDUAL
    if type_ not in allowed:
        type_ = allowed[0] if allowed else T.INDIVIDUAL
    search = params.cleaned_data.get("q") or ""
    sort = params.cleaned_data.get("sort") or "name"
    switched = selected_tenant(request)  # the superadmin's tenant switcher
    listing = selectors.principal_list(
        actor=actor,
        types=[type_],
        search=search,
        order_by=sort,
        tenant_id=switched.pk if switched else None,
    )
    query = {"type": type_, "q": search, "sort": sort}
    pagination = paginate_query(
        {**query, **_paging(request)}, listing, limit=PAGE_SIZE, max_total=MAX_TOTAL
    )
    for principal in pagination.page.items:
        principal.addresses = [display_address(e.address) for e in principal.emails.all()]

    def link(**changes) -> str:
        return "?" + urlencode({k: v for k, v in {**query, **changes}.items() if v})

    context = {
        "tabs": tabs,
        "type": type_,
        "noun": NOUNS[type_],
        "search": search,
        "sort": sort,
        "page": pagination.page,
        "pagination": pagination,
        "sort_name_url": link(sort="-name" if sort == "name" else "name"),
        "sort_created_url": link(sort="-created" if sort == "created" else "created"),
        "show_tenant": actor.reaches_all_tenants,
        "can_create": actor.has_permission(Perm.PRINCIPAL_CREATE),
        "can_audit": actor.has_permission(Perm.AUDIT_LOG_VIEW),
    }
    return render_page(request, "accounts/principal_list.html", context, partial="principal-table")


def _paging(request: HttpRequest) -> dict[str, str]:
    return {k: request.GET[k] for k in ("page", "cursor") if request.GET.get(k)}


@permission_required(Perm.PRINCIPAL_CREATE)
@require_http_methods(["GET", "POST"])
def principal_create(request: HttpRequest) -> HttpResponse:
    actor = request.user
    allowed = [t for _, t in _tabs(actor)]
    type_ = request.GET.get("type") or T.INDIVIDUAL
    if type_ not in allowed:
        raise Http404
    if type_ == T.API_KEY:
        return redirect("account:api-keys")  # the one page that shows a new key's secret
    tenants = []
    switched = selected_tenant(request)
    if actor.reaches_all_tenants:
        tenants = list(
            selectors.principal_scope(actor)
            .filter(type=T.TENANT)
            .order_by("name")
            .values_list("name", flat=True)
        )
    domains = []
    if "emails" in services.APPLIES[type_]:
        domains = selectors.address_domains(
            actor=actor,
            tenant_id=switched.pk if switched else actor.tenant_id,
            all_tenants=actor.reaches_all_tenants and switched is None,
        )
    # A superadmin switched to a tenant creates in it unless they pick another.
    initial = {"tenant": switched.name} if switched else {}
    form = PrincipalForm(
        request.POST or None,
        type_=type_,
        actor=actor,
        tenants=tenants,
        domains=domains,
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        try:
            principal = services.principal_create(actor=actor, data=form.create_data())
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Created {NOUNS[type_]} {principal.name}.")
            return redirect_after_form(request, reverse("accounts:detail", args=[principal.pk]))
    context = {"form": form, "type": type_, "noun": NOUNS[type_], "principal": None}
    return render_form(request, "accounts/principal_form.html", context, partial="principal-form")


def _effective(principal: Principal) -> frozenset[str]:
    """What a principal may do; for a role, what holding it grants.

    A tenant's role never grants server-wide permissions (its holders are in the tenant);
    a built-in role lists them all, and the page marks those only superadmins get.
    """
    if principal.type == T.ROLE:
        granted = principal.role_permissions() & ALL_PERMISSIONS
        return granted - SERVER_WIDE if principal.tenant_id else granted
    return principal.permissions


@permission_required(Perm.PRINCIPAL_GET)
def principal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    principal = _get(request, pk)
    effective = _effective(principal)
    context = {
        "principal": principal,
        "noun": NOUNS.get(principal.type, principal.type),
        "state": principal_initial(services.principal_state(principal)),
        "effective": sorted(effective),
        "effective_groups": by_area(effective),
        # A built-in role's server-wide permissions reach only the superadmins holding it.
        "superadmin_only": effective & SERVER_WIDE if principal.type == T.ROLE else frozenset(),
        "shows_permissions": principal.type in (T.INDIVIDUAL, T.API_KEY, T.ROLE),
        "builtin": services.is_builtin_role(principal),
        "has_memberships": has_memberships(principal.type),
        "has_permissions": has_permissions(principal.type),
        # The mail store's message list (apps.store): reading mail takes blob-fetch too.
        "can_read_mail": principal.type == T.INDIVIDUAL
        and request.user.has_permission(Perm.BLOB_FETCH),
    }
    return render(request, "accounts/principal_detail.html", context)


@permission_required(Perm.PRINCIPAL_UPDATE)
@require_http_methods(["GET", "POST"])
def principal_edit(request: HttpRequest, pk: int) -> HttpResponse:
    principal = _get(request, pk)
    initial = principal_initial(services.principal_state(principal))
    domains = []
    if "emails" in services.APPLIES[principal.type]:
        domains = selectors.address_domains(actor=request.user, tenant_id=principal.tenant_id)
    form = PrincipalForm(
        request.POST or None,
        type_=principal.type,
        actor=request.user,
        principal=principal,
        initial=initial,
        domains=domains,
    )
    return _update(request, principal, form, "principal-form", "accounts/principal_form.html")


@permission_required(Perm.PRINCIPAL_UPDATE)
@require_http_methods(["GET", "POST"])
def principal_memberships(request: HttpRequest, pk: int) -> HttpResponse:
    principal = _get(request, pk)
    if not has_memberships(principal.type):
        raise Http404
    role_names = list(
        selectors.principal_choices(
            actor=request.user, tenant_id=principal.tenant_id, types=[T.ROLE]
        ).values_list("name", flat=True)
    )
    form = MembershipForm(
        request.POST or None,
        type_=principal.type,
        actor=request.user,
        role_names=role_names,
        initial=services.principal_state(principal),
    )
    return _update(
        request, principal, form, "principal-form", "accounts/principal_memberships.html"
    )


@permission_required(Perm.PRINCIPAL_UPDATE)
@require_http_methods(["GET", "POST"])
def principal_permissions(request: HttpRequest, pk: int) -> HttpResponse:
    principal = _get(request, pk)
    if not has_permissions(principal.type):
        raise Http404  # domains, groups, lists and tenants hold no permissions
    form = PermissionForm(request.POST or None, initial=services.principal_state(principal))
    enabled = set(form["enabledPermissions"].value() or [])
    disabled = set(form["disabledPermissions"].value() or [])
    effective = principal.permissions
    rows = [
        {"name": p, "enabled": p in enabled, "disabled": p in disabled, "effective": p in effective}
        for p, _ in PERMISSION_CHOICES
    ]
    return _update(
        request,
        principal,
        form,
        "principal-form",
        "accounts/principal_permissions.html",
        extra={"rows": rows},
    )


def _update(
    request, principal: Principal, form, partial: str, template: str, extra: dict | None = None
) -> HttpResponse:
    if request.method == "POST" and form.is_valid():
        try:
            services.principal_update(
                actor=request.user, principal=principal, operations=form.operations()
            )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Saved {NOUNS[principal.type]} {principal.name}.")
            return redirect_after_form(request, reverse("accounts:detail", args=[principal.pk]))
    context = {
        "form": form,
        "principal": principal,
        "type": principal.type,
        "noun": NOUNS[principal.type],
        "effective": sorted(principal.permissions),
        **(extra or {}),
    }
    return render_form(request, template, context, partial=partial)


@permission_required(Perm.PRINCIPAL_DELETE)
@require_http_methods(["GET", "POST"])
def principal_delete(request: HttpRequest, pk: int) -> HttpResponse:
    principal = _get(request, pk)
    form = forms.Form()
    if request.method == "POST":
        name, type_ = principal.name, principal.type
        try:
            services.principal_delete(actor=request.user, principal=principal)
        except ServiceError as exc:
            form = refusal_form(exc)
        else:
            messages.success(request, f"Deleted {NOUNS[type_]} {name}.")
            return redirect_after_form(request, reverse("accounts:index") + f"?type={type_}")
    context = {"principal": principal, "noun": NOUNS[principal.type], "form": form}
    return render_form(request, "accounts/principal_delete.html", context)


@permission_required(Perm.AUDIT_LOG_VIEW)
def audit_log(request: HttpRequest) -> HttpResponse:
    actor = request.user
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    queryset = narrow(selectors.audit_list(actor=actor, filters=filters), request)
    pagination = paginate_query(request.GET, queryset, limit=PAGE_SIZE, max_total=MAX_TOTAL)
    context = {
        "form": form,
        "page": pagination.page,
        "pagination": pagination,
        "actions": selectors.audit_actions(actor=actor),
    }
    return render_page(request, "accounts/audit_list.html", context, partial="audit-table")
