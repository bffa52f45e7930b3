"""Mail client autoconfiguration, served to anyone (clients ask before they have a login):
Thunderbird's autoconfig file and Outlook's autodiscover answer. Both answer only for
domains hosted here (any other is a 404) and say nothing but how to reach the server: the
login name is the address the client itself sent, whether or not such a mailbox exists.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.emails import display_domain
from apps.domains import clientconfig, selectors
from mailadmin.core.decorators import public

XML = "application/xml; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
UNKNOWN_DOMAIN = "No mail configuration for this domain."
TOO_LARGE = f"The request is larger than {clientconfig.MAX_AUTODISCOVER_BODY} bytes."


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type=TEXT)


def _xml(body: bytes) -> HttpResponse:
    response = HttpResponse(body, content_type=XML)
    response["Cache-Control"] = "no-store"
    return response


@public
@require_GET
def thunderbird_autoconfig(request: HttpRequest) -> HttpResponse:
    """GET /mail/config-v1.1.xml?emailaddress=... (also under /.well-known/autoconfig/)."""
    raw = request.GET.get("emailaddress", "")
    if not raw.strip():
        return _text(400, "The emailaddress parameter is required.")
    try:
        _, domain_name = clientconfig.address_domain(raw)
    except clientconfig.BadRequest as exc:
        return _text(400, str(exc))
    domain = selectors.domain_hosted(domain_name)
    if domain is None:
        return _text(404, UNKNOWN_DOMAIN)
    return _xml(
        clientconfig.thunderbird_config(
            domain=domain.name, display_domain=display_domain(domain.name)
        )
    )


@public
@csrf_exempt  # a mail client posts it, with no session and no CSRF token
@require_POST
def outlook_autodiscover(request: HttpRequest) -> HttpResponse:
    """POST /autodiscover/autodiscover.xml with Outlook's request XML."""
    limit = clientconfig.MAX_AUTODISCOVER_BODY
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _text(400, "The Content-Length header is not a number.")
    if declared > limit:
        return _text(413, TOO_LARGE)
    body = request.read(limit + 1)
    if len(body) > limit:
        return _text(413, TOO_LARGE)
    try:
        address, domain_name = clientconfig.address_domain(clientconfig.autodiscover_address(body))
    except clientconfig.BadRequest as exc:
        return _text(400, str(exc))
    domain = selectors.domain_hosted(domain_name)
    if domain is None:
        return _text(404, UNKNOWN_DOMAIN)
    return _xml(
        clientconfig.autodiscover_response(
            address=address, display_domain=display_domain(domain.name)
        )
    )
