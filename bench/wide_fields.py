#!/usr/bin/env python3
"""Benchmark: the metadata reader on one record whose title holds N inline elements.

The reader must be linear in N (it was quadratic: 40,000 → 0.64 s, 320,000 → 24.6 s).
The floor, measured in the same run, is a bare lxml iterparse of the same file.
Prints, for each N, the reader's time, the floor's, their ratio, and the reader's
time relative to the smallest N (linear: about N / smallest N).

    .venv/bin/python bench/wide_fields.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from lxml import etree  # noqa: E402

from agency.metadata.extraction import BatchMetadataReader  # noqa: E402
from batchgen import Article, deposit_xml  # noqa: E402


def wide_title_batch(inline_elements: int) -> bytes:
    plain = deposit_xml([Article("10.5555/wide.1", title="T")])
    return plain.replace(b"<title>T</title>", b"<title>" + b"<i>x</i> " * inline_elements + b"</title>")


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    first = None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wide.xml"
        for count in (40_000, 80_000, 160_000, 320_000):
            path.write_bytes(wide_title_batch(count))
            reader = timed(lambda: list(BatchMetadataReader(path)))
            floor = timed(lambda: [None for _ in etree.iterparse(str(path))])
            first = first or reader
            print(f"{count:>8} inline elements: reader {reader:6.2f} s, floor {floor:6.2f} s, "
                  f"ratio {reader / floor:5.1f}, × smallest {reader / first:5.1f}")


if __name__ == "__main__":
    main()
