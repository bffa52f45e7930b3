"""Content-addressed blobs on disk: message bytes stored once, named by their SHA-256.

Layout: ``settings.MAILADMIN_BLOB_DIR/<aa>/<bb>/<hash>`` (the first two byte pairs of the
hash fan the files out). A blob is written to a temporary file in its final directory and
renamed into place, so a reader never sees half a blob and a crash leaves at most a stray
temporary file. Blobs are immutable: the same bytes always have the same name, so a second
`put` of them writes nothing, and two writers racing on the same bytes rename identical
content over each other.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from django.conf import settings

from mailadmin.errors import NotFound

_HASH = re.compile(r"^[0-9a-f]{64}$")


class BlobNotFound(NotFound):
    def __init__(self, blob_hash: str = "") -> None:
        super().__init__("The requested blob does not exist on this server.")
        self.blob_hash = blob_hash


def is_blob_hash(value: object) -> bool:
    """A SHA-256 in lower-case hex: the only names `path_for` accepts (no traversal)."""
    return isinstance(value, str) and _HASH.match(value) is not None


def path_for(blob_hash: str) -> Path:
    """Where a blob lives; BlobNotFound for anything that is not a lower-case SHA-256 hex,
    so a name from a URL can never point outside the blob directory."""
    if not is_blob_hash(blob_hash):
        raise BlobNotFound(str(blob_hash)[:80])
    root = Path(settings.MAILADMIN_BLOB_DIR)
    return root / blob_hash[:2] / blob_hash[2:4] / blob_hash


def hash_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(data: bytes) -> str:
    """Store `data` (once) and return its SHA-256 hex."""
    blob_hash = hash_of(data)
    target = path_for(blob_hash)
    if target.is_file():
        return blob_hash
    # directories made now must be durable entries of their parents too
    created = [d for d in (target.parent.parent, target.parent) if not d.is_dir()]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o640)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    for directory in created:
        _fsync_dir(directory.parent)
    return blob_hash


def read(blob_hash: str, limit: int | None = None) -> bytes:
    """The blob's bytes (the first `limit` of them when given); BlobNotFound otherwise."""
    path = path_for(blob_hash)
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    try:
        with path.open("rb") as handle:
            return handle.read() if limit is None else handle.read(limit)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise BlobNotFound(blob_hash) from None


def exists(blob_hash: str) -> bool:
    if not is_blob_hash(blob_hash):
        return False
    return path_for(blob_hash).is_file()


def size(blob_hash: str) -> int:
    """The blob's length in bytes; BlobNotFound when it is not stored."""
    try:
        return path_for(blob_hash).stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        raise BlobNotFound(blob_hash) from None


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform opens directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
