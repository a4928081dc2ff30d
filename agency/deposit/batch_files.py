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
DATACITE_FILE = "datacite.xml"  # a kernel-4 record received through the MDS API (a submission of its own)


def submission_folder(login: str, received_at: datetime, submission_id: int) -> str:
    """Relative folder: <account>/<yyyy>/<mm>/<submission id>."""
    return f"{login}/{received_at:%Y}/{received_at:%m}/{submission_id}"


def submission_path(batch_dir: Path, storage_path: str, name: str = BATCH_FILE) -> Path:
    """A file of a submission (batch, log, combined diagnostic, query, result) under the batch folder."""
    return batch_dir / storage_path / name


def uploaded_file_name(name: str | None, default: str) -> str:
    """The uploaded file name as the registrant gave it, minus any folder part and control characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable())[:255] or default


def store_received_file(spooled: Path, batch_dir: Path, storage_path: str, name: str) -> Path:
    """Move a received file into its submission folder durably (rename, then fsync the folder)."""
    target = submission_path(batch_dir, storage_path, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(spooled, target)
    fsync_dir(target.parent)
    return target


def store_received_bytes(data: bytes, batch_dir: Path, storage_path: str, name: str) -> Path:
    """Write a body received in one request into its submission folder durably (a temporary file
    fsynced, renamed into place, the folder fsynced): the file is whole or absent."""
    target = submission_path(batch_dir, storage_path, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with open(partial, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, target)
    fsync_dir(target.parent)
    return target


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
