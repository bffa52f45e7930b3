import asyncio
import contextlib
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.queue.smtp import serve


class Command(BaseCommand):
    help = "Run the SMTP listeners (inbound MX and submission) in the foreground."

    def add_arguments(self, parser):
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            help="listener processes sharing the ports (SO_REUSEPORT): one per core scales "
            "the CPU-bound part (the database work of each message)",
        )

    def handle(self, *args, **options):
        binds = {"inbound": settings.MAILADMIN_SMTP_BIND}
        binds["submission"] = settings.MAILADMIN_SUBMISSION_BIND
        manage = str(settings.BASE_DIR / "manage.py")
        argv = [sys.executable, manage, "smtp_listen", "--processes", "1"]
        others = [subprocess.Popen(argv) for _ in range(max(1, options["processes"]) - 1)]

        def stop(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve(binds))
        finally:
            for other in others:
                other.terminate()
            for other in others:
                other.wait(timeout=15)
