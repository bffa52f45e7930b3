"""Console login (password, then TOTP when enabled) and the own-account security pages.

Login is two steps when 2FA is on: the password step stores only "principal N passed the
password at time T" in the session; the session is logged in (and its key rotated) only
after the code step. Secrets shown once (TOTP recovery codes, app passwords, API key
secrets) are rendered straight into the POST response, never put in the session or a
message, so a reload or the back button does not show them again.
"""

from __future__ import annotations

import time

from django.contrib import messages
from django.contrib.auth import login as django_login
from django.contrib.auth import logout, update_session_auth_hash
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.auth import api_keys as key_services
from apps.accounts.auth import totp as totp_services
from apps.accounts.auth import twofactor
from apps.accounts.auth.app_passwords import (
    app_password_add,
    app_password_list,
    app_password_remove,
)
from apps.accounts.auth.forms import (
    ApiKeyForm,
    AppPasswordForm,
    CodeForm,
    ConfirmPasswordForm,
    LoginForm,
    PasswordChangeForm,
    TotpEnrolForm,
)
from apps.accounts.auth.login import (
    InvalidCredentials,
    LoginLocked,
    WrongCurrentPassword,
    authenticate_password,
    confirm_password,
    login_succeeded,
    verify_second_factor,
)
from apps.accounts.auth.passwords import password_change
from apps.accounts.models import Principal
from apps.accounts.permissions import Perm
from mailadmin.audit import audit, client_ip
from mailadmin.core.decorators import permission_required, public
from mailadmin.core.rendering import render_form
from mailadmin.core.tenants import narrow
from mailadmin.errors import NotFound, ServiceError

BACKEND = "apps.accounts.auth.backends.PrincipalBackend"
PENDING = "_mailadmin_2fa_pending"
PENDING_TTL = 300  # seconds between the password step and the code step
ENROL_SESSION_KEY = "_mailadmin_totp_enrol"
BAD_LOGIN = "Please enter a correct name or e-mail address and password."


