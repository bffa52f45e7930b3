"""Scan bench/spamfilter.py's held-out half with rspamd, the peer issue 11's speed goal
names, on this machine, and print messages/s of its scanning worker's CPU beside ours.

    apt-get install -y rspamd    # Debian 12's package is rspamd 3.4; leave its service off
    .venv/bin/python bench/rspamd_peer.py [--corpus $MAILADMIN_CORPUS_DIR] [--passes 2]
        [--redis redis://127.0.0.1:6379/5 | --no-redis] [--no-ours]

The messages, envelopes and DNS records are bench/spamfilter.py's own (its held-out half,
`envelope()`, `publish()`), served by tests/support/dns_server.py on loopback, rspamd's
only nameserver; names it does not know (the RBL, SURBL and ASN zones) answer NXDOMAIN at
once. rspamd runs in the foreground from /etc/rspamd with its local.d/override.d, run,
log and database directories under a temporary directory (the hyperscan cache is kept in
/tmp/rspamd_peer_hs between runs; the first run compiles it, and every run waits for the
compiled databases before scanning), one normal worker on a free port, the proxy off.
Modules are the defaults except fuzzy_check (rspamd.com's servers: internet) and greylist
(it soft-rejects a first delivery before the checks, which then do not run). Redis
(ratelimit, replies, history, neural, Bayes) is `--redis`'s, else off; Bayes is never
trained (it votes only after 200 learns of each class), which makes rspamd cheaper, not
dearer. Each message goes to /checkv2 with the bench's IP, Helo, From and Rcpt, one at a
time, on a new connection. rspamd keeps no DNS cache of its own (only SPF records, 300 s),
so every pass asks the server again (~40 queries a message). The figure is the normal
worker process's CPU (utime + stime from /proc/<pid>/stat) over each pass. Then
bench/spamfilter.py runs (unless `--no-ours`) and its pass lines are printed beside, with
the load average and a machine reference: the CPU seconds of a pure Python loop of 10M
iterations.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from dnslib import QTYPE, RCODE, RR, SOA, DNSRecord  # noqa: E402

from tests.support.dns_server import TTL, DnsServer  # noqa: E402

RSPAMD_CONF = Path("/etc/rspamd/rspamd.conf")
HS_CACHE = Path(tempfile.gettempdir()) / "rspamd_peer_hs"
REFERENCE_LOOP = 10_000_000
START_TIMEOUT = 600  # seconds: the first start compiles the hyperscan databases


class NegativeDnsServer(DnsServer):
    """The bench's server, with an SOA in the authority section of every NXDOMAIN and
    empty (NODATA) answer, as a real server sends (RFC 2308). rspamd's resolver takes a
    NOERROR answer without records or SOA for no answer and asks again (5 times, 1 s
    apart); the mailadmin scan's resolver needs no SOA, and gets none."""

    def answer(self, data: bytes) -> bytes | None:
        packed = super().answer(data)
        if packed is None:
            return None
        reply = DNSRecord.parse(packed)
        if not reply.rr and reply.header.rcode in (RCODE.NOERROR, RCODE.NXDOMAIN):
            soa = SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, TTL))
            reply.add_auth(RR("test.", QTYPE.SOA, ttl=TTL, rdata=soa))
            packed = reply.pack()
        return packed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reference_loop() -> float:
    """CPU seconds of a 10M-iteration pure Python loop: how fast this machine is."""
    started = time.process_time()
    total = 0
    for i in range(REFERENCE_LOOP):
        total += i
    return time.process_time() - started


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_seconds(pid: int) -> float:
    # The command name is in parentheses and may hold spaces: count fields after it.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def normal_worker(main_pid: int) -> int:
    """The normal worker's pid: rspamd titles each child by its type."""
    for pid in children(main_pid):
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if "normal" in title:
            return pid
    raise RuntimeError(f"no normal worker under rspamd's main process {main_pid}")


def write_config(local: Path, dns_port: int, port: int, controller: int, redis: str | None):
    (local / "local.d").mkdir(parents=True)
    (local / "override.d").mkdir()
    files = {
        "local.d/options.inc": (
            f'dns {{ nameserver = ["127.0.0.1:{dns_port}"]; }}\nhs_cache_dir = "{HS_CACHE}/";\n'
        ),
        "override.d/worker-normal.inc": f'bind_socket = "127.0.0.1:{port}";\ncount = 1;\n',
        "override.d/worker-controller.inc": f'bind_socket = "127.0.0.1:{controller}";\n',
        "override.d/worker-proxy.inc": "enabled = false;\ncount = 0;\n",
        "local.d/fuzzy_check.conf": "enabled = false;\n",
        # A first delivery is greylisted: a soft reject before the checks, which end there.
        "local.d/greylist.conf": "enabled = false;\n",
        "override.d/logging.inc": 'type = "file";\nlevel = "info";\n',
    }
    if redis:
        url = urlsplit(redis)
        db = url.path.strip("/") or "0"
        files["local.d/redis.conf"] = (
            f'servers = "{url.hostname}:{url.port or 6379}";\ndb = "{db}";\n'
        )
    for name, text in files.items():
        (local / name).write_text(text)


