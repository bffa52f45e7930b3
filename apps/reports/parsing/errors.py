"""Why a file is not a report we can store, in words shown to the person who sent it."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


class ReportError(Exception):
    """A file that holds no report we can read; `reason` is shown as is in the console/API."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TooLarge(ReportError):
    """A size or count cap was hit; work stopped there (nothing more was read or expanded)."""


def size_text(n: int) -> str:
    """1048576 -> '1 MB', 1536 -> '1.5 KB': limits as people read them."""
    for unit, size in (("GB", 1024 * MB), ("MB", MB), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


@dataclass(frozen=True)
class Limits:
    """Caps on hostile input; every reader stops at the first one it crosses.

    Compressed size bounds what we hold in memory (an upload or an attachment);
    decompressed size and record count bound what one report may make us parse and store.
    """

    max_compressed: int = 50 * MB
    max_decompressed: int = 200 * MB
    max_records: int = 500_000
    max_json: int = 16 * MB  # TLS-RPT JSON is parsed whole (reports are a few KB)
    max_members: int = 20  # zip members or attachments looked at in one file
    max_depth: int = 4  # nesting of containers: gzip in gzip in zip in a message
    # Real reports compress 10-300-fold; deflate's ceiling is about 1030 (constant data).
    # Past `ratio_floor` bytes of output, a layer expanding more than this is a bomb.
    max_ratio: int = 500
    ratio_floor: int = 16 * MB

    def compressed_error(self) -> TooLarge:
        return TooLarge(f"The file is larger than the {size_text(self.max_compressed)} limit.")

    def ratio_exceeded(self, produced: int, consumed: int) -> bool:
        return produced > self.ratio_floor and produced > self.max_ratio * max(consumed, 1)

    def ratio_error(self) -> TooLarge:
        return TooLarge(
            f"The compressed data expands more than {self.max_ratio}-fold: refused as a "
            "decompression bomb."
        )

    def decompressed_error(self) -> TooLarge:
        return TooLarge(
            f"The report is larger than {size_text(self.max_decompressed)} once decompressed."
        )
