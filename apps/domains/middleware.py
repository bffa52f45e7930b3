"""The MTA-STS policy (RFC 8461), served at https://mta-sts.<domain>/.well-known/mta-sts.txt
for every domain hosted here.

A middleware rather than a view: the Host header names a customer's domain, which no
ALLOWED_HOSTS list can hold for every hosted domain. It answers this one path for hosts
`mta-sts.<hosted domain>` only, before anything reads the Host header, and builds no URL
from it; every other request goes on down the stack (and ALLOWED_HOSTS applies).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.accounts.emails import InvalidAddress, normalize_domain

POLICY_PATH = "/.well-known/mta-sts.txt"
PREFIX = "mta-sts."
TEXT = "text/plain; charset=utf-8"


def _policy_domain(request: HttpRequest) -> str | None:
    """The domain of an `mta-sts.<domain>` Host header (port and trailing dot dropped)."""
    host = request.META.get("HTTP_HOST", "").strip().lower()
    if host.startswith("["):  # an IPv6 literal is no domain
        return None
    host = host.rsplit(":", 1)[0].rstrip(".")
    if not host.startswith(PREFIX):
        return None
    try:
        return normalize_domain(host[len(PREFIX) :])
    except InvalidAddress:
        return None


class MtaStsPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path != POLICY_PATH:
            return self.get_response(request)
        domain = _policy_domain(request)
        if domain is None:
            return self.get_response(request)
        from apps.domains import selectors  # models are ready once requests arrive

        if request.method not in ("GET", "HEAD"):
            response = HttpResponse("Only GET.\n", status=405, content_type=TEXT)
            response["Allow"] = "GET, HEAD"
        elif selectors.domain_hosted(domain) is None:
            response = HttpResponse(
                "No MTA-STS policy for this domain.\n", status=404, content_type=TEXT
            )
        else:
            response = HttpResponse(selectors.mta_sts_policy(), content_type=TEXT)
            response["Cache-Control"] = "max-age=300"
        response["X-Content-Type-Options"] = "nosniff"
        return response
