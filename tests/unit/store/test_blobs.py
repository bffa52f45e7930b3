"""The blob store: content-addressed, written once and atomically, never a path."""

from __future__ import annotations

import hashlib
import os

import pytest

from apps.store import blobs


def test_it_stores_bytes_under_their_sha256(_blob_dir):
    data = b"From: a@b.example\r\n\r\nbody\r\n"
    blob_hash = blobs.put(data)

    assert blob_hash == hashlib.sha256(data).hexdigest()
    path = _blob_dir / blob_hash[:2] / blob_hash[2:4] / blob_hash
    assert path.read_bytes() == data
    assert blobs.read(blob_hash) == data
    assert blobs.exists(blob_hash)
    assert blobs.size(blob_hash) == len(data)


def test_it_writes_the_same_bytes_once(_blob_dir):
    first = blobs.put(b"same bytes")
    path = blobs.path_for(first)
    stat = path.stat()

    second = blobs.put(b"same bytes")

    assert second == first
    assert path.stat().st_ino == stat.st_ino  # not replaced by a new file
    # but touched: the blob purge takes it for a fresh one (its row is on the way)
    assert path.stat().st_mtime_ns >= stat.st_mtime_ns
    assert [p.name for p in path.parent.iterdir()] == [first]  # no temporary files left


def test_it_leaves_no_partial_blob_when_the_write_fails(_blob_dir, monkeypatch):
    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    data = b"never stored"
    with pytest.raises(OSError, match="disk full"):
        blobs.put(data)

    blob_hash = hashlib.sha256(data).hexdigest()
    assert not blobs.exists(blob_hash)
    assert list(blobs.path_for(blob_hash).parent.iterdir()) == []


def test_it_reads_at_most_limit_bytes():
    blob_hash = blobs.put(b"0123456789")

    assert blobs.read(blob_hash, limit=4) == b"0123"
    assert blobs.read(blob_hash, limit=0) == b""
    assert blobs.read(blob_hash, limit=100) == b"0123456789"


def test_it_raises_blob_not_found_for_a_missing_blob():
    with pytest.raises(blobs.BlobNotFound):
        blobs.read("a" * 64)
    assert not blobs.exists("a" * 64)


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "A" * 64,  # upper-case is not the stored form
        "a" * 63,
        "a" * 65,
        "aa/bb/" + "a" * 58,
        "..%2f" + "a" * 59,
        "a" * 63 + "\x00",
        "",
    ],
)
def test_it_refuses_anything_but_a_hash(_blob_dir, name):
    secret = _blob_dir.parent / "secret"
    secret.write_bytes(b"not a blob")

    with pytest.raises(blobs.BlobNotFound):
        blobs.read(name)
    assert not blobs.exists(name)
