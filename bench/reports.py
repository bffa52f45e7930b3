"""Report ingestion speed against parsedmarc, and the memory a 100 MB report needs.

    .venv/bin/python bench/reports.py [--reports 500] [--big-mb 100] [--no-parsedmarc]

1. Generates --reports DMARC aggregate reports (a fixed seed: the same every run), half of
   them gzipped, 1-200 records each, under var/bench/.
2. Times our parser over them (bytes in, every record out), then our whole ingestion
   (parse and store, services.report_upload) into a throwaway SQLite database, or the one
   DATABASE_URL names (the rows are deleted afterwards).
3. Times parsedmarc (parse_report_file, offline) over the same files, in its own
   virtualenv: var/parsedmarc-venv by default (--parsedmarc-python to point elsewhere):
       python3 -m venv var/parsedmarc-venv && var/parsedmarc-venv/bin/pip install parsedmarc
4. Writes a --big-mb MB report (gzipped, as reporters send big ones) and reads it in a
   child process, printing that process's peak memory next to a child that only imports.

Prints reports/s and records/s for each, and our speed-up over parsedmarc, in wall-clock
and in CPU time (steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = ROOT / "var" / "bench" / f"reports-{os.getpid()}"

RESULTS = ["pass", "fail", "softfail", "neutral", "none", "temperror"]
DISPOSITIONS = ["none", "none", "none", "quarantine", "reject"]


def record_xml(rng: random.Random, domain: str) -> str:
    ip = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    dkim = rng.choice(["pass", "pass", "fail"])
    spf = rng.choice(["pass", "pass", "fail"])
    selector = rng.choice(["s1", "google", "selector1", "k1"])
    return (
        "<record><row>"
        f"<source_ip>{ip}</source_ip><count>{rng.randint(1, 500)}</count>"
        f"<policy_evaluated><disposition>{rng.choice(DISPOSITIONS)}</disposition>"
        f"<dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>"
        f"<identifiers><header_from>{domain}</header_from>"
        f"<envelope_from>bounce.{domain}</envelope_from></identifiers>"
        "<auth_results>"
        f"<dkim><domain>{domain}</domain><selector>{selector}</selector>"
        f"<result>{rng.choice(RESULTS)}</result></dkim>"
        f"<spf><domain>bounce.{domain}</domain><scope>mfrom</scope>"
        f"<result>{rng.choice(RESULTS)}</result></spf>"
        "</auth_results></record>\n"
    )


def report_head(n: int, domain: str, begin: int) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feedback>\n<report_metadata>'
        f"<org_name>reporter{n % 37}.example</org_name>"
        f"<email>noreply-dmarc@reporter{n % 37}.example</email>"
        f"<report_id>bench-{n}-{begin}</report_id>"
        f"<date_range><begin>{begin}</begin><end>{begin + 86399}</end></date_range>"
        "</report_metadata><policy_published>"
        f"<domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp>"
        "<pct>100</pct></policy_published>\n"
    )


def generate(count: int) -> tuple[list[Path], int]:
    rng = random.Random(20240601)
    WORK.mkdir(parents=True, exist_ok=True)
    paths, records = [], 0
    for n in range(count):
        domain = f"bench{n % 10}.example"
        begin = 1_700_000_000 + 86400 * (n % 60)
        size = rng.randint(1, 200)
        body = report_head(n, domain, begin)
        body += "".join(record_xml(rng, domain) for _ in range(size)) + "</feedback>\n"
        records += size
        data = body.encode()
        name = f"reporter{n % 37}.example!{domain}!{begin}!{begin + 86399}.xml"
        if n % 2:
            data, name = gzip.compress(data), name + ".gz"
        path = WORK / name
        path.write_bytes(data)
        paths.append(path)
    return paths, records


def rate(label: str, seconds: float, reports: int, records: int, cpu: float) -> dict:
    print(
        f"  {label:<34} {seconds:8.2f} s  {reports / seconds:9.1f} reports/s  "
        f"{records / seconds:11.0f} records/s  ({cpu:.2f} s CPU)"
    )
    return {"seconds": seconds, "reports": reports, "records": records, "cpu": cpu}


def bench_parse(paths: list[Path]) -> tuple[float, int, float]:
    from apps.reports.parsing import parse_all

    started, cpu = time.perf_counter(), time.process_time()
    records = 0
    for path in paths:
        for parsed in parse_all(path.read_bytes(), name=path.name):
            records += len(parsed.records)
    return time.perf_counter() - started, records, time.process_time() - cpu


def bench_ingest(paths: list[Path]) -> tuple[float, int, float]:
    """Parse and store, through the service every entry point uses (the CPU time is this
    process's: with PostgreSQL, the server's is not in it)."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{WORK / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailadmin.settings")
    os.environ.setdefault("MAILADMIN_DEBUG", "0")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.accounts.models import Principal, PrincipalType
    from apps.reports.models import Report
    from apps.reports.services import report_upload

    name = f"bench-reports-{os.getpid()}"
    actor = Principal.objects.create_user(
        name, "bench-password-1", type=PrincipalType.INDIVIDUAL, is_superuser=True
    )
    try:
        files = [(p.name, p.read_bytes()) for p in paths]
        started, cpu = time.perf_counter(), time.process_time()
        results = report_upload(actor=actor, files=files, source="api")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert all(r.status == "ingested" for r in results), results[:3]
        ids = [r.id for r in results]
        records = sum(Report.objects.filter(pk__in=ids).values_list("record_count", flat=True))
        Report.objects.filter(pk__in=ids).delete()
    finally:
        actor.delete()
    return seconds, records, cpu


