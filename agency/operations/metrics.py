"""Prometheus metrics: counters and histograms the processes record, gauges read from the database.

Counters and histograms live in each process; with ``PROMETHEUS_MULTIPROC_DIR``
set (gunicorn workers and ``agency worker`` processes of one host sharing a
folder) prometheus-client keeps them in files there and ``/metrics`` adds up
every process's values. The state of the queues (submissions, outbox, the last
metadata load) is read from the database at scrape time, so every web process
answers the same figures whichever process did the work.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from datetime import datetime, timezone
from typing import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from agency.db import Database
from agency.models import JobRun, OutboxMessage, Submission
from agency.models.submissions import QUEUED
from agency.models.types import utcnow
from agency.runtime.scheduling import MDDB_JOB, MDDB_PROMPT_JOB

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
PROCESS = CollectorRegistry()
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

RECORDS = Counter("agency_records", "Deposited records by outcome (added, updated, stale, prefix, invalid, ...)",
                  ["outcome"], registry=PROCESS)
DEPOSIT_SECONDS = Histogram("agency_deposit_seconds", "Deposits, from receipt to completed log",
                            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600), registry=PROCESS)
QUERY_SECONDS = Histogram("agency_query_seconds", "Piped queries: answered at once (sync) or as a job",
                          ["mode"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120, 600),
                          registry=PROCESS)
RESOLUTIONS = Counter("agency_resolutions", "DOI resolutions by outcome", ["outcome"], registry=PROCESS)
RESOLUTION_SECONDS = Histogram("agency_resolution_seconds", "Time to answer a DOI resolution",
                               buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
                               registry=PROCESS)
FAILED_SIGN_INS = Counter("agency_failed_sign_ins", "Sign-ins with a wrong login or password", registry=PROCESS)

# What a resolution's HTTP status says about it.
RESOLUTION_OUTCOMES = {302: "redirected", 200: "answered", 404: "not_found", 400: "bad_request",
                       503: "unavailable"}
_RESOLVED = {status: RESOLUTIONS.labels(outcome) for status, outcome in RESOLUTION_OUTCOMES.items()}
_RESOLVED_OTHER = RESOLUTIONS.labels("other")


def count_records(outcomes: Iterable[str]) -> None:
    for outcome, number in Tally(outcomes).items():
        RECORDS.labels(outcome).inc(number)


def observe_resolution(status: int, seconds: float) -> None:
    _RESOLVED.get(status, _RESOLVED_OTHER).inc()
    RESOLUTION_SECONDS.observe(seconds)


class DatabaseCollector:
    """Queue state read at scrape time: a handful of indexed aggregate queries."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self):
        now = utcnow()
        with self.db.sessions() as session:
            submissions = session.execute(select(Submission.kind, Submission.status, func.count())
                                          .group_by(Submission.kind, Submission.status)).all()
            oldest = session.scalar(select(func.min(Submission.received_at)).where(Submission.status == QUEUED))
            outbox = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
            oldest_mail = session.scalar(select(func.min(OutboxMessage.created_at))
                                         .where(OutboxMessage.status == "pending"))
            finished = session.scalar(select(func.max(JobRun.last_finished_at))
                                      .where(JobRun.job_id.in_((MDDB_JOB, MDDB_PROMPT_JOB))))
        states = GaugeMetricFamily("agency_submissions", "Submissions by kind and state", labels=["kind", "state"])
        for kind, status, number in submissions:
            states.add_metric([kind, status], number)
        yield states
        yield GaugeMetricFamily("agency_oldest_queued_submission_age_seconds",
                                "Age of the oldest queued submission (0 when none)",
                                value=_age(now, oldest))
        mail = GaugeMetricFamily("agency_outbox_messages", "Mail in the outbox by state (dead: gave up)",
                                 labels=["state"])
        found = dict(outbox)
        for state in ("pending", "sent", "dead"):
            mail.add_metric([state], found.get(state, 0))
        yield mail
        yield GaugeMetricFamily("agency_outbox_oldest_pending_age_seconds", "Age of the oldest undelivered mail",
                                value=_age(now, oldest_mail))
        yield GaugeMetricFamily("agency_seconds_since_metadata_load",
                                "Seconds since the last metadata load finished (-1: never)",
                                value=(now - _aware(finished)).total_seconds() if finished else -1)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - _aware(then)).total_seconds()) if then is not None else 0.0


def exposition(db: Database) -> bytes:
    """Everything /metrics shows: every process's counters (or this one's), then the database gauges."""
    if MULTIPROCESS:
        processes = CollectorRegistry()
        MultiProcessCollector(processes)
    else:
        processes = PROCESS
    queues = CollectorRegistry()
    queues.register(DatabaseCollector(db))
    return generate_latest(processes) + generate_latest(queues)
