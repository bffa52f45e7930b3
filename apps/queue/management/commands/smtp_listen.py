import asyncio
import contextlib

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.queue.smtp import serve


class Command(BaseCommand):
    help = "Run the SMTP listeners (inbound MX and submission) in the foreground."

    def handle(self, *args, **options):
        binds = {"inbound": settings.MAILADMIN_SMTP_BIND}
        binds["submission"] = settings.MAILADMIN_SUBMISSION_BIND
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(binds))
