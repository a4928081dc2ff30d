"""What /readyz reports: cheap checks (one trivial query, one access() call, thread states)."""

from __future__ import annotations

import logging
import os

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from agency.runtime.scheduling import SCHEDULER_LEASE, JobLease

log = logging.getLogger(__name__)


def readiness(agency) -> dict:
    """``ready`` is False when the database does not answer, the batch folder is not writable, or a
    worker/scheduler asked for in this process has stopped."""
    report: dict = {}
    try:
        with agency.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        report["database"] = "ok"
    except SQLAlchemyError as exc:
        log.warning("readiness: the database does not answer: %s", exc.__class__.__name__)
        report["database"] = f"failing: {exc.__class__.__name__}"
    batch_dir = agency.settings.batch_dir
    report["batch_dir"] = "writable" if os.access(batch_dir, os.W_OK | os.X_OK) else f"not writable: {batch_dir}"
    report.update(agency.background_state())
    holder, _until = JobLease(agency.db, SCHEDULER_LEASE, agency.settings.scheduler_lease_seconds).holder() \
        if report["database"] == "ok" else (None, None)
    report["scheduler_lease"] = holder or "none"
    report["ready"] = (report["database"] == "ok" and report["batch_dir"] == "writable"
                       and "stopped" not in (report["worker"], report["scheduler"]))
    return report
