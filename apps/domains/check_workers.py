"""Check all's worker processes: each checks a slice of a batch's domains (DNS only, no
database) so that every core judges answers; the run's process stores the results.

The processes are spawned (not forked: the task's process holds database connections and a
heartbeat thread) and set Django up themselves. Everything a check needs from the settings
travels with each slice, so a slice is checked exactly as the run's process would check it.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckConfig:
    nameservers: list[tuple[str, int]]
    timeout: float
    hostname: str
    outbound_ips: list[str]
    deadline: float
    concurrency: int


def _setup() -> None:
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def check_slice(
    config: CheckConfig, record_sets: list[list[dict]], *, in_worker: bool = False
) -> list[list[tuple]]:
    """apps.domains.checks.check_domains for one slice (in a worker process: `in_worker`)."""
    _setup()
    from apps.domains import checks
    from mailadmin.dns import WireResolver

    resolver = WireResolver(config.nameservers, timeout=config.timeout, lifetime=config.timeout)
    # A worker does nothing but this slice: the cyclic garbage collector, which rescans the
    # thousands of lookups under way again and again (a third of the CPU at 50 domains at a
    # time), waits until the slice is done. Its garbage is bounded by the slice.
    collecting = gc.isenabled()
    if in_worker:
        gc.disable()
    try:
        results = checks.run_sync(
            checks.check_domains(
                record_sets,
                concurrency=config.concurrency,
                resolver=resolver,
                hostname=config.hostname,
                outbound_ips=config.outbound_ips,
                deadline=config.deadline,
            )
        )
    finally:
        if in_worker and collecting:
            gc.enable()
            gc.collect()
    # plain tuples of str (the status is a str enum): nothing Django-specific to unpickle
    return [[(str(s), list(found), detail) for s, found, detail in domain] for domain in results]


class Checker:
    """Checks batches of domains: in this process, or split over `processes` spawned ones.
    `submit(record_sets)` starts a batch and returns a function giving its results, so the
    caller can store one batch while the next is being checked."""

    def __init__(self, config: CheckConfig, *, processes: int) -> None:
        self.config = config
        self.processes = processes
        self.pool: ProcessPoolExecutor | None = None
        if processes > 1 and multiprocessing.current_process().daemon:
            # Celery's prefork pool runs tasks in daemonic processes, which may not start
            # processes of their own: run the dns queue's worker with --pool threads (or
            # solo) to spread Check all over the cores.
            logger.warning(
                "Check all runs in one process: this worker process is daemonic (Celery's "
                "prefork pool); start the dns queue's worker with --pool threads to use "
                "%d processes",
                processes,
            )
            self.processes = processes = 1
        if processes > 1:
            self.pool = ProcessPoolExecutor(
                max_workers=processes, mp_context=multiprocessing.get_context("spawn")
            )

    def submit(self, record_sets: Sequence[list[dict]]) -> Callable[[], list[list[tuple]]]:
        if self.pool is None:
            results = check_slice(self.config, list(record_sets))
            return lambda: results
        size = -(-len(record_sets) // self.processes)
        futures: list[Future] = [
            self.pool.submit(
                check_slice, self.config, list(record_sets[i : i + size]), in_worker=True
            )
            for i in range(0, len(record_sets), size)
        ]
        return lambda: [domain for future in futures for domain in future.result()]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None

    def __enter__(self) -> Checker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
