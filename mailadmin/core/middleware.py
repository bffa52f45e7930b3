"""Middleware of the console: NUL characters refused, Django's messages for htmx, and
security headers."""

from __future__ import annotations

import functools
import json
import secrets

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponseBadRequest, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.urls import reverse
from django.utils.datastructures import MultiValueDict

from mailadmin.api.exceptions import problem
from mailadmin.api.middleware import is_api

NUL_DETAIL = "The query parameter '{name}' holds a NUL character (%00), which no page accepts."
API_NUL_DETAIL = "Invalid value for field {name}: Null characters are not allowed."


class NulCharacterMiddleware:
    """A NUL in a query string answers 400 naming the parameter, before any view sees it:
    list pages and list APIs filter by their query parameters, and PostgreSQL refuses NUL
    in text (a 500 on the queue, domain, quarantine, report, fetch, settings and trace
    pages, and on the API's queue list). The API gets its problem JSON, the console a
    plain line. A NUL in a console page's path is a 404 (a path that names nothing; the
    API's is answered by ApiProblemMiddleware). Forms are left to their fields (Django's
    refuse NUL, so the form comes back with the message); API bodies to the parser."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        api = is_api(request)
        if not api and "\x00" in request.path_info:
            raise Http404
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                name = key.replace("\x00", "%00")[:64]
                if api:
                    detail = API_NUL_DETAIL.format(name=name)
                    body = problem(400, detail, errors=[{"field": name, "message": detail}])
                    return JsonResponse(body, status=400)
                return HttpResponseBadRequest(
                    NUL_DETAIL.format(name=name), content_type="text/plain"
                )
        return self.get_response(request)


class FormBodyLimitMiddleware:
    """A larger body limit for the form pages that declare one (`@form_body_limit`), ahead
    of CsrfViewMiddleware, which reads the form first and so meets Django's check on
    DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) before the page can say anything.

    A url-encoded body of up to the page's limit is read here, unchecked. A multipart one
    (a form with a file) keeps Django's limit on its text fields, files go unlimited as
    ever; when text passes it, the fields before it stay (the CSRF token first), the rest
    and the files go, and the request is marked `form_text_too_large` for the page to
    answer 422 beside its field.

    Only for a signed-in principal holding every permission the page needs: anyone else
    still meets Django's check before a byte is kept."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        limit = getattr(view_func, "form_body_limit", None)
        if limit is None or request.method != "POST":
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        ceiling = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if ceiling is None or length <= ceiling or length > limit:
            return None  # Django's own handling
        user = getattr(request, "user", None)
        needed = getattr(view_func, "required_permissions", ())
        if user is None or not user.is_authenticated or not needed:
            return None
        holds = any if getattr(view_func, "any_of", False) else all
        if not holds(user.has_permission(p) for p in needed):
            return None
        if hasattr(request, "_body") or getattr(request, "_read_started", False):
            return None
        if request.content_type == "application/x-www-form-urlencoded":
            request._body = request.read(length)  # what HttpRequest.body keeps, unchecked
        elif request.content_type == "multipart/form-data":
            _parse_multipart(request)
        return None


def _parse_multipart(request) -> None:
    """request.POST and request.FILES as Django parses them; when the text fields pass
    its limit, the fields read before the one that did, and no files."""
    parser = MultiPartParser(request.META, request, request.upload_handlers, request.encoding)
    try:
        request._post, request._files = parser.parse()
    except RequestDataTooBig:
        request._post = getattr(parser, "_post", None) or QueryDict()
        request._files = MultiValueDict()
        request.form_text_too_large = True
    except MultiPartParserError:
        request._mark_post_parse_error()  # as Django does: an empty form


class HtmxMessagesMiddleware:
    """After an HTMX request, hand Django's messages to the page as an HX-Trigger event."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not getattr(request, "htmx", False) or 300 <= response.status_code < 400:
            return response
        if "HX-Redirect" in response.headers or "HX-Location" in response.headers:
            return response  # the next full page shows them
        pending = [
            {"level": m.level_tag, "message": str(m.message)}
            for m in messages.get_messages(request)
        ]
        if not pending:
            return response
        triggers = {}
        if "HX-Trigger" in response.headers:
            raw = response.headers["HX-Trigger"]
            try:
                triggers = json.loads(raw)
            except ValueError:
                triggers = {name.strip(): None for name in raw.split(",")}
        triggers["messages"] = pending
        response.headers["HX-Trigger"] = json.dumps(triggers)
        return response


# --- Content-Security-Policy and Permissions-Policy ------------------------------------

NONCE = "'nonce-{nonce}'"
# Every page: our own files only. An inline <script> or <style> runs only when it carries
# the request's nonce (`{{ request.csp_nonce }}`); there is no 'unsafe-inline' or
# 'unsafe-eval' for scripts anywhere. img-src allows data: for Pico's and Swagger UI's
# inline SVG icons.
CONTENT_SECURITY_POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'", NONCE),
    "style-src": ("'self'", NONCE),
    "img-src": ("'self'", "data:"),
    "font-src": ("'self'",),
    "connect-src": ("'self'",),
    "object-src": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}
# The Django admin writes an inline <style> we do not template (change lists without
# actions), so its pages allow inline styles; scripts stay as strict as everywhere.
ADMIN_POLICY = {**CONTENT_SECURITY_POLICY, "style-src": ("'self'", "'unsafe-inline'")}
# Browser features the console never uses, off for it and anything it could be made to load.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)


def content_security_policy(policy: dict[str, tuple[str, ...]], nonce: str) -> str:
    return "; ".join(
        " ".join((directive, *(source.format(nonce=nonce) for source in sources)))
        for directive, sources in policy.items()
    )


class SecurityHeadersMiddleware:
    """A Content-Security-Policy and a Permissions-Policy on every response.

    Each request gets a fresh nonce (`request.csp_nonce`) for the inline script or style a
    template cannot avoid. Django's own debug pages (DEBUG only: the yellow 404 and 500)
    are full of inline script and style, so they go without the policy.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(18)
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if settings.DEBUG and response.status_code in (404, 500):
            return response
        policy = ADMIN_POLICY if request.path.startswith(_admin_prefix()) else None
        response.headers.setdefault(
            "Content-Security-Policy",
            content_security_policy(policy or CONTENT_SECURITY_POLICY, request.csp_nonce),
        )
        return response


@functools.cache
def _admin_prefix() -> str:
    return reverse("admin:index")
