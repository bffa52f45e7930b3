"""Inbound acceptance rate: messages/s the MX takes over SMTP on loopback, beside a bare
aiosmtpd that accepts and discards.

    .venv/bin/python bench/smtp_inbound.py [--messages 2000] [--clients 8]
        [--per-connection 1] [--size 2048] [--mailboxes 20] [--only bare|mailadmin]
        [--processes 0]

N client processes (smtplib) send to `--mailboxes` hosted mailboxes in turn (one mailbox
makes every delivery wait for the same folder's UID lock), `--per-connection` messages per
SMTP session (1: a new connection for every message, as Postfix's smtp-source does by
default). The mailadmin run does everything a real message costs: RCPT looked up in the
store, a Received line, the message stored in the mailbox's INBOX; it then counts the
messages in the store, so lost ones show. `--processes N` runs the listener as
`manage.py smtp_listen --processes N` instead of in this process (0, the default: in
process). Uses DATABASE_URL when set (its data goes into a tenant that is deleted
afterwards); otherwise a throwaway SQLite file. Blobs and generated files go to a
temporary MAILADMIN_VAR_DIR, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOMAIN = "bench-inbound.example"


def configure(var_dir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailadmin.settings")
    os.environ.setdefault("MAILADMIN_DEBUG", "0")
    os.environ.setdefault("MAILADMIN_LOG_LEVEL", "WARNING")
    os.environ["MAILADMIN_VAR_DIR"] = str(var_dir)


def recipient(n: int, mailboxes: int) -> str:
    return f"rcpt{n % mailboxes}@{DOMAIN}"


def message(size: int, n: int, to: str) -> bytes:
    head = (
        f"From: sender@remote.example\r\nTo: {to}\r\nSubject: bench {n}\r\n"
        f"Message-ID: <bench-{n}-{time.time_ns()}@remote.example>\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def send(job: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    """One client: `count` messages, `per_connection` per session. (accepted, refused)"""
    port, count, per_connection, size, mailboxes, first = job
    accepted = refused = 0
    sent = 0
    while sent < count:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.ehlo("bench.client")
            for _ in range(min(per_connection, count - sent)):
                to = recipient(first + sent, mailboxes)
                try:
                    client.sendmail("sender@remote.example", [to], message(size, sent, to))
                    accepted += 1
                except smtplib.SMTPException:
                    refused += 1
                sent += 1
    return accepted, refused


def run_clients(port: int, args) -> tuple[float, int, int, float]:
    """(seconds, accepted, refused, CPU seconds of this process: the server's side)"""
    share = [args.messages // args.clients] * args.clients
    for i in range(args.messages % args.clients):
        share[i] += 1
    jobs = [
        (port, n, args.per_connection, args.size, args.mailboxes, i)
        for i, n in enumerate(share)
        if n
    ]
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        send((port, 1, 1, args.size, 1, 0))  # warm-up: first connection, caches
        started, cpu = time.perf_counter(), time.process_time()
        results = pool.map(send, jobs)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return elapsed, sum(a for a, _ in results), sum(r for _, r in results), cpu


class BareListener:
    """aiosmtpd accepting everything and keeping nothing: the floor of the protocol cost."""

    def __init__(self) -> None:
        from aiosmtpd.smtp import SMTP

        class Discard:
            async def handle_DATA(self, server, session, envelope) -> str:
                return "250 OK"

        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server = asyncio.run_coroutine_threadsafe(
            self.loop.create_server(
                lambda: SMTP(Discard(), hostname="bare.example", enable_SMTPUTF8=True),
                "127.0.0.1",
                0,
            ),
            self.loop,
        ).result()
        self.port = self.server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


def seed(label: str, mailboxes: int):
    from apps.accounts.models import Principal, PrincipalType

    tenant = Principal.objects.create(name=label, type=PrincipalType.TENANT)
    Principal.objects.create(name=DOMAIN, type=PrincipalType.DOMAIN, tenant=tenant)
    for n in range(mailboxes):
        account = Principal.objects.create_user(
            f"{label}-rcpt{n}", None, type=PrincipalType.INDIVIDUAL, tenant=tenant
        )
        account.emails.create(address=recipient(n, mailboxes), position=0)
    return tenant


def stored_count(tenant) -> int:
    from apps.store.models import Message

    return Message.objects.filter(principal__tenant=tenant).count()


def report(name: str, elapsed: float, accepted: int, refused: int, cpu: float) -> None:
    rate = accepted / elapsed if elapsed else 0.0
    per_message = cpu / accepted * 1000 if accepted else 0.0
    print(
        f"{name:<10} {accepted:6d} accepted, {refused} refused in {elapsed:6.2f} s: "
        f"{rate:7.1f}/s; server CPU {per_message:.2f} ms per message"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listener_cpu(pid: int) -> float:
    """CPU seconds so far of a listener process and its children (Linux /proc)."""
    pids = [pid] + [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _stat(int(p.name))[1] == pid
    ]
    return sum(_stat(p)[0] for p in pids) / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int]:
    """(utime + stime in ticks, parent pid); (0, 0) for a process gone meanwhile."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    return int(fields[11]) + int(fields[12]), int(fields[1])


def run_with_processes(args) -> tuple[float, int, int, float]:
    """The listener as `manage.py smtp_listen --processes N`."""
    port = free_port()
    env = {
        **os.environ,
        "MAILADMIN_SMTP_BIND": f"127.0.0.1:{port}",
        "MAILADMIN_SUBMISSION_BIND": f"127.0.0.1:{free_port()}",
    }
    listener = subprocess.Popen(
        [sys.executable, "manage.py", "smtp_listen", "--processes", str(args.processes)],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(3)  # the other processes start after the first
        before = listener_cpu(listener.pid)
        elapsed, accepted, refused, _ = run_clients(port, args)
        cpu = listener_cpu(listener.pid) - before
    finally:
        listener.terminate()
        listener.wait(timeout=30)
    return elapsed, accepted, refused, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8, help="parallel client processes")
    parser.add_argument("--per-connection", type=int, default=1, help="messages per session")
    parser.add_argument("--size", type=int, default=2048, help="bytes per message")
    parser.add_argument("--mailboxes", type=int, default=20, help="recipients, in turn")
    parser.add_argument("--only", choices=("bare", "mailadmin"))
    parser.add_argument("--processes", type=int, default=0, help="smtp_listen processes")
    args = parser.parse_args()

    print(
        f"{args.messages} messages of ~{args.size} bytes, {args.clients} clients, "
        f"{args.per_connection} per connection, {args.mailboxes} mailboxes"
    )
    if args.only != "mailadmin":
        bare = BareListener()
        try:
            report("bare", *run_clients(bare.port, args))
        finally:
            bare.stop()
    if args.only == "bare":
        return

    var_dir = Path(tempfile.mkdtemp(prefix="bench-smtp-"))
    configure(var_dir)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from apps.queue.smtp import ListenerThread

    tenant = None
    try:
        call_command("migrate", verbosity=0)
        call_command("createcachetable", verbosity=0)
        tenant = seed(f"bench-smtp-{int(time.time())}", args.mailboxes)
        if args.processes:
            connection.close()
            elapsed, accepted, refused, cpu = run_with_processes(args)
        else:
            listener = ListenerThread({"inbound": ("127.0.0.1", 0)}).start()
            try:
                elapsed, accepted, refused, cpu = run_clients(listener.ports["inbound"], args)
            finally:
                listener.stop()
        report("mailadmin", elapsed, accepted, refused, cpu)
        stored = stored_count(tenant)
        print(
            f"database: {connection.vendor}, {settings.MAILADMIN_SMTP_DB_THREADS} db threads; "
            f"stored {stored} (warm-up included: {accepted + 1} accepted), "
            f"lost {accepted + 1 - stored}"
        )
    finally:
        if tenant is not None and connection.vendor != "sqlite":
            tenant.delete()
        connection.close()
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
