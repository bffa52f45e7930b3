from __future__ import annotations

from celery import shared_task

from apps.telemetry.services import self_check_run


@shared_task(name="telemetry.self_check", ignore_result=True)
def self_check_task(run_id: str) -> None:
    self_check_run(run_id=run_id)
