"""Real spam and ham from the shared corpus is delivered, stored byte for byte, parsed."""

from __future__ import annotations

from apps.store import blobs, recipients
from apps.store.headers import parse_summary
from apps.store.models import Message
from tests.conftest import CORPUS_DIR, skip_or_fail


def corpus_messages() -> list:
    root = CORPUS_DIR / "messages"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "README.md")


def test_it_delivers_every_corpus_message(make_mailbox):
    files = corpus_messages()
    if not files:
        skip_or_fail(f"no corpus messages under {CORPUS_DIR} (set MAILADMIN_CORPUS_DIR)")
    jane = make_mailbox("jane")

    for path in files:
        data = path.read_bytes()
        [stored] = recipients.deliver_to_address("jane@a.example", data)
        assert blobs.read(stored.blob_hash) == data, path
        assert stored.size == len(data)

    assert Message.objects.filter(principal=jane).count() == len(files)
    assert sorted(Message.objects.values_list("uid", flat=True)) == list(range(1, len(files) + 1))


def test_it_parses_the_list_fields_of_corpus_messages():
    files = corpus_messages()
    if not files:
        skip_or_fail(f"no corpus messages under {CORPUS_DIR} (set MAILADMIN_CORPUS_DIR)")
    parsed = [parse_summary(path.read_bytes()) for path in files]

    assert sum(1 for s in parsed if s.subject) > len(files) * 0.9
    assert sum(1 for s in parsed if "@" in s.from_address) > len(files) * 0.9
    assert sum(1 for s in parsed if s.date is not None) > len(files) * 0.8
