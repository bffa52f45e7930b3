"""Self-check runs: started from a page or the API, carried out by a Celery worker."""

from __future__ import annotations

from apps.telemetry.selfcheck import CHECKS
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import (
    task_run_claim,
    task_run_finish,
    task_run_progress,
    task_run_start,
)


def self_check_start(*, actor) -> TaskRun:
    from apps.telemetry.tasks import self_check_task

    return task_run_start(actor=actor, kind="self-check", title="Self-check", task=self_check_task)


def self_check_run(*, run_id: str) -> None:
    if not task_run_claim(run_id, total=len(CHECKS)):
        return
    rows = []
    for done, check in enumerate(CHECKS, start=1):
        try:
            result = check()
        except Exception as exc:  # a check that crashed is a failed check, shown as such
            rows.append({"name": check.__name__, "ok": False, "detail": f"error: {exc}"})
        else:
            rows.append(result.as_dict())
        task_run_progress(run_id, done=done, message=f"{rows[-1]['name']}: {rows[-1]['detail']}")
    failed = [row["name"] for row in rows if not row["ok"]]
    message = "All checks passed." if not failed else "Failed: " + ", ".join(failed)
    task_run_finish(run_id, ok=not failed, message=message, result={"rows": rows})
