"""Time local delivery into the mail store: deliver() per second, and one list address
expanded to many mailboxes (deliver_to_address).

    .venv/bin/python bench/store.py [--messages 2000] [--mailboxes 20] [--threads 1]

Uses DATABASE_URL when set (the data goes into a tenant named bench-store-<time>, deleted
afterwards); without it a throwaway SQLite file under var/bench/. Blobs go to a temporary
directory (MAILADMIN_BLOB_DIR), removed at the end. Messages are real corpus ham when
MAILADMIN_CORPUS_DIR (or ../shared/corpus) has some, each made unique by a header so
every delivery writes a new blob.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def configure(blob_dir: str) -> Path | None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailadmin.settings")
    os.environ.setdefault("MAILADMIN_DEBUG", "0")
    os.environ["MAILADMIN_BLOB_DIR"] = blob_dir
    if os.environ.get("DATABASE_URL"):
        return None
    path = ROOT / "var" / "bench" / f"store-{os.getpid()}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    return path


def samples() -> list[bytes]:
    corpus = Path(os.environ.get("MAILADMIN_CORPUS_DIR") or ROOT.parent / "shared" / "corpus")
    files = sorted(p for p in (corpus / "messages" / "ham").rglob("*") if p.is_file())
    if files:
        return [p.read_bytes() for p in files[:200]]
    body = b"Hello,\r\n\r\n" + b"A line of a plain message body.\r\n" * 100
    return [b"From: a@remote.example\r\nSubject: bench\r\n\r\n" + body]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    blob_dir = tempfile.mkdtemp(prefix="mailadmin-bench-blobs-")
    sqlite_path = configure(blob_dir)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
    from apps.store import recipients, services

    label = f"bench-store-{int(time.time())}"
    tenant = None
    try:
        call_command("migrate", verbosity=0)
        tenant = Principal.objects.create(name=label, type=PrincipalType.TENANT)
        domain = f"{label}.example"
        Principal.objects.create(name=domain, type=PrincipalType.DOMAIN, tenant=tenant)
        boxes = []
        for i in range(args.mailboxes):
            box = Principal.objects.create(
                name=f"{label}-u{i}", type=PrincipalType.INDIVIDUAL, tenant=tenant
            )
            PrincipalEmail.objects.create(principal=box, address=f"u{i}@{domain}")
            boxes.append(box)
        team = Principal.objects.create(
            name=f"{label}-team", type=PrincipalType.LIST, tenant=tenant
        )
        PrincipalEmail.objects.create(principal=team, address=f"team@{domain}")
        for box in boxes:
            box.member_of.add(team)
        data = samples()
        size = sum(len(d) for d in data) // len(data)

        per_thread = args.messages // args.threads

        def work(n: int) -> None:
            try:
                for i in range(per_thread):
                    unique = f"X-Bench: {n}-{i}\r\n".encode()
                    services.deliver(boxes[(n + i) % len(boxes)], unique + data[i % len(data)])
            finally:
                connection.close()

        started = time.perf_counter()
        if args.threads == 1:
            work(0)  # in this thread, so a profiler sees it
        else:
            threads = [threading.Thread(target=work, args=(n,)) for n in range(args.threads)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        elapsed = time.perf_counter() - started
        total = per_thread * args.threads
        print(
            f"database: {connection.vendor}; deliver(): {total} messages (~{size:,} bytes) "
            f"with {args.threads} thread(s) in {elapsed:.2f} s = {total / elapsed:,.0f}/s"
        )

        rounds = max(1, args.messages // (10 * args.mailboxes))
        started = time.perf_counter()
        for i in range(rounds):
            recipients.deliver_to_address(f"team@{domain}", f"X-List: {i}\r\n".encode() + data[0])
        elapsed = time.perf_counter() - started
        print(
            f"deliver_to_address(list of {args.mailboxes}): {rounds} messages in {elapsed:.2f} s"
            f" = {rounds * args.mailboxes / elapsed:,.0f} copies/s"
        )
        started = time.perf_counter()
        for _ in range(200):
            recipients.resolve(f"u1@{domain}")
        print(f"resolve(account): {(time.perf_counter() - started) / 200 * 1000:.2f} ms each")
    finally:
        shutil.rmtree(blob_dir, ignore_errors=True)
        if sqlite_path is not None:
            connection.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
        elif tenant is not None:
            tenant.delete()


if __name__ == "__main__":
    main()
