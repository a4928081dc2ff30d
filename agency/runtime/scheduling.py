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

import functools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from agency.config import Settings, settings_environment
from agency.db import Database, conflict_insert
from agency.models import JobLock, JobRun
from agency.models.types import utcnow

log = logging.getLogger(__name__)

MDDB_JOB = "mddb-load"
MDDB_PROMPT_JOB = "mddb-prompt"  # newly completed deposits, every few seconds (shares the load's lease)
MAIL_JOB = "mail-delivery"
COUNT_FOLD_JOB = "handle-count-folding"
COUNT_FOLD_SECONDS = 300  # count rows folded into one this often (agency.handles.counts, agency.metadata.record_count)
ELECTION_JOB = "scheduler-election"
SCHEDULER_LEASE = "scheduler"  # job_locks row: the one process whose scheduler runs the jobs


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


MDDB_CHILD_NICENESS = 10


def run_mddb_job(agency) -> None:
    """The scheduled load: ``agency.mddb.run()``, which skips when another process is loading.

    By default in a child process (``agency mddb load``) at lower CPU priority: the load is
    CPU-bound Python and lxml, and inside the web process it would take the GIL from the
    request threads for as long as it runs."""
    if agency.settings.mddb_in_child_process:
        run_mddb_child(agency.settings)
        return
    try:
        report = agency.mddb.run()
    except Exception:
        log.exception("metadata database load failed; the next run retries it")
        return
    log.info("metadata database load: %s", report.summary())


