"""End-to-end outbound throughput: enqueue → delivery worker → loopback SMTP sink.

    DATABASE_URL=postgres://... REDIS_URL=redis://... \\
        .venv/bin/python bench/queue_delivery.py [--messages 2000] [--workers 1 2] [--kills 2]

For each worker count: starts that many real Celery worker processes (solo pool, their own
queue on the broker), an SMTP sink in a process of its own and a DNS server whose MX for
remote.test points at the sink; enqueues --messages messages of one recipient each (about
2 KB) from --senders threads at once (as concurrent SMTP sessions would) as fast as they
are taken, through `services.enqueue_grouped`, the group commit the submission listener
uses (blob written and synced in the sender's thread, the rows of every sender waiting
committed in one transaction), and waits until the sink has them all.
Prints enqueue rate, end-to-end messages/s (first enqueue → last message at the sink), the
mean size of the commit groups, and the lost and duplicated recipient counts; then the
same with the queue stopped while enqueueing (delivery alone); with each, the CPU
milliseconds per message of the workers, the enqueueing process and the sink, and the
load average. Last, a recovery run: the messages are queued while the worker is killed
with SIGKILL at random moments and replaced --kills times; it prints the lost and
duplicated counts. Queue rows are deleted before each run. `--profile`: instead, cProfile
of one worker's delivery loop run in this process (the messages queued while stopped,
then drained), its top functions.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


ENQUEUE: list = []  # the enqueue function the senders call (--enqueue)

BODY = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n" * 30).encode()


def sink_process(port_out, control) -> None:
    """Runs the sink; answers "count" with the total and "counter" with per-address counts."""
    from tests.support.smtp_sink import SmtpSink

    sink = SmtpSink().start()
    port_out.send(sink.port)
    while True:
        request = control.recv()
        messages = sink.messages
        if request == "count":
            control.send(sum(len(m.rcpt_tos) for m in messages))
        elif request == "counter":
            control.send(Counter(r for m in messages for r in m.rcpt_tos))
        elif request == "cpu":
            control.send(time.process_time())
        else:
            sink.stop()
            return


def start_peers():
    """An empty queue, the sink in a process of its own and a DNS server whose MX for
    remote.test is the sink: (sink process, its control pipe, its port, the DNS server)."""
    from apps.queue.models import QueueControl, QueuedMessage
    from tests.support.dns_server import DnsServer

    QueuedMessage.objects.all().delete()
    QueueControl.objects.all().delete()
    port_in, port_out = multiprocessing.Pipe()
    control, child_control = multiprocessing.Pipe()
    sink = multiprocessing.Process(target=sink_process, args=(port_out, child_control))
    sink.start()
    port = port_in.recv()
    dns = DnsServer(
        {"remote.test": {"MX": [(10, "mx.remote.test.")]}, "mx.remote.test": {"A": ["127.0.0.1"]}}
    ).start()
    return sink, control, port, dns


def message(n: int) -> bytes:
    return (
        f"From: Bench <bench@origin.test>\r\nTo: <r{n}@remote.test>\r\n"
        f"Subject: bench message {n}\r\nMessage-ID: <bench-{n}-{time.time()}@origin.test>\r\n"
        "\r\n"
    ).encode() + BODY


def run(count: int, workers: int, senders: int, *, prequeued: bool = False) -> dict:
    """One pass; `prequeued`: enqueue with the queue stopped, then time only the delivery
    (start → the last message at the sink)."""
    from django.db import connections

    from apps.accounts.models import Principal
    from apps.queue import services
    from apps.queue.models import QueueRecipient
    from apps.queue.services import queue_start, queue_stop
    from tests.support.worker import Worker

    sink, control, port, dns = start_peers()
    env = {
        "MAILADMIN_DNS_NAMESERVERS": dns.address,
        "MAILADMIN_SMTP_REMOTE_PORT": str(port),
        "MAILADMIN_LOG_LEVEL": "WARNING",
    }
    started: list[Worker] = []
    try:
        for _ in range(workers):
            started.append(Worker(env, queue=started[0].queue if started else None).start())
        expected = [f"r{n}@remote.test" for n in range(count)]

        def submit(first: int) -> None:
            try:
                for n in range(first, count, senders):
                    ENQUEUE[0](
                        return_path="bench@origin.test", recipients=[expected[n]], data=message(n)
                    )
            finally:
                connections.close_all()

        operator, _ = Principal.objects.get_or_create(
            name="bench-operator", defaults={"type": "individual"}
        )
        if prequeued:
            queue_stop(actor=operator)
        worker_cpu0 = sum(cpu_of(w.process.pid) for w in started)
        control.send("cpu")
        sink_cpu0 = control.recv()
        own_cpu0 = time.process_time()
        services._group.batches.clear()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=submit, args=(i,)) for i in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        enqueued = time.perf_counter() - t0
        batches = list(services._group.batches)
        own_cpu = time.process_time() - own_cpu0  # enqueueing
        if prequeued:
            time.sleep(2)  # the wake-ups sent meanwhile are refused by the stopped queue
            worker_cpu0 = sum(cpu_of(w.process.pid) for w in started)
            control.send("cpu")
            sink_cpu0 = control.recv()
            t0 = time.perf_counter()
            queue_start(actor=operator)
        deadline = time.monotonic() + max(120, count / 10)
        while time.monotonic() < deadline:
            control.send("count")
            if control.recv() >= count:
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        worker_cpu = sum(cpu_of(w.process.pid) for w in started) - worker_cpu0
        control.send("cpu")
        sink_cpu = control.recv() - sink_cpu0
        load = os.getloadavg()[0]
        time.sleep(1)  # anything arriving late counts as a duplicate
        control.send("counter")
        received: Counter = control.recv()
        lost = sum(1 for address in expected if not received[address])
        duplicated = sum(c - 1 for c in received.values() if c > 1)
        delivered = QueueRecipient.objects.filter(status="delivered").count()
    finally:
        for worker in started:
            worker.stop()
        control.send("stop")
        sink.join(10)
        dns.stop()
    return {
        "workers": workers,
        "enqueue_per_s": count / enqueued,
        "per_s": count / elapsed,
        "seconds": elapsed,
        "lost": lost,
        "duplicated": duplicated,
        "recorded_delivered": delivered,
        "worker_ms": worker_cpu / count * 1000,
        "enqueue_ms": own_cpu / count * 1000,
        "sink_ms": sink_cpu / count * 1000,
        "load": load,
        "group": sum(batches) / len(batches) if batches else 0.0,
    }


def run_with_kills(count: int, kills: int, senders: int) -> dict:
    """Queue `count` messages from `senders` threads while the (single) worker is killed
    with SIGKILL and replaced `kills` times, at even steps of the deliveries; the sweep
    (the beat's tick) runs once each dead worker's lease lapsed. Kills land anywhere, also
    between the sink's 250 and the worker recording it: such a message is delivered again
    (SMTP's at-least-once), which the duplicated count shows."""
    from datetime import timedelta

    from django.db import connections

    from apps.queue import delivery
    from apps.queue.models import QueueRecipient
    from tests.support.worker import Worker

    sink, control, port, dns = start_peers()
    env = {
        "MAILADMIN_DNS_NAMESERVERS": dns.address,
        "MAILADMIN_SMTP_REMOTE_PORT": str(port),
        "MAILADMIN_LOG_LEVEL": "WARNING",
        "MAILADMIN_QUEUE_LEASE_SECONDS": "2",
    }
    expected = [f"k{n}@remote.test" for n in range(count)]

    def submit(first: int) -> None:
        try:
            for n in range(first, count, senders):
                ENQUEUE[0](
                    return_path="bench@origin.test", recipients=[expected[n]], data=message(n)
                )
        finally:
            connections.close_all()

    def delivered() -> int:
        return QueueRecipient.objects.filter(status="delivered").count()

    workers = [Worker(env).start()]
    t0 = time.perf_counter()
    threads = [threading.Thread(target=submit, args=(i,)) for i in range(senders)]
    try:
        for thread in threads:
            thread.start()
        for k in range(1, kills + 1):
            while delivered() < count * k // (kills + 1):
                time.sleep(0.01)
            workers[-1].kill()
            workers.append(Worker(env, queue=workers[0].queue).start())
            time.sleep(2.5)  # the dead worker's lease lapses
            delivery.sweep(grace=timedelta(0))
        for thread in threads:
            thread.join()
        delivery.sweep(grace=timedelta(0))
        deadline = time.monotonic() + max(120, count / 10)
        while delivered() < count and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        time.sleep(1)
        control.send("counter")
        received: Counter = control.recv()
    finally:
        for worker in reversed(workers):
            worker.stop()
        control.send("stop")
        sink.join(10)
        dns.stop()
    return {
        "seconds": elapsed,
        "lost": sum(1 for address in expected if not received[address]),
        "duplicated": sum(c - 1 for c in received.values() if c > 1),
    }


def cpu_line(r: dict, *, enqueue: bool = True) -> str:
    parts = [f"workers {r['worker_ms']:.1f}"]
    if enqueue:
        parts.append(f"enqueue {r['enqueue_ms']:.1f}")
    parts.append(f"sink {r['sink_ms']:.1f}")
    return f"CPU ms/message: {', '.join(parts)}; load {r['load']:.1f}"


def profile(count: int) -> None:
    """cProfile of the delivery loop a worker runs (`delivery.deliver`), in this process,
    over `count` messages queued while the queue was stopped (wake-ups off)."""
    import cProfile
    import pstats

    from apps.accounts.models import Principal
    from apps.queue import delivery
    from apps.queue.services import enqueue, queue_start, queue_stop

    sink, control, port, dns = start_peers()
    from django.test import override_settings

    operator, _ = Principal.objects.get_or_create(
        name="bench-operator", defaults={"type": "individual"}
    )
    delivery.wake = lambda domain_id: None  # this process is the worker
    try:
        queue_stop(actor=operator)
        for n in range(count):
            enqueue(return_path="bench@origin.test", recipients=[f"p{n}@remote.test"],
                    data=message(n))  # fmt: skip
        queue_start(actor=operator)
        with override_settings(
            MAILADMIN_DNS_NAMESERVERS=[("127.0.0.1", dns.port)],
            MAILADMIN_SMTP_REMOTE_PORT=port,
        ):
            profiler = cProfile.Profile()
            t0, cpu0 = time.perf_counter(), time.process_time()
            profiler.enable()
            done = 0
            while n := delivery.deliver(None):
                done += n
            profiler.disable()
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        control.send("stop")
        sink.join(10)
        dns.stop()
    print(
        f"delivered {done} in {elapsed:.1f} s ({done / elapsed:.0f}/s), "
        f"{cpu / done * 1000:.1f} CPU ms per message; load {os.getloadavg()[0]:.1f}"
    )
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="*",
        default=[1, 2],
        help="worker counts to measure (none: only the recovery run)",
    )
    parser.add_argument(
        "--senders", type=int, default=4, help="threads enqueueing (SMTP sessions) at once"
    )
    parser.add_argument(
        "--kills", type=int, default=2, help="SIGKILLs of the worker in the recovery run (0: none)"
    )
    parser.add_argument(
        "--enqueue",
        choices=["grouped", "single"],
        default="grouped",
        help="grouped: services.enqueue_grouped, as the submission listener (default); "
        "single: services.enqueue, a durable commit per message",
    )
    parser.add_argument(
        "--in-flight", type=int, default=None, help="group commits allowed in flight at once"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one worker's delivery loop instead"
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailadmin.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from apps.queue import services

    ENQUEUE.append(services.enqueue_grouped if args.enqueue == "grouped" else services.enqueue)
    if args.in_flight:
        services._group.max_in_flight = args.in_flight
    print(f"database: {connection.vendor}; broker: {os.environ.get('REDIS_URL') or 'embedded'}")
    print(
        f"{args.messages} messages of one recipient, {len(message(0))} bytes each, "
        f"enqueued by {args.senders} threads ({args.enqueue}, "
        f"{services._group.max_in_flight} group commit(s) in flight at most)"
    )
    if args.profile:
        profile(args.messages)
        return 0
    for workers in args.workers:
        r = run(args.messages, workers, args.senders)
        print(
            f"{r['workers']} worker(s): {r['per_s']:.0f} messages/s end to end "
            f"({r['seconds']:.1f} s; enqueue alone {r['enqueue_per_s']:.0f}/s, "
            f"{r['group']:.1f} messages a commit); "
            f"lost {r['lost']}, duplicated {r['duplicated']}, "
            f"recorded delivered {r['recorded_delivered']}; {cpu_line(r)}"
        )
        r = run(args.messages, workers, args.senders, prequeued=True)
        print(
            f"{r['workers']} worker(s), delivery alone (queued while stopped, then started): "
            f"{r['per_s']:.0f} messages/s; lost {r['lost']}, duplicated {r['duplicated']}; "
            f"{cpu_line(r, enqueue=False)}"
        )
    if args.kills:
        r = run_with_kills(args.messages, args.kills, args.senders)
        print(
            f"recovery: {args.messages} messages queued while the worker was killed with "
            f"SIGKILL and replaced {args.kills} times: lost {r['lost']}, "
            f"duplicated {r['duplicated']} ({r['seconds']:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
