"""Every error under /api/ in the API's shape: problem JSON, never Django's HTML pages.

DRF's exception handler (mailadmin.api.exceptions) shapes the errors raised inside API
views. What happens outside them is shaped here: an unknown path (404), a body over the
size limit (413, from Django's own checks), an exception no handler knew (500, logged
like Django logs it), and the HTML error pages Django or another middleware answered with.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.log import log_response

from mailadmin.api.exceptions import DEFAULT_DETAILS, problem
from mailadmin.api.parsers import too_large_detail

API_PREFIX = "/api/"
PROBLEM_TYPES = ("application/json", "application/xml", "text/xml")


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def problem_json(status: int, detail: str | None = None) -> JsonResponse:
    return JsonResponse(
        problem(status, detail or DEFAULT_DETAILS.get(status, "Error")), status=status
    )


class ApiProblemMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api(request):
            return self.get_response(request)
        if "\x00" in request.path_info:
            return problem_json(404)  # a NUL byte names nothing (and PostgreSQL refuses it)
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_shaped(response):
            reshaped = problem_json(response.status_code)
            for header in ("Allow", "WWW-Authenticate", "Retry-After"):
                if header in response:
                    reshaped[header] = response[header]
            return reshaped
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not is_api(request):
            return None
        if isinstance(exc, RequestDataTooBig):
            return problem_json(413, too_large_detail())
        if isinstance(exc, Http404):
            return problem_json(404)
        if isinstance(exc, PermissionDenied):
            return problem_json(403)
        if isinstance(exc, SuspiciousOperation):
            return problem_json(400)
        # What Django does with an uncaught exception, minus the HTML: tell the listeners
        # (the test client re-raises it), log it with the traceback, answer 500.
        got_request_exception.send(sender=None, request=request)
        response = problem_json(500)
        log_response(
            "%s: %s",
            response.reason_phrase,
            request.path,
            response=response,
            request=request,
            exception=exc,
        )
        return response


def _is_shaped(response: HttpResponse) -> bool:
    content_type = response.get("Content-Type", "")
    return content_type.split(";")[0].strip() in PROBLEM_TYPES
