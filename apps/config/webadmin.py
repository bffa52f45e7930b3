"""Update WebAdmin (GET /api/update/webadmin).

mailadmin's console is part of the product: its templates and vendored static files ship
with the code (no CDN, nothing fetched at run time), so there is nothing to download. The
update re-collects the installed static files into STATIC_ROOT, which is what serves them,
so a STATIC_ROOT that was emptied or left behind by an older install matches the code
again; a new console comes with a new mailadmin release (and a restart).
"""

from __future__ import annotations

import io

from django.conf import settings
from django.core.management import call_command
from drf_spectacular.utils import extend_schema

from apps.accounts.models import Principal
from apps.accounts.permissions import Perm
from mailadmin.api.permissions import require
from mailadmin.api.schema import NULL_DATA, PROBLEM
from mailadmin.api.views import ApiView, ok
from mailadmin.audit import audit
from mailadmin.errors import ServiceError


class SuperadminOnly(ServiceError):
    status = 403
    title = "Forbidden"


def webadmin_update(*, actor: Principal) -> int:
    """Collect the shipped static files into STATIC_ROOT; how many were copied."""
    if not actor.is_active or not actor.reaches_all_tenants:
        raise SuperadminOnly("Updating the console is for superadmins only.")
    out = io.StringIO()
    call_command("collectstatic", interactive=False, verbosity=1, stdout=out)
    summary = out.getvalue().strip().splitlines()[-1] if out.getvalue().strip() else ""
    audit(
        actor=actor,
        action="webadmin.update",
        object_type="webadmin",
        object_repr=str(settings.STATIC_ROOT),
        tenant_id=None,
        changes={"collectstatic": summary},
    )
    return int(summary.split()[0]) if summary[:1].isdigit() else 0


class WebadminUpdateApi(ApiView):
    permission_classes = [require(Perm.WEBADMIN_UPDATE)]

    @extend_schema(
        responses={200: NULL_DATA, 403: PROBLEM},
        description=(
            "The console ships with mailadmin, so nothing is downloaded: its static files "
            "are collected again into STATIC_ROOT (superadmins only)."
        ),
    )
    def get(self, request):
        webadmin_update(actor=request.user)
        return ok(None)