PARSEDMARC_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, logging
    logging.disable(logging.CRITICAL)
    import parsedmarc
    paths = sys.argv[1:]
    started, cpu = time.perf_counter(), time.process_time()
    records = 0
    for path in paths:
        report = parsedmarc.parse_report_file(
            path, offline=True, always_use_local_files=True,
            normalize_timespan_threshold_hours=10**9,
        )
        records += len(report["report"]["records"])
    print(json.dumps({"seconds": time.perf_counter() - started, "records": records,
                      "cpu": time.process_time() - cpu, "version": parsedmarc.__version__}))
    """
)


def bench_parsedmarc(python: Path, paths: list[Path]) -> dict | None:
    if not python.exists():
        print(f"  parsedmarc: {python} missing (see the docstring); skipped")
        return None
    script = WORK / "parsedmarc_bench.py"
    script.write_text(PARSEDMARC_SCRIPT)
    done = subprocess.run(
        [str(python), str(script), *map(str, paths)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        print("  parsedmarc failed:", done.stderr[-2000:])
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- memory of a big report ----------------------------------------------------------------

BIG_CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    from apps.reports.parsing import Limits, documents, read

    def high_water_kb():
        # VmHWM: this process's peak resident memory (ru_maxrss would carry the parent's
        # peak across fork and exec).
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0
    if sys.argv[3] == "parse":
        data = open(sys.argv[2], "rb").read()
        limits = Limits(max_compressed=len(data) + 1, max_decompressed=1 << 40)
        started = time.perf_counter()
        records = 0
        for document in documents(data, name="big.xml.gz", limits=limits):
            reader = read(document, limits=limits)
            for _ in reader.records():
                records += 1
        seconds = time.perf_counter() - started
    else:
        data, records, seconds = b"", 0, 0.0
    print(json.dumps({"peak_kb": high_water_kb(), "records": records,
                      "seconds": seconds, "buffer": len(data)}))
    """
)


def write_big(megabytes: int) -> tuple[Path, int, int]:
    """A `megabytes` MB report written gzipped chunk by chunk (never whole in memory)."""
    rng = random.Random(7)
    path = WORK / "big.xml.gz"
    written = records = 0
    target = megabytes * 1024 * 1024
    with gzip.open(path, "wb", compresslevel=6) as out:
        head = report_head(0, "big.example", 1_700_000_000).encode()
        out.write(head)
        written += len(head)
        while written < target:
            chunk = "".join(record_xml(rng, "big.example") for _ in range(2000)).encode()
            out.write(chunk)
            written += len(chunk)
            records += 2000
        out.write(b"</feedback>\n")
    return path, written, records


def bench_big(megabytes: int) -> None:
    path, size, records = write_big(megabytes)
    script = WORK / "big_child.py"
    script.write_text(BIG_CHILD)
    outcome = {}
    for mode in ("import", "parse"):
        done = subprocess.run(
            [sys.executable, str(script), str(ROOT), str(path), mode],
            capture_output=True,
            text=True,
            check=True,
        )
        outcome[mode] = json.loads(done.stdout)
    parsed = outcome["parse"]
    assert parsed["records"] == records, (parsed["records"], records)
    base, peak = outcome["import"]["peak_kb"] / 1024, parsed["peak_kb"] / 1024
    print(
        f"  a {size / 2**20:.0f} MB report ({records:,} records, {path.stat().st_size / 2**20:.1f}"
        f" MB gzipped) read in {parsed['seconds']:.1f} s\n"
        f"  peak memory {peak:.0f} MB; {base:.0f} MB with the modules loaded and nothing read:"
        f" {peak - base:.0f} MB for the work, of which {parsed['buffer'] / 2**20:.1f} MB is the"
        " compressed file held as sent"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--big-mb", type=int, default=100, help="0 skips the big report")
    parser.add_argument("--no-parsedmarc", action="store_true")
    parser.add_argument("--no-db", action="store_true", help="skip the store-in-database run")
    parser.add_argument(
        "--parsedmarc-python",
        type=Path,
        default=ROOT / "var" / "parsedmarc-venv" / "bin" / "python",
    )
    args = parser.parse_args()
    try:
        paths, records = generate(args.reports)
        print(f"{len(paths)} generated DMARC aggregate reports, {records:,} records")
        seconds, parsed, cpu = bench_parse(paths)
        assert parsed == records, (parsed, records)
        print(f"  load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
        ours = rate("mailadmin: parse", seconds, len(paths), records, cpu)
        ingested = None
        if not args.no_db:
            seconds, stored, cpu = bench_ingest(paths)
            assert stored == records, (stored, records)
            ingested = rate("mailadmin: parse and store", seconds, len(paths), records, cpu)
        if not args.no_parsedmarc:
            theirs = bench_parsedmarc(args.parsedmarc_python, paths)
            if theirs:
                assert theirs["records"] == records, theirs
                rate(f"parsedmarc {theirs['version']}: parse", theirs["seconds"], len(paths),
                     records, theirs["cpu"])  # fmt: skip
                # On a shared machine CPU seconds vary less than wall-clock ones.
                for label, mine in (("parse", ours), ("parse and store", ingested)):
                    if mine:
                        print(
                            f"  speed-up ({label} vs parse): "
                            f"{theirs['seconds'] / mine['seconds']:.1f}x, "
                            f"{theirs['cpu'] / mine['cpu']:.1f}x in CPU time"
                        )
        print(f"  load average after: {os.getloadavg()[0]:.1f}")
        if args.big_mb:
            bench_big(args.big_mb)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
