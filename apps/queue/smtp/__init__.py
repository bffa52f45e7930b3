"""The SMTP listeners: inbound MX (inbound.py) and authenticated submission
(submission.py), on aiosmtpd (server.py)."""

from apps.queue.smtp.server import ListenerThread, serve, start_servers

__all__ = ["ListenerThread", "serve", "start_servers"]