def wait_ready(port: int, log: Path, process: subprocess.Popen) -> None:
    """Until the worker answers and has loaded the hyperscan databases, compiled or from the
    cache (before that it matches with PCRE, slower, and would load them mid-pass)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"rspamd exited with {process.returncode}; see {log}")
        text = log.read_text(errors="replace") if log.exists() else ""
        if re.search(r"hs_helper.*compiled \d+ regular expressions to the hyperscan tree", text):
            time.sleep(3)  # the helper tells the workers after 1 s, they load then
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                pass
        time.sleep(1)
    sys.exit(f"rspamd not ready after {START_TIMEOUT}s; see {log}")


def check(port: int, raw: bytes, sender: str, rcpt: list[str]) -> dict:
    headers = {"IP": "192.0.2.25", "Helo": "mx.sender.test", "From": sender}
    headers.update({"Rcpt": rcpt[0]})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/checkv2", body=raw, headers=headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"rspamd answered {response.status}: {body[:200]!r}")
    return json.loads(body)


def ours(corpus: str, passes: int) -> list[str]:
    """bench/spamfilter.py's pass lines, run now, as its own process."""
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "spamfilter.py"),
            "--corpus",
            corpus,
            "--passes",
            str(passes),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return [line.split("; threshold")[0] for line in out.splitlines() if line.startswith("pass ")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus",
        default=os.environ.get("MAILADMIN_CORPUS_DIR") or str(ROOT.parent / "shared" / "corpus"),
    )
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--no-redis", action="store_true", help="run rspamd without Redis")
    parser.add_argument("--no-ours", action="store_true", help="skip bench/spamfilter.py")
    args = parser.parse_args()
    if not shutil.which("rspamd"):
        sys.exit("no rspamd: apt-get install -y rspamd")

    import spamfilter as bench

    # bench/spamfilter.py's split: every other message (sorted by path) learned, the rest held out.
    folder = Path(args.corpus) / "messages"
    spam = sorted(p for p in (folder / "spam").rglob("*") if p.is_file())
    ham = sorted(p for p in (folder / "ham").rglob("*") if p.is_file())
    if not spam or not ham:
        sys.exit(f"no messages under {folder}: pass --corpus or set MAILADMIN_CORPUS_DIR")
    train = [(p, True) for p in spam[::2]] + [(p, False) for p in ham[::2]]
    test = [(p, True) for p in spam[1::2]] + [(p, False) for p in ham[1::2]]

    server = NegativeDnsServer().start()
    bench.publish(server, [p.read_bytes() for p, _ in train + test])
    messages = [(raw, bench.envelope(raw)) for raw in (p.read_bytes() for p, _ in test)]

    version = subprocess.run(["rspamd", "--version"], capture_output=True, text=True).stdout
    print(
        f"{version.strip()}; machine reference: {REFERENCE_LOOP:,} Python loop iterations "
        f"in {reference_loop():.2f} s of CPU; load {load()}"
    )
    HS_CACHE.mkdir(exist_ok=True)
    port, controller = free_port(), free_port()
    redis = None if args.no_redis else args.redis
    with tempfile.TemporaryDirectory(prefix="rspamd_peer_") as tmp:
        base = Path(tmp)
        write_config(base / "local", server.port, port, controller, redis)
        for name in ("run", "db", "log"):
            (base / name).mkdir()
        log = base / "log" / "rspamd.log"
        command = ["rspamd", "-f", "-i", "-c", str(RSPAMD_CONF)]
        for var, value in (
            ("LOCAL_CONFDIR", base / "local"),
            ("RUNDIR", base / "run"),
            ("DBDIR", base / "db"),
            ("LOGDIR", base / "log"),
        ):
            command += ["--var", f"{var}={value}"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            started = time.monotonic()
            wait_ready(port, log, process)
            print(
                f"rspamd ready in {time.monotonic() - started:.0f}s (Redis: {redis or 'off'}, "
                "Bayes untrained)"
            )
            worker = normal_worker(process.pid)
            for number in range(1, args.passes + 1):
                actions: dict[str, int] = {}
                before, wall = cpu_seconds(worker), time.perf_counter()
                for raw, (sender, _, rcpt) in messages:
                    result = check(port, raw, sender, rcpt)
                    actions[result["action"]] = actions.get(result["action"], 0) + 1
                wall = time.perf_counter() - wall
                cpu = cpu_seconds(worker) - before
                print(
                    f"rspamd pass {number} ({'cold' if number == 1 else 'warm'} DNS cache): "
                    f"{len(messages)} messages in {wall:.2f}s = {len(messages) / wall:.0f} "
                    f"messages/s (worker CPU {cpu:.2f}s = {len(messages) / cpu:.0f} messages/s); "
                    f"load {load()}; actions {dict(sorted(actions.items()))}"
                )
        finally:
            process.terminate()
            process.wait(timeout=30)
    server.stop()
    if not args.no_ours:
        for line in ours(args.corpus, args.passes):
            print(f"ours {line}; load {load()}")


if __name__ == "__main__":
    main()
