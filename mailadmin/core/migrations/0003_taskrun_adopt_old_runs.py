import django.utils.timezone
from django.db import migrations

UNFINISHED = ["pending", "running"]
# The two kinds of runs started before runs named their task.
TASKS = {"self-check": "telemetry.self_check", "dns-check": "domains.dns_check"}


def adopt_old_runs(apps, schema_editor):
    """Give runs made before the task base what it needs, so none stays stuck:

    - a running run gets an expired lease, and the reaper fails it (its worker is gone);
    - a pending run learns its task and arguments, so the reaper can resend its wake-up;
    - of two unfinished runs of one kind (now one at most), the older ends as superseded;
    - self-check runs leave their tenant: they show the whole server, superadmins only.
    """
    TaskRun = apps.get_model("core", "TaskRun")
    now = django.utils.timezone.now()
    TaskRun.objects.filter(kind="self-check").update(tenant=None)
    for run in TaskRun.objects.filter(state__in=UNFINISHED).select_related("actor"):
        kind, _, domain_id = run.kind.partition(":")
        run.actor_name = run.actor.name if run.actor else ""
        run.task_name = TASKS.get(kind, "")
        if kind == "dns-check" and domain_id.isdigit():
            run.arguments = {"domain_id": int(domain_id)}
        run.available_at = run.created_at
        if run.state == "running":
            run.attempts = run.max_attempts = 1
            run.lease_expires_at = run.heartbeat_at = run.updated_at
        run.save()
    seen = set()
    for run in TaskRun.objects.filter(state__in=UNFINISHED).order_by("-created_at"):
        if run.kind in seen:
            run.state = "failure"
            run.message = "Superseded by a newer run of the same kind."
            run.finished_at = now
            run.save()
        seen.add(run.kind)


class Migration(migrations.Migration):
    dependencies = [("core", "0002_taskrun_lease_and_claim")]

    operations = [migrations.RunPython(adopt_old_runs, migrations.RunPython.noop)]
