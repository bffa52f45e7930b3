"""Write what parsedmarc extracts from each corpus report, for tests/unit/reports to compare.

Runs in parsedmarc's own virtualenv (it is not a dependency of mailadmin):

    python3 -m venv var/parsedmarc-venv && var/parsedmarc-venv/bin/pip install parsedmarc
    var/parsedmarc-venv/bin/python bench/reports_expected.py

Timespan normalisation is turned off (parsedmarc would otherwise split the records of a
report spanning more than a day into several per-day records), so records compare 1:1.
Reports of more than 100 records are summarised by a digest of their sorted records.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import parsedmarc

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("MAILADMIN_CORPUS_DIR") or ROOT.parent / "shared" / "corpus")
OUT = ROOT / "tests" / "unit" / "reports" / "data" / "parsedmarc_corpus.json"
FOLDERS = ("dmarc-aggregate", "dmarc-forensic", "arf", "tlsrpt")


def record_row(record: dict) -> list:
    auth = record["auth_results"]
    return [
        record["source"]["ip_address"],
        record["count"],
        record["policy_evaluated"]["disposition"],
        record["policy_evaluated"]["dkim"],
        record["policy_evaluated"]["spf"],
        record["identifiers"]["header_from"],
        sorted([a["domain"], a.get("selector") or "", a["result"]] for a in auth["dkim"]),
        sorted([a["domain"], a.get("scope") or "", a["result"]] for a in auth["spf"]),
    ]


def digest(rows: list) -> str:
    text = json.dumps(sorted(rows, key=json.dumps), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def main() -> int:
    out: dict[str, dict] = {}
    files = sorted(p for f in FOLDERS for p in (CORPUS / f).rglob("*") if p.is_file())
    for path in files:
        rel = str(path.relative_to(CORPUS))
        try:
            parsed = parsedmarc.parse_report_file(
                str(path),
                offline=True,
                always_use_local_files=True,
                normalize_timespan_threshold_hours=10**9,
            )
        except Exception as exc:  # noqa: BLE001 - record what parsedmarc says
            out[rel] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            continue
        kind, report = parsed["report_type"], parsed["report"]
        if kind == "aggregate":
            rows = [record_row(r) for r in report["records"]]
            entry = {
                "type": "dmarc",
                "org": report["report_metadata"]["org_name"],
                "reportId": report["report_metadata"]["report_id"],
                "domain": report["policy_published"]["domain"],
                "recordCount": len(rows),
                "messages": sum(r[1] for r in rows),
            }
            if len(rows) > 100:
                entry["digest"] = digest(rows)
                entry["distinctIps"] = len({r[0] for r in rows})
            else:
                entry["records"] = rows
        elif kind == "smtp_tls":
            entry = {
                "type": "tls",
                "org": report["organization_name"],
                "reportId": report["report_id"],
                "policies": [
                    [
                        p["policy_domain"],
                        p["policy_type"],
                        p["successful_session_count"],
                        p["failed_session_count"],
                        len(p.get("failure_details", [])),
                    ]
                    for p in report["policies"]
                ],
            }
        else:
            entry = {
                "type": "failure",
                "feedbackType": report.get("feedback_type"),
                "sourceIp": report.get("source", {}).get("ip_address"),
                "reportedDomain": report.get("reported_domain"),
                "authFailure": report.get("auth_failure"),
            }
        out[rel] = entry
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(out)} entries to {OUT} (parsedmarc {parsedmarc.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
