"""Permissions fail closed: every page and every API method names what it needs.

The walk goes through the real URL resolver, so a route added anywhere is checked the day
it lands; a view or method that declares nothing fails this test (and is refused at run
time: see the fail-closed tests below).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver, path
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from apps.accounts.permissions import ALL_PERMISSIONS
from mailadmin.api.permissions import AUTHENTICATED, PUBLIC, UNDECLARED_DETAIL, require
from mailadmin.api.views import ApiView, MethodPermissionApi, ok
from mailadmin.core.decorators import any_permission_required, permission_required, public

DECLARABLE = ALL_PERMISSIONS | {PUBLIC, AUTHENTICATED}
# The Django admin guards every view itself (AdminSite.admin_view -> has_permission,
# superadmins only); its login page is its own public door.
SELF_GUARDED_NAMESPACES = {"admin"}


@dataclass(frozen=True)
class Route:
    route: str
    callback: object
    namespaces: tuple[str, ...]


def walk(patterns, prefix: str = "", namespaces: tuple[str, ...] = ()) -> Iterator[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = (*namespaces, entry.namespace) if entry.namespace else namespaces
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            yield Route(prefix + str(entry.pattern), entry.callback, namespaces)


def api_methods(view_class: type[APIView]) -> list[str]:
    return [
        m.upper() for m in view_class.http_method_names if m != "head" and hasattr(view_class, m)
    ]


def declared_for(callback, method: str) -> list[str | None]:
    """What the API view behind `callback` declares for `method`, asked the way DRF asks."""
    view = callback.view_class(**getattr(callback, "view_initkwargs", {}))
    request = APIRequestFactory().generic(method, "/")
    view.setup(request)
    view.request = view.initialize_request(request)
    view.format_kwarg = None
    return [getattr(p, "required", None) for p in view.get_permissions()]


def _declarable(declared) -> bool:
    """A permission, PUBLIC/AUTHENTICATED, or a tuple of permissions (any one will do)."""
    if isinstance(declared, tuple):
        return bool(declared) and all(d in ALL_PERMISSIONS for d in declared)
    return declared in DECLARABLE


def undeclared(patterns) -> list[str]:
    """Every page and API method that names no permission, as 'METHOD route'."""
    problems = []
    for route in walk(patterns):
        if SELF_GUARDED_NAMESPACES & set(route.namespaces):
            continue
        view_class = getattr(route.callback, "view_class", None)
        if view_class is not None and issubclass(view_class, APIView):
            for method in api_methods(view_class):
                declared = declared_for(route.callback, method)
                if not declared or not all(_declarable(d) for d in declared):
                    problems.append(f"{method} /{route.route} declares {declared}")
            continue
        declared = getattr(route.callback, "required_permissions", None)
        if not declared or not all(_declarable(d) for d in declared):
            problems.append(f"page /{route.route} declares {declared}")
    return problems


def test_it_finds_a_declaration_on_every_page_and_api_method():
    assert undeclared(get_resolver().url_patterns) == []


def test_it_walks_the_api_and_the_pages():
    routes = {route.route for route in walk(get_resolver().url_patterns)}
    assert {"api/principal", "api/oauth/token", "domains/", "login/", "api/schema/"} <= routes


# --- the walk itself catches what it must -------------------------------------------------


def _bare_page(request):
    return HttpResponse("hello")


def _guarded_page(request):
    return HttpResponse("hello")


def _open_page(request):
    return HttpResponse("hello")


class _BareApi(ApiView):
    def get(self, request):
        return ok("hello")


class _HalfDeclaredApi(MethodPermissionApi):
    method_permissions = {"GET": "principal-list"}

    def get(self, request):
        return ok("read")

    def post(self, request):
        return ok("written")


class _TypoApi(ApiView):
    permission_classes = [require("principal-lsit")]

    def get(self, request):
        return ok("hello")


class _AnyOfApi(MethodPermissionApi):
    method_permissions = {
        "GET": ("quarantine-list", "manage-own-quarantine"),
        "POST": ("quarantine-release", "quarantine-relase"),
    }

    def get(self, request):
        return ok("read")

    def post(self, request):
        return ok("written")


def test_it_reports_pages_and_methods_that_declare_nothing():
    patterns = [
        path("bare/", _bare_page),
        path("ok/", permission_required("dashboard")(_guarded_page)),
        path("any/", any_permission_required("quarantine-list", "dashboard")(_guarded_page)),
        path("any-typo/", any_permission_required("dashboard", "dashbaord")(_guarded_page)),
        path("open/", public(_open_page)),
        path("api/bare", _BareApi.as_view()),
        path("api/half", _HalfDeclaredApi.as_view()),
        path("api/typo", _TypoApi.as_view()),
        path("api/any", _AnyOfApi.as_view()),
    ]
    assert undeclared(patterns) == [
        "page /bare/ declares None",
        "page /any-typo/ declares ('dashboard', 'dashbaord')",
        "GET /api/bare declares [None]",
        "POST /api/half declares [None]",
        "GET /api/typo declares ['principal-lsit']",
        "POST /api/any declares [('quarantine-release', 'quarantine-relase')]",
    ]


# --- fail closed at run time --------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("view", "method"), [(_BareApi, "get"), (_HalfDeclaredApi, "post")])
def test_it_refuses_an_undeclared_method_even_to_a_superadmin(superadmin, view, method):
    request = getattr(APIRequestFactory(), method)("/api/probe", {}, format="json")
    force_authenticate(request, user=superadmin)
    response = view.as_view()(request)
    response.render()
    assert response.status_code == 403
    assert response.data["detail"] == UNDECLARED_DETAIL


@pytest.mark.django_db
def test_it_answers_401_to_anonymous_callers_of_an_undeclared_method():
    response = _BareApi.as_view()(APIRequestFactory().get("/api/probe"))
    assert response.status_code == 401


@pytest.mark.django_db
def test_it_still_allows_the_declared_method(superadmin):
    request = APIRequestFactory().get("/api/probe")
    force_authenticate(request, user=superadmin)
    response = _HalfDeclaredApi.as_view()(request)
    assert (response.status_code, response.data) == (200, {"data": "read"})


@pytest.mark.django_db
def test_it_answers_405_for_a_method_the_view_does_not_have(api_root):
    response = api_root.put("/api/principal", {}, format="json")
    assert response.status_code == 405
    assert response.json()["title"] == "Method Not Allowed"
    assert response["Allow"] == "GET, POST, HEAD"
    assert api_root.options("/api/principal").status_code == 405


# --- the domain pages need the DNS-record permission ---------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/domains/", "/domains/{pk}/"])
def test_it_needs_dns_record_get_for_the_domain_pages(client, make_principal, tenant_a, url):
    domain = make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain")
    reader = make_principal(
        tenant=tenant_a,
        roles=(),
        enabled_permissions=["dashboard", "domain-list", "domain-get"],
    )
    client.force_login(reader)
    response = client.get(url.format(pk=domain.pk))
    assert response.status_code == 403
    assert "dns-record-get" in response.content.decode()