def run_mddb_child(settings: Settings) -> int:
    """Run ``agency mddb load`` as a child process with these settings; its exit status."""
    env = {**os.environ, **settings_environment(settings)}
    child = subprocess.run([sys.executable, "-m", "agency.cli", "mddb", "load"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           preexec_fn=lambda: os.nice(MDDB_CHILD_NICENESS))
    tail = child.stdout.strip().splitlines()[-1:] if child.stdout else []
    if child.returncode in (0, 3):  # loaded, or another process is loading
        log.info("metadata database load (child process): %s", tail[0] if tail else "done")
    else:
        log.error("metadata database load (child process) exited %s; the next run retries it:\n%s",
                  child.returncode, child.stdout[-4000:])
    return child.returncode


def run_mddb_prompt_job(agency) -> None:
    """Index deposits completed since the last look and send their combined diagnostics at once."""
    try:
        report = agency.mddb.run_pending()
        if report.folders:
            log.info("metadata load of newly completed deposits: %s", report.summary())
            agency.mail.deliver_due()
    except Exception:
        log.exception("prompt metadata load failed; the next run (or the daily load) retries it")


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


def run_count_fold_job(agency) -> None:
    try:
        agency.fold_counts()
    except Exception:
        log.exception("folding the handle and metadata record counts failed; the next run retries it")


class _OverlapIsExpected(logging.Filter):
    """The prompt load runs every few seconds and a large batch's load outlasts that: APScheduler's
    warning that the next run was skipped because one is still running says nothing then."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (PROMPT_JOB_NAME in message and "maximum number of running instances" in message)


PROMPT_JOB_NAME = "metadata of new deposits"
logging.getLogger("apscheduler.scheduler").addFilter(_OverlapIsExpected())


class SchedulerElection:
    """Exactly one scheduler across processes runs the jobs: the holder of the ``scheduler`` lease.

    Every process that runs a scheduler (``agency serve``, ``agency worker``) campaigns
    every third of the lease; the holder renews it, the others stand by and take over
    once a dead holder's lease has expired. A process counts itself elected only for
    two thirds of the lease after its last renewal, so two never run jobs at once.
    """

    def __init__(self, db: Database, seconds: int, on_elected=None) -> None:
        self.lease = JobLease(db, SCHEDULER_LEASE, seconds)
        self.seconds = seconds
        self.on_elected = on_elected
        self._valid_until = 0.0
        self._campaigning = threading.Lock()

    @property
    def elected(self) -> bool:
        return time.monotonic() < self._valid_until

    def campaign(self) -> bool:
        """Claim or renew the lease; True while this process is the scheduler."""
        with self._campaigning:  # the jobs due at start campaign at once, from several threads
            was = self.elected
            try:
                won = self.lease.acquire()
            except SQLAlchemyError as exc:
                log.warning("scheduler election: the database did not answer (%s); standing by", type(exc).__name__)
                won = False
            self._valid_until = time.monotonic() + self.seconds * 2 / 3 if won else 0.0
            if won and not was:
                log.info("this process (%s) runs the scheduled jobs", self.lease.owner)
                if self.on_elected:
                    self.on_elected()
            elif was and not won:
                log.warning("this process (%s) no longer holds the scheduler lease; standing by", self.lease.owner)
            return won

    def resign(self) -> None:
        """Give the lease up at shutdown, so a standby takes over at once.

        Released whether or not this process still counts itself elected: a shutdown that
        waited for a long job outlives the 2/3-lease window, yet the row may still name this
        process (the release only clears a row this process owns)."""
        self._valid_until = 0.0
        with self._campaigning:  # not while a campaign of ours is renewing it
            self.lease.release()

    def guard(self, job):
        """The job, run only when this process is the elected scheduler."""
        @functools.wraps(job)
        def when_elected(*args) -> None:
            if self.elected or self.campaign():
                job(*args)

        return when_elected


def build_scheduler(agency) -> BackgroundScheduler:
    """A scheduler with the load and mail jobs, run only while elected; a missed load runs at once."""
    settings: Settings = agency.settings
    scheduler = BackgroundScheduler(timezone=timezone.utc)
    once = {"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.mddb_misfire_grace_seconds}
    now = datetime.now(timezone.utc)
    previous = last_run(agency.db, MDDB_JOB)
    catch_up = missed_since(settings, previous.last_started_at if previous else None, now)
    job_options = {"next_run_time": now} if catch_up else {}

    def catch_up_when_elected() -> None:
        """A process taking over from a dead scheduler runs the load it may have missed."""
        if scheduler.running and scheduler.get_job(MDDB_JOB) is not None:
            last = last_run(agency.db, MDDB_JOB)
            if missed_since(settings, last.last_started_at if last else None, datetime.now(timezone.utc)):
                scheduler.modify_job(MDDB_JOB, next_run_time=datetime.now(timezone.utc))

    election = SchedulerElection(agency.db, settings.scheduler_lease_seconds, on_elected=catch_up_when_elected)
    scheduler.election = election  # read by /readyz, released at shutdown
    scheduler.add_job(election.campaign, IntervalTrigger(seconds=max(1.0, settings.scheduler_lease_seconds / 3),
                                                         timezone=timezone.utc),
                      id=ELECTION_JOB, name="scheduler election", replace_existing=True, next_run_time=now, **once)
    scheduler.add_job(election.guard(run_mddb_job), mddb_trigger(settings), args=[agency], id=MDDB_JOB,
                      name="metadata database load", replace_existing=True, **once, **job_options)
    if settings.mddb_poll_seconds > 0:
        scheduler.add_job(election.guard(run_mddb_prompt_job), IntervalTrigger(seconds=settings.mddb_poll_seconds,
                                                                               timezone=timezone.utc),
                          args=[agency], id=MDDB_PROMPT_JOB, name=PROMPT_JOB_NAME, replace_existing=True,
                          next_run_time=now, **once)
    scheduler.add_job(election.guard(run_mail_job), IntervalTrigger(seconds=settings.mail_poll_seconds,
                                                                    timezone=timezone.utc),
                      args=[agency], id=MAIL_JOB, name="mail delivery", replace_existing=True,
                      next_run_time=now, **once)
    scheduler.add_job(election.guard(run_count_fold_job), IntervalTrigger(seconds=COUNT_FOLD_SECONDS,
                                                                          timezone=timezone.utc),
                      args=[agency], id=COUNT_FOLD_JOB, name="handle and record count folding",
                      replace_existing=True, **once)
    return scheduler
