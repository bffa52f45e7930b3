"""The self-check: started from its page or the API by a superadmin (see selectors for why
only them), carried out by a worker as that superadmin."""

from __future__ import annotations

from apps.accounts.models import Principal
from apps.telemetry.selectors import SELF_CHECK_KIND, require_superadmin
from apps.telemetry.selfcheck import CHECKS
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import Outcome, Progress, task_run_start

SELF_CHECK_TASK = "telemetry.self_check"


def self_check_start(*, actor: Principal) -> TaskRun:
    """Start a self-check (or return the one under way)."""
    require_superadmin(actor)
    return task_run_start(
        actor=actor,
        kind=SELF_CHECK_KIND,
        title="Self-check",
        task_name=SELF_CHECK_TASK,
        tenant_id=None,
    )


def self_check_run(*, actor: Principal | None, progress: Progress) -> Outcome:
    """Run every check against the real peers and say which failed."""
    require_superadmin(actor)
    progress.begin(len(CHECKS))
    rows = []
    for done, check in enumerate(CHECKS, start=1):
        try:
            result = check()
        except Exception as exc:  # a check that crashed is a failed check, shown as such
            rows.append({"name": check.__name__, "ok": False, "detail": f"error: {exc}"})
        else:
            rows.append(result.as_dict())
        progress.step(done, f"{rows[-1]['name']}: {rows[-1]['detail']}")
    failed = [row["name"] for row in rows if not row["ok"]]
    message = "All checks passed." if not failed else "Failed: " + ", ".join(failed)
    return Outcome(ok=not failed, message=message, result={"rows": rows})
