from __future__ import annotations

import logging

from celery import shared_task

from apps.accounts.auth.housekeeping import auth_housekeeping
from mailadmin.audit import audit_context

log = logging.getLogger(__name__)


@shared_task(name="accounts.housekeeping", ignore_result=True)
def auth_housekeeping_task() -> None:
    with audit_context("task"):
        deleted = auth_housekeeping()
    log.info("accounts housekeeping deleted %s", deleted)
