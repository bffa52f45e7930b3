"""Run web server, Celery worker, Celery beat and SMTP listeners together (Ctrl-C stops all)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'


class Command(BaseCommand):
    help = "Run web + worker + scheduler + SMTP in the foreground; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=2, help="web processes")
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker slots")

    def handle(self, *args, **options):
        python = sys.executable
        host, port = settings.MAILADMIN_HTTP_BIND
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        queues = ",".join(settings.MAILADMIN_CELERY_QUEUES)
        var = str(settings.VAR_DIR)
        commands = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "mailadmin.wsgi:application",
                "--bind",
                bind,
                "--workers",
                str(options["workers"]),
                "--threads",
                str(settings.MAILADMIN_WEB_THREADS),
                "--worker-class",
                "gthread",
                "--access-logfile",
                "-",
                # The request line without its query string: live streams carry their
                # token there (EventSource sends no headers), searches their terms.
                "--access-logformat",
                ACCESS_LOG_FORMAT,
                "--no-control-socket",  # two instances on one machine would share its path
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "mailadmin",
                "worker",
                "-Q",
                queues,
                "--concurrency",
                str(options["concurrency"]),
                "--loglevel",
                "INFO",
                "-n",
                "worker@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "mailadmin",
                "beat",
                "--loglevel",
                "INFO",
                "--pidfile",
                os.path.join(var, "celerybeat.pid"),
                "--schedule",
                settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
            "smtp": [python, "manage.py", "smtp_listen"],
        }
        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        cwd = str(settings.BASE_DIR)
        for name, argv in commands.items():
            children[name] = subprocess.Popen(argv, cwd=cwd, start_new_session=True)
            self.stdout.write(f"started {name} (pid {children[name].pid})")
        smtp_host, smtp_port = settings.MAILADMIN_SMTP_BIND
        self.stdout.write(
            self.style.SUCCESS(
                f"mailadmin is up: http://{bind}/  SMTP {smtp_host}:{smtp_port}  "
                f"submission {settings.MAILADMIN_SUBMISSION_BIND[0]}:"
                f"{settings.MAILADMIN_SUBMISSION_BIND[1]}  (Ctrl-C stops all)"
            )
        )
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with {child.returncode}; stopping all")
                    exit_code = child.returncode or 1
                    stopping = True
                    break
            time.sleep(0.5)
        for child in children.values():
            if child.poll() is None:
                child.terminate()  # each shuts its own pool down gracefully
        deadline = time.monotonic() + 15
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        sys.exit(exit_code)
