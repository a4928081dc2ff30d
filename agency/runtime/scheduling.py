"""Scheduled jobs (APScheduler 3, UTC): the metadata database load and mail delivery.

Job state lives in the agency's own tables, not in APScheduler's
SQLAlchemyJobStore: that store pickles job callables and must not be shared by
several scheduler processes (APScheduler 3 would run or drop jobs twice),
while every ``agency serve`` process runs a scheduler. So each scheduler keeps
its jobs in memory and the database holds what must survive and be shared:

* ``job_locks``: a lease row per job. A run starts only after claiming it in
  one conditional UPDATE, renews it while working and fences its writes with
  it, so one load runs at a time across processes; a crashed holder's lease
  simply expires.
* ``job_runs``: when each job last started and finished. On start-up a
  scheduler whose job missed its time (the service was down at 02:00) runs it
  at once. Nothing can be missed anyway: a load loads every completed batch not
  yet loaded, so a late run catches up on everything.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from agency.config import Settings
from agency.db import Database, conflict_insert
from agency.models import JobLock, JobRun
from agency.models.types import utcnow

log = logging.getLogger(__name__)

MDDB_JOB = "mddb-load"
MAIL_JOB = "mail-delivery"


class LeaseLost(Exception):
    """Another process holds the job's lease now; the work in this transaction was rolled back."""


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"




@dataclass
class JobLease:
    """A named, expiring claim in ``job_locks``: whoever holds it runs the job."""

    db: Database
    name: str
    seconds: int
    owner: str = ""

    def __post_init__(self) -> None:
        self.owner = self.owner or process_owner()

    def acquire(self) -> bool:
        """Claim the lease if it is free or expired; False when another holder is alive."""
        now = utcnow()
        holder, _until = self.holder()
        if holder is not None and holder != self.owner:
            return False  # decided by a read: on SQLite a write would queue behind the holder's transaction
        with self.db.transaction() as session:
            session.execute(conflict_insert(session.get_bind().dialect.name)(JobLock).values(name=self.name)
                            .on_conflict_do_nothing(index_elements=[JobLock.name]))
        with self.db.transaction() as session:
            claimed = session.execute(
                update(JobLock)
                .where(JobLock.name == self.name,
                       or_(JobLock.owner.is_(None), JobLock.expires_at < now, JobLock.owner == self.owner))
                .values(owner=self.owner, acquired_at=now, expires_at=now + timedelta(seconds=self.seconds))
                .execution_options(synchronize_session=False))
            return claimed.rowcount == 1

    def renew(self, session: Session) -> None:
        """Extend the lease inside ``session``'s transaction, fencing its writes (raises LeaseLost)."""
        renewed = session.execute(
            update(JobLock).where(JobLock.name == self.name, JobLock.owner == self.owner)
            .values(expires_at=utcnow() + timedelta(seconds=self.seconds))
            .execution_options(synchronize_session=False))
        if renewed.rowcount != 1:
            raise LeaseLost(f"lease {self.name!r} is no longer held by {self.owner}")

    def release(self) -> None:
        with self.db.transaction() as session:
            session.execute(update(JobLock).where(JobLock.name == self.name, JobLock.owner == self.owner)
                            .values(owner=None, expires_at=None).execution_options(synchronize_session=False))

    def holder(self) -> tuple[str | None, datetime | None]:
        """Who holds the lease and until when (None, None when free)."""
        with self.db.sessions() as session:
            lock = session.get(JobLock, self.name)
            if lock is None or lock.owner is None or (lock.expires_at and lock.expires_at < utcnow()):
                return None, None
            return lock.owner, lock.expires_at


def record_start(db: Database, job_id: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    with db.transaction() as session:
        run = session.get(JobRun, job_id)
        if run is None:
            session.add(JobRun(job_id=job_id, last_started_at=now, last_status="running"))
        else:
            run.last_started_at, run.last_status = now, "running"


def record_finish(db: Database, job_id: str, status: str, summary: str) -> None:
    with db.transaction() as session:
        run = session.get(JobRun, job_id)
        if run is None:
            run = JobRun(job_id=job_id)
            session.add(run)
        run.last_finished_at, run.last_status, run.last_summary = utcnow(), status, summary[:4000]


def last_run(db: Database, job_id: str) -> JobRun | None:
    with db.sessions() as session:
        return session.get(JobRun, job_id)


def mddb_trigger(settings: Settings):
    """Every N minutes when ``mddb_interval_minutes`` > 0, else daily at ``mddb_hour`` UTC."""
    if settings.mddb_interval_minutes > 0:
        return IntervalTrigger(minutes=settings.mddb_interval_minutes, timezone=timezone.utc)
    if not 0 <= settings.mddb_hour <= 23:
        raise ValueError(f"AGENCY_MDDB_HOUR must be 0 to 23, not {settings.mddb_hour}")
    return CronTrigger(hour=settings.mddb_hour, minute=0, timezone=timezone.utc)


def missed_since(settings: Settings, last_started: datetime | None, now: datetime) -> bool:
    """True when a scheduled load time has passed since the last run started (or none ever ran)."""
    if last_started is None:
        return True
    if settings.mddb_interval_minutes > 0:
        return last_started + timedelta(minutes=settings.mddb_interval_minutes) <= now
    due = CronTrigger(hour=settings.mddb_hour, minute=0, timezone=timezone.utc).get_next_fire_time(
        None, last_started + timedelta(seconds=1))
    return due is not None and due <= now


def run_mddb_job(agency) -> None:
    """The scheduled load: runs ``agency.mddb.run()``, which skips when another process is loading."""
    try:
        report = agency.mddb.run()
    except Exception:
        log.exception("metadata database load failed; the next run retries it")
        return
    log.info("metadata database load: %s", report.summary())


def run_mail_job(agency) -> None:
    try:
        agency.mail.deliver_due()
    except Exception:
        log.exception("mail delivery run failed; the next run retries it")
    try:
        if agency.callbacks is not None:
            agency.callbacks.deliver_due()
    except Exception:
        log.exception("callback delivery run failed; the next run retries it")


def build_scheduler(agency) -> BackgroundScheduler:
    """A scheduler with the load and mail jobs; a missed load is scheduled for right now."""
    settings: Settings = agency.settings
    scheduler = BackgroundScheduler(timezone=timezone.utc)
    once = {"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.mddb_misfire_grace_seconds}
    now = datetime.now(timezone.utc)
    previous = last_run(agency.db, MDDB_JOB)
    catch_up = missed_since(settings, previous.last_started_at if previous else None, now)
    job_options = {"next_run_time": now} if catch_up else {}
    scheduler.add_job(run_mddb_job, mddb_trigger(settings), args=[agency], id=MDDB_JOB,
                      name="metadata database load", replace_existing=True, **once, **job_options)
    scheduler.add_job(run_mail_job, IntervalTrigger(seconds=settings.mail_poll_seconds, timezone=timezone.utc),
                      args=[agency], id=MAIL_JOB, name="mail delivery", replace_existing=True,
                      next_run_time=now, **once)
    return scheduler
