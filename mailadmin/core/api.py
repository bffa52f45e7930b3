from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apps.accounts.permissions import Perm
from mailadmin.api.permissions import require
from mailadmin.api.schema import PROBLEM, envelope
from mailadmin.api.views import ApiView, ok
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import task_run_get


class TaskRunOutput(serializers.ModelSerializer):
    class Meta:
        model = TaskRun
        fields = [
            "id",
            "kind",
            "title",
            "state",
            "done",
            "total",
            "message",
            "result",
            "created_at",
            "finished_at",
        ]


class TaskRunDetailApi(ApiView):
    permission_classes = [require(Perm.DASHBOARD)]

    @extend_schema(responses={200: envelope("TaskRunEnvelope", TaskRunOutput()), 404: PROBLEM})
    def get(self, request, run_id):
        run = task_run_get(actor=request.user, run_id=run_id)
        return ok(TaskRunOutput(run).data)
