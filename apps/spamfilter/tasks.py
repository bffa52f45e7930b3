"""Spam filter tasks: the quarantine's daily retention purge and digest, as runs on the
shared task base (claim, lease, outcome), started once a day by beat."""

from __future__ import annotations

from celery import shared_task

from apps.spamfilter import quarantine
from mailadmin.core.progress import Outcome
from mailadmin.core.taskbase import RunContext, run_task


@shared_task(name="spamfilter.quarantine_due", ignore_result=True)
def quarantine_due_task() -> list[str]:
    """Beat, daily: start today's purge and digest runs (a second call finds them)."""
    return [str(run.pk) for run in quarantine.quarantine_runs_start()]


@run_task(name=quarantine.PURGE_TASK, max_attempts=3, max_runtime=900)
def quarantine_purge_task(run: RunContext) -> Outcome:
    """Delete items past the retention (safe to repeat: what is gone stays gone)."""
    return quarantine.purge_outcome(quarantine.quarantine_purge(progress=run))


@run_task(name=quarantine.DIGEST_TASK, max_attempts=3, max_runtime=1800)
def quarantine_digest_task(run: RunContext) -> Outcome:
    """One digest per quarantine owner (safe to repeat: an item named in a digest is
    marked in the same transaction, so a retry names only the rest)."""
    return quarantine.digest_outcome(quarantine.quarantine_digest_send(progress=run))


@shared_task(name="spamfilter.bayes_forget_deleted", ignore_result=True)
def bayes_forget_deleted_task() -> str:
    """Beat, daily: start today's sweep of deleted accounts' Bayes models (a second call
    finds it)."""
    return str(quarantine.bayes_forget_run_start().pk)


@run_task(name=quarantine.BAYES_FORGET_TASK, max_attempts=3, max_runtime=1800)
def bayes_forget_deleted_run_task(run: RunContext) -> Outcome:
    """Purge the Bayes models of accounts that no longer exist (safe to repeat)."""
    from apps.spamfilter import bayes

    forgotten = bayes.forget_deleted_accounts(progress=run)
    return Outcome(
        True, f"Purged {forgotten} Bayes model(s) of deleted accounts.", {"purged": forgotten}
    )
