"""Seed 100,000 principals into one tenant and time the principal list API and list page.

    .venv/bin/python bench/principals.py [--count 100000] [--requests 20]

Uses DATABASE_URL when set: the data goes into a tenant named bench-<time>, which is
deleted afterwards (with everything in it). Without DATABASE_URL it uses a throwaway
SQLite file under var/bench/, removed at the end. Prints the median of ~20 requests of
each kind (Django test Client, in process: no network, no server).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def configure() -> Path | None:
    """Settings come from the environment: set ours before Django reads them."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailadmin.settings")
    os.environ.setdefault("MAILADMIN_DEBUG", "0")  # no query log: time what production runs
    hosts = os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1")
    os.environ["ALLOWED_HOSTS"] = f"{hosts},testserver"
    if os.environ.get("DATABASE_URL"):
        return None
    path = ROOT / "var" / "bench" / f"principals-{os.getpid()}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    return path


def seed(count: int, label: str):
    from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
    from apps.accounts.principals.services import builtin_role, tenant_ensure

    tenant = tenant_ensure(name=label, description="Benchmark tenant")
    admin = Principal.objects.create_user(
        f"{label}-admin", "bench-password-1", type=PrincipalType.INDIVIDUAL, tenant=tenant
    )
    admin.roles.add(builtin_role("tenant-admin"))

    # 1% domains, 2% groups, 1% lists, the rest accounts.
    kinds = [(PrincipalType.DOMAIN, count // 100), (PrincipalType.GROUP, count // 50)]
    kinds += [(PrincipalType.LIST, count // 100)]
    kinds += [(PrincipalType.INDIVIDUAL, count - sum(n for _, n in kinds))]
    for kind, n in kinds:
        suffix = ".bench.example" if kind == PrincipalType.DOMAIN else ""
        Principal.objects.bulk_create(
            (
                Principal(
                    name=f"{label}-{kind.lower()}{i:06}{suffix}",
                    type=kind,
                    tenant=tenant,
                    description=f"{kind.label} {i}",
                    password="!",
                )
                for i in range(n)
            ),
            batch_size=5000,
        )

    def ids(kind: str) -> list[int]:
        rows = Principal.objects.filter(tenant=tenant, type=kind).order_by("pk")
        return list(rows.values_list("pk", flat=True))

    domains = list(
        Principal.objects.filter(tenant=tenant, type=PrincipalType.DOMAIN)
        .order_by("pk")
        .values_list("name", flat=True)
    )
    accounts, groups, lists = ids("individual"), ids("group"), ids("list")
    accounts.remove(admin.pk)
    PrincipalEmail.objects.bulk_create(
        (
            PrincipalEmail(
                principal_id=pk, address=f"u{pk}@{domains[i % len(domains)]}", position=0
            )
            for i, pk in enumerate(accounts)
        ),
        batch_size=5000,
    )
    user = builtin_role("user")
    Roles = Principal.roles.through
    Roles.objects.bulk_create(
        (Roles(from_principal_id=pk, to_principal_id=user.pk) for pk in accounts),
        batch_size=5000,
    )
    Members = Principal.member_of.through
    Members.objects.bulk_create(
        (
            Members(from_principal_id=pk, to_principal_id=target[i % len(target)])
            for i, pk in enumerate(accounts)
            for target in (groups, lists)
        ),
        batch_size=5000,
    )
    return tenant, admin


def median_ms(client, urls: list[str], **headers) -> tuple[float, int]:
    client.get(urls[0], **headers)  # warm-up: template loading, first connection
    timings = []
    for url in urls:
        start = time.perf_counter()
        response = client.get(url, **headers)
        timings.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    return statistics.median(timings), len(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="principals to seed")
    parser.add_argument("--requests", type=int, default=20, help="requests per measurement")
    args = parser.parse_args()

    sqlite_path = configure()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from apps.accounts.auth.tokens import token_issue
    from apps.accounts.models import AccessToken

    label = f"bench-{int(time.time())}"
    tenant = None
    try:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        tenant, admin = seed(args.count, label)
        seeded = time.perf_counter() - started
        print(f"database: {connection.vendor}; seeded {args.count:,} principals in {seeded:.1f} s")

        _, token = token_issue(principal=admin, kind=AccessToken.Kind.OAUTH, name="bench")
        api = Client()
        auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        pages = [1 + (i * 37) % 1000 for i in range(args.requests)]
        results = [
            (
                "list API   GET /api/principal?types=individual&limit=50&page=N",
                median_ms(
                    api,
                    [f"/api/principal?types=individual&limit=50&page={n}" for n in pages],
                    **auth,
                ),
            ),
            (
                "search API GET /api/principal?filter=...",
                median_ms(
                    api,
                    [f"/api/principal?filter=individual{n:03}" for n in pages],
                    **auth,
                ),
            ),
        ]
        console = Client()
        console.force_login(admin)
        results.append(
            (
                "list page  GET /accounts/?type=individual&page=N",
                median_ms(console, [f"/accounts/?type=individual&page={n}" for n in pages]),
            )
        )
        for label_, (median, n) in results:
            print(f"{label_:<66} median {median:7.1f} ms over {n} requests")
    finally:
        if sqlite_path is not None:
            connection.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
        elif tenant is not None:
            tenant.delete()  # everything seeded belongs to this tenant


if __name__ == "__main__":
    main()
