"""The SMTP listeners: inbound MX and authenticated submission.

This is the listening half: it greets, speaks ESMTP and bounds message size. What happens
to an accepted message (checks, filtering, local delivery, queueing) is the mail-flow
issue's work; until it lands, DATA is refused with a temporary error so no sender thinks
its mail was taken.
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings

log = logging.getLogger(__name__)


class InboundHandler:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        log.info(
            "refused message from %s for %d recipient(s): delivery not built yet",
            envelope.mail_from,
            len(envelope.rcpt_tos),
        )
        return "451 4.3.2 Mail delivery is not enabled on this server yet, try later"


def make_server(handler, *, hostname: str, ident: str) -> SMTP:
    return SMTP(
        handler,
        hostname=hostname,
        ident=ident,
        data_size_limit=settings.MAILADMIN_MAX_MESSAGE_SIZE,
        enable_SMTPUTF8=True,
    )


async def serve(binds: dict[str, tuple[str, int]]) -> None:
    """Run one listener per bind until cancelled."""
    loop = asyncio.get_running_loop()
    servers = []
    hostname = settings.MAILADMIN_HOSTNAME
    for name, (host, port) in binds.items():
        ident = f"mailadmin {name}"
        server = await loop.create_server(
            lambda ident=ident: make_server(InboundHandler(), hostname=hostname, ident=ident),
            host=host,
            port=port,
            reuse_address=True,
        )
        servers.append(server)
        log.info("SMTP %s listening on %s:%d", name, host, port)
    try:
        await asyncio.gather(*(s.serve_forever() for s in servers))
    finally:
        for server in servers:
            server.close()
