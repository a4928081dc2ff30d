"""Where a submission's files live under the batch folder.

The files are the record of what was received and what was reported; the
metadata-database load reads them, so their layout is part of the contract.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

BATCH_FILE = "batch.xml"
LOG_FILE = "log.xml"
COMBINED_FILE = "combined.xml"
QUERY_RESULT_FILE = "result.txt"


def submission_folder(login: str, received_at: datetime, submission_id: int) -> str:
    """Relative folder: <account>/<yyyy>/<mm>/<submission id>."""
    return f"{login}/{received_at:%Y}/{received_at:%m}/{submission_id}"


def write_durably(path: Path, data: bytes) -> None:
    """Write, fsync the file and its folder, then rename into place atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
