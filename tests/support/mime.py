"""Hostile MIME for the tests of every place that parses a message someone sent."""

from __future__ import annotations


def nested_multipart(depth: int, head: bytes = b"From: sender@remote.test\r\n") -> bytes:
    """A message whose text part sits `depth` multiparts deep (100 bytes a level)."""
    message = head
    for level in range(depth):
        message += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (level, level)
    message += b"Content-Type: text/plain\r\n\r\nHello.\r\n"
    for level in reversed(range(depth)):
        message += b"--b%d--\r\n" % level
    return message
