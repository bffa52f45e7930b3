from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apps.accounts.permissions import Perm
from apps.telemetry.services import self_check_start
from mailadmin.api.permissions import require
from mailadmin.api.schema import PROBLEM, envelope
from mailadmin.api.views import ApiView, ok


class SelfCheckStartApi(ApiView):
    """Superadmins only (the service says so): the result shows the server's internals."""

    permission_classes = [require(Perm.TROUBLESHOOT)]

    @extend_schema(
        request=None,
        responses={200: envelope("TaskRunId", serializers.UUIDField()), 403: PROBLEM},
        description=(
            "Start a self-check (superadmins only), or get the one under way; poll "
            "GET /api/task/{id} for its progress."
        ),
    )
    def post(self, request):
        run = self_check_start(actor=request.user)
        return ok(str(run.id))
