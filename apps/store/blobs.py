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
from collections.abc import Callable, Iterator
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
    if _touch(target):
        return blob_hash
    # directories made now must be durable entries of their parents too
    created = [d for d in (target.parent.parent, target.parent) if not d.is_dir()]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
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


def _touch(target: Path) -> bool:
    """Mark an existing blob as just used (its mtime), so the blob purge, which deletes
    only files older than its grace period, leaves it to the row about to reference it.
    False when there is no such file (then `put` writes it)."""
    try:
        os.utime(target)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return target.is_file()


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


# --- the blob purge (apps.store.maintenance.blob_purge) ------------------------------------

TEMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".purge-"


def fanout_dirs() -> list[Path]:
    """The first-level fan-out directories (up to 256), in order."""
    root = Path(settings.MAILADMIN_BLOB_DIR)
    if not root.is_dir():
        return []
    return sorted(entry for entry in root.iterdir() if entry.is_dir())


def files_under(first: Path) -> Iterator[tuple[str, Path]]:
    """Every file two levels under a fan-out directory, as (file name, path)."""
    for second in sorted(first.iterdir()):
        if not second.is_dir():
            continue
        for entry in sorted(second.iterdir()):
            if entry.is_file():
                yield entry.name, entry


def older_than(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def remove_unless_used(blob_hash: str, cutoff: float, referenced: Callable[[str], bool]) -> bool:
    """Delete the blob if it is still older than `cutoff` (a POSIX time) and `referenced`
    says no row points at it; True when it was deleted.

    Safe against a delivery reusing the blob meanwhile: the file is first renamed away, so
    a `put` from then on writes it afresh; a `put` just before the rename touched it, which
    the mtime check after the rename sees (the rename keeps the mtime), and the reference
    check after the rename sees any row committed before. Either way the file goes back.
    """
    path = path_for(blob_hash)
    if not older_than(path, cutoff):
        return False
    aside = path.with_name(f"{_TRASH_PREFIX}{blob_hash}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    if aside.stat().st_mtime >= cutoff or referenced(blob_hash):
        if path.exists():  # a put wrote the same bytes again meanwhile
            aside.unlink(missing_ok=True)
        else:
            os.rename(aside, path)
        return False
    aside.unlink(missing_ok=True)
    return True


def remove_stray(path: Path, cutoff: float, referenced: Callable[[str], bool]) -> bool:
    """A temporary file a crashed `put` left, once older than `cutoff`; True when deleted.
    A blob a crashed purge had renamed aside goes back when a row references it."""
    name = path.name
    if name.startswith(_TRASH_PREFIX):
        blob_hash = name[len(_TRASH_PREFIX) :]
        if is_blob_hash(blob_hash) and referenced(blob_hash):
            target = path_for(blob_hash)
            if target.exists():
                path.unlink(missing_ok=True)
            else:
                os.rename(path, target)
            return False
    elif not name.startswith(TEMP_PREFIX):
        return False
    if not older_than(path, cutoff):
        return False
    path.unlink(missing_ok=True)
    return True
