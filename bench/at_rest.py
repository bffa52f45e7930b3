"""Time encryption at rest per message (apps.store.encryption.encrypt, no database): a
corpus message of median size and the largest, to OpenPGP (Curve25519 and RSA-2048 keys)
and S/MIME (RSA-2048), with throwaway keys.

    .venv/bin/python bench/at_rest.py [--runs 50]

Reads MAILADMIN_CORPUS_DIR (or ../shared/corpus)/messages. Prints the median and 95th
percentile per message, and the load average (note it beside any figure you quote).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus_messages() -> list[Path]:
    base = Path(os.environ.get("MAILADMIN_CORPUS_DIR") or ROOT.parent / "shared" / "corpus")
    files = sorted((p for p in (base / "messages").rglob("*") if p.is_file()), key=_size)
    if not files:
        sys.exit(f"no corpus messages under {base / 'messages'}")
    return files


def _size(path: Path) -> int:
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailadmin.settings")
    import django

    django.setup()
    warnings.simplefilter("ignore")
    import pgpy
    from pgpy.constants import KeyFlags, PubKeyAlgorithm

    from apps.accounts.auth import crypto
    from apps.store.encryption import AtRest, encrypt
    from tests.support.at_rest import pem, pgp_key, smime_identity

    rsa_pgp = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 2048)
    rsa_pgp.add_uid(
        pgpy.PGPUID.new("Bench", email="bench@example.test"),
        usage={KeyFlags.Sign, KeyFlags.EncryptCommunications, KeyFlags.EncryptStorage},
    )
    certificate, _ = smime_identity()
    settings = {
        "pgp-cv25519": AtRest(
            "pgp", "Aes256", crypto.parse_openpgp_public_keys(str(pgp_key().pubkey)).normalized
        ),
        "pgp-rsa2048": AtRest(
            "pgp", "Aes256", crypto.parse_openpgp_public_keys(str(rsa_pgp.pubkey)).normalized
        ),
        "smime-rsa2048": AtRest("smime", "Aes256", pem(certificate)),
    }
    files = corpus_messages()
    samples = {"median": files[len(files) // 2], "largest": files[-1]}
    print(f"load average before: {os.getloadavg()}")
    for label, path in samples.items():
        data = path.read_bytes()
        for name, at_rest in settings.items():
            encrypt(data, at_rest)  # parse the keys once (cached per process)
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                out = encrypt(data, at_rest)
                times.append((time.perf_counter() - start) * 1000)
            times.sort()
            print(
                f"{label:8} {len(data):>7} B  {name:14} median {statistics.median(times):6.2f} ms"
                f"  p95 {times[int(len(times) * 0.95) - 1]:6.2f} ms  stored {len(out):>7} B"
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