def _next_url(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("dashboard")


def _complete_login(request: HttpRequest, principal: Principal, method: str) -> None:
    django_login(request, principal, backend=BACKEND)  # rotates the session key
    login_succeeded(principal=principal, method=method, ip=client_ip(request))


def _password_confirmed(request: HttpRequest, form) -> bool:
    """The form's current password is right; else the form carries why not. Wrong
    answers count towards the lockout like failed logins."""
    try:
        confirm_password(
            actor=request.user, password=form.cleaned_data["password"], ip=client_ip(request)
        )
    except LoginLocked as exc:
        form.add_error(None, exc.message)
        return False
    except WrongCurrentPassword as exc:
        form.add_error("password", exc.message)
        return False
    return True


# --- login / logout --------------------------------------------------------------------


@public
@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.user.is_authenticated:
        return redirect(_next_url(request, next_url))
    form = LoginForm(request.POST or None)
    status = None
    if request.method == "POST" and form.is_valid():
        try:
            principal = authenticate_password(
                identifier=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                ip=client_ip(request),
                app_passwords=False,
            )
        except LoginLocked as exc:
            form.add_error(None, exc.message)
            status = 429
        except InvalidCredentials:
            form.add_error(None, BAD_LOGIN)
        else:
            if principal.otp_enabled:
                request.session.cycle_key()
                request.session[PENDING] = {
                    "id": principal.pk,
                    "at": time.time(),
                    "next": next_url,
                }
                return redirect("account:login-verify")
            _complete_login(request, principal, "password")
            return redirect(_next_url(request, next_url))
    context = {"form": form, "next": next_url}
    return render_form(request, "registration/login.html", context, status=status)


def _pending_principal(request: HttpRequest) -> tuple[Principal | None, dict]:
    pending = request.session.get(PENDING) or {}
    if not pending or time.time() - pending.get("at", 0) > PENDING_TTL:
        return None, {}
    principal = Principal.objects.filter(
        pk=pending.get("id"), is_active=True, otp_enabled=True
    ).first()
    return principal, pending


@public  # the second step of a login: the session says who passed the first
@sensitive_post_parameters("code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_verify(request: HttpRequest) -> HttpResponse:
    """The second step: a TOTP code or a recovery code. Public: the session says who."""
    principal, pending = _pending_principal(request)
    if principal is None:
        request.session.pop(PENDING, None)
        messages.info(request, "Your login has expired. Please log in again.")
        return redirect("login")
    form = CodeForm(request.POST or None)
    status = None
    if request.method == "POST" and form.is_valid():
        try:
            method = verify_second_factor(
                principal=principal, code=form.cleaned_data["code"], ip=client_ip(request)
            )
        except LoginLocked as exc:
            form.add_error(None, exc.message)
            status = 429
        except ServiceError as exc:
            form.add_error("code", exc.message)
        else:
            request.session.pop(PENDING, None)
            _complete_login(request, principal, method)
            if method == "recovery-code":
                left = twofactor.recovery_codes_left(principal)
                messages.warning(
                    request,
                    f"You logged in with a recovery code; {left} left. "
                    "Generate new ones on the Security page if you are running low.",
                )
            return redirect(_next_url(request, pending.get("next")))
    return render_form(request, "registration/login_verify.html", {"form": form}, status=status)


@public
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        audit(actor=request.user, action="logout", obj=request.user)
    logout(request)
    return redirect("login")


# --- password --------------------------------------------------------------------------


@sensitive_variables("form")
@sensitive_post_parameters("current", "new", "new2", "code")
@permission_required(Perm.MANAGE_PASSWORDS)
@require_http_methods(["GET", "POST"])
def password_change_view(request: HttpRequest) -> HttpResponse:
    """The own password; the session stays logged in, every other session of it ends."""
    actor = request.user
    form = PasswordChangeForm(request.POST or None, otp_enabled=actor.otp_enabled)
    status = None  # 422 when the form carries errors
    if request.method == "POST" and form.is_valid():
        try:
            password_change(
                actor=actor,
                current=form.cleaned_data["current"],
                new=form.cleaned_data["new"],
                code=form.cleaned_data.get("code"),
                ip=client_ip(request),
            )
        except LoginLocked as exc:
            form.add_error(None, exc.message)
            status = 429
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            update_session_auth_hash(request, actor)  # this session stays valid
            messages.success(
                request, "Your password was changed. Your other sessions were logged out."
            )
            return redirect("account:security")
    return render_form(request, "account/password_change.html", {"form": form}, status=status)


# --- two-factor authentication ---------------------------------------------------------


def _security_page(
    request: HttpRequest,
    *,
    disable_form: ConfirmPasswordForm | None = None,
    codes_form: ConfirmPasswordForm | None = None,
) -> HttpResponse:
    """The Security page with the form that was posted, if any (422 when it has errors)."""
    actor = request.user
    posted = codes_form if codes_form is not None else disable_form
    context = {
        "otp_enabled": actor.otp_enabled,
        "codes_left": twofactor.recovery_codes_left(actor) if actor.otp_enabled else 0,
        "disable_form": disable_form or ConfirmPasswordForm(prefix="disable"),
        "codes_form": codes_form or ConfirmPasswordForm(prefix="codes"),
        "app_password_count": actor.app_passwords.count(),
    }
    return render_form(
        request, "account/security.html", context, form=posted or context["codes_form"]
    )


@permission_required(Perm.MANAGE_PASSWORDS)
def security(request: HttpRequest) -> HttpResponse:
    return _security_page(request)


@sensitive_variables("secret", "codes")
@sensitive_post_parameters("code", "password")
@permission_required(Perm.MANAGE_PASSWORDS)
@require_http_methods(["GET", "POST"])
def totp_enrol(request: HttpRequest) -> HttpResponse:
    actor = request.user
    if actor.otp_enabled:
        messages.info(request, "Two-factor authentication is already on.")
        return redirect("account:security")
    secret = request.session.get(ENROL_SESSION_KEY)
    if not secret:
        secret = request.session[ENROL_SESSION_KEY] = twofactor.new_secret()
    form = TotpEnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _password_confirmed(request, form):
        try:
            codes = totp_services.totp_enable(
                actor=actor, secret=secret, code=form.cleaned_data["code"]
            )
        except ServiceError as exc:
            form.add_error("code", exc.message)
        else:
            request.session.pop(ENROL_SESSION_KEY, None)
            messages.success(request, "Two-factor authentication is on.")
            return render(request, "account/recovery_codes.html", {"codes": codes})
    uri = twofactor.provisioning_uri(actor, secret)
    context = {"form": form, "secret": secret, "qr_svg": twofactor.qr_svg(uri), "uri": uri}
    return render_form(request, "account/totp_enrol.html", context)


@sensitive_post_parameters("disable-password")
@permission_required(Perm.MANAGE_PASSWORDS)
@require_POST
def totp_disable(request: HttpRequest) -> HttpResponse:
    form = ConfirmPasswordForm(request.POST, prefix="disable")
    if not request.user.otp_enabled:
        form.add_error(None, "Two-factor authentication is already off.")
    if form.is_valid() and _password_confirmed(request, form):
        try:
            totp_services.totp_disable(actor=request.user)
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Two-factor authentication is off.")
            return redirect("account:security")
    return _security_page(request, disable_form=form)


@sensitive_variables("codes")
@sensitive_post_parameters("codes-password")
@permission_required(Perm.MANAGE_PASSWORDS)
@require_POST
def recovery_codes(request: HttpRequest) -> HttpResponse:
    form = ConfirmPasswordForm(request.POST, prefix="codes")
    if not request.user.otp_enabled:  # say so before asking for a password it cannot use
        form.add_error(None, "Turn on two-factor authentication first.")
    if form.is_valid() and _password_confirmed(request, form):
        try:
            codes = totp_services.recovery_codes_regenerate(actor=request.user)
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            return render(request, "account/recovery_codes.html", {"codes": codes})
    return _security_page(request, codes_form=form)


# --- app passwords ---------------------------------------------------------------------


def _pushed(response: HttpResponse, request: HttpRequest, url: str) -> HttpResponse:
    """After an HTMX create, the address bar shows `url`: a reload is a GET of that page
    (never a repeated POST) and the back button works."""
    if request.htmx:
        response["HX-Push-Url"] = url
    return response


def _app_passwords_page(request, form, created=None) -> HttpResponse:
    rows = app_password_list(actor=request.user)
    context = {"form": form, "app_passwords": rows, "created": created}
    return render_form(request, "account/app_passwords.html", context)


@sensitive_variables("plain")
@sensitive_post_parameters("password")
@permission_required(Perm.MANAGE_PASSWORDS)
@require_http_methods(["GET", "POST"])
def app_passwords(request: HttpRequest) -> HttpResponse:
    form = AppPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _password_confirmed(request, form):
        try:
            row, plain = app_password_add(actor=request.user, name=form.cleaned_data["name"])
        except ServiceError as exc:
            form.add_error("name", exc.message)
        else:
            created = {"name": row.name, "password": plain}
            page = _app_passwords_page(request, AppPasswordForm(), created)
            return _pushed(page, request, reverse("account:app-passwords"))
    return _app_passwords_page(request, form)


@permission_required(Perm.MANAGE_PASSWORDS)
@require_POST
def app_password_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        app_password_remove(actor=request.user, pk=pk)
    except NotFound:
        raise Http404 from None
    messages.success(request, "The app password was revoked.")
    return redirect("account:app-passwords")


# --- API keys --------------------------------------------------------------------------


def _api_keys_page(request, form, created=None) -> HttpResponse:
    actor = request.user
    keys = list(narrow(key_services.api_key_list(actor=actor), request))
    for key in keys:
        key.status = key_services.api_key_status(key)
    context = {
        "keys": keys,
        "form": form if actor.has_permission(Perm.API_KEY_CREATE) else None,
        "can_revoke": actor.has_permission(Perm.API_KEY_DELETE),
        "created": created,
    }
    return render_form(request, "account/api_keys.html", context, form=form)


@permission_required(Perm.API_KEY_LIST)
def api_keys(request: HttpRequest) -> HttpResponse:
    return _api_keys_page(request, ApiKeyForm(actor=request.user))


@sensitive_variables("secret")
@sensitive_post_parameters("password")
@permission_required(Perm.API_KEY_CREATE)
@require_http_methods(["GET", "POST"])
def api_key_create(request: HttpRequest) -> HttpResponse:
    actor = request.user
    if request.method == "GET":  # a reload after a non-HTMX create: back to the list
        return redirect(
            "account:api-keys" if actor.has_permission(Perm.API_KEY_LIST) else "account:security"
        )
    form = ApiKeyForm(request.POST, actor=actor)
    if form.is_valid() and _password_confirmed(request, form):
        try:
            key, secret = key_services.api_key_create(
                actor=actor,
                name=form.cleaned_data["name"],
                permissions=form.cleaned_data["permissions"] or None,
                expires_at=form.cleaned_data["expires_at"],
            )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            created = {"name": key.name, "secret": secret}
            if actor.has_permission(Perm.API_KEY_LIST):
                page = _api_keys_page(request, ApiKeyForm(actor=actor), created)
                return _pushed(page, request, reverse("account:api-keys"))
            return render(request, "account/api_key_created.html", {"created": created})
    if not actor.has_permission(Perm.API_KEY_LIST):
        return render_form(request, "account/api_key_created.html", {"form": form})
    return _api_keys_page(request, form)


@permission_required(Perm.API_KEY_DELETE)
@require_POST
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        key = key_services.api_key_revoke(actor=request.user, key=pk)
    except NotFound:
        raise Http404 from None
    messages.success(request, f"The API key {key.name} was revoked.")
    if request.user.has_permission(Perm.API_KEY_LIST):
        return redirect("account:api-keys")
    return redirect("account:security")
