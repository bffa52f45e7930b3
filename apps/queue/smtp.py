"""The SMTP listeners: inbound MX and authenticated submission.

This is the listening half: it greets, speaks ESMTP and bounds message size. What happens
to an accepted message (checks, filtering, local delivery, queueing) is the mail-flow
issue's work; until it lands, DATA is refused with a temporary error so no sender thinks
its mail was taken.
"""

from __future__ import annotations

import asyncio
import logging
import threading

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
    servers = await start_servers(binds)
    try:
        await asyncio.gather(*(s.serve_forever() for s in servers.values()))
    finally:
        for server in servers.values():
            server.close()


async def start_servers(binds: dict[str, tuple[str, int]]) -> dict[str, asyncio.Server]:
    loop = asyncio.get_running_loop()
    hostname = settings.MAILADMIN_HOSTNAME
    servers = {}
    for name, (host, port) in binds.items():
        ident = f"mailadmin {name}"
        servers[name] = await loop.create_server(
            lambda ident=ident: make_server(InboundHandler(), hostname=hostname, ident=ident),
            host=host,
            port=port,
            reuse_address=True,
        )
        log.info("SMTP %s listening on %s:%d", name, host, port)
    return servers


class ListenerThread:
    """The listeners on a private event loop in a thread (tests, embedded use).

    Port 0 binds an ephemeral port; `ports` tells which one each listener got.
    """

    def __init__(self, binds: dict[str, tuple[str, int]]) -> None:
        self.binds = binds
        self.loop = asyncio.new_event_loop()
        self.servers: dict[str, asyncio.Server] = {}
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> ListenerThread:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(start_servers(self.binds), self.loop)
        self.servers = future.result(timeout=10)
        return self

    @property
    def ports(self) -> dict[str, int]:
        return {name: s.sockets[0].getsockname()[1] for name, s in self.servers.items()}

    def stop(self) -> None:
        async def close() -> None:
            for server in self.servers.values():
                server.close()
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
