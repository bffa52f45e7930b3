"""Another process scanning mail, for tests: `python -m tests.support.rules_probe`.

It sets Django up on the database named by DATABASE_URL (the test's), then for each line
read from stdin scans the message of that line (JSON string) as an authenticated
submission and prints the verdict's score and tags as one JSON line. It is never
restarted: what it prints shows when a change made by the test process reaches it."""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailadmin.settings")
    import django

    django.setup()
    from apps.spamfilter.services import scan

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        message = json.loads(line).encode()
        verdict = scan(
            message=message, remote_ip="", ehlo_domain="", env_from="jane@example.org",
            env_rcpt_to=["john@example.org"], authenticated_as="jane@example.org",
        )  # fmt: skip
        tags = {tag: result.value for tag, result in verdict.tags.items()}
        print(json.dumps({"score": verdict.score, "tags": tags}), flush=True)


if __name__ == "__main__":
    main()
