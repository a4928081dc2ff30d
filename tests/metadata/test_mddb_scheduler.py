"""One load at a time across processes (the job lease), catch-up after restarts, the APScheduler jobs."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from agency.metadata.index import MetadataWriter
from agency.models import JobLock
from agency.runtime.scheduling import (COUNT_FOLD_JOB, ELECTION_JOB, MAIL_JOB, MDDB_JOB, MDDB_PROMPT_JOB, JobLease, LeaseLost, build_scheduler, last_run, missed_since,
                               mddb_trigger)
from agency.services import build_agency
from batchgen import deposit_xml, many
from mddb_pipeline import all_records, combined_mail, deposit, loads


class BlockingWriter(MetadataWriter):
    """Holds the first chunk until released, so a second load can try to start meanwhile."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, session, prepared):
        self.entered.set()
        assert self.release.wait(30)
        return super().write(session, prepared)


def test_second_load_skips_while_one_runs_and_nothing_is_loaded_twice(svc, client, alice, settings):
    for n in range(3):
        deposit(svc, client, deposit_xml(many("10.5555", 2, start=10 * n + 1)))
    other_process = build_agency(settings)  # another `agency serve` on the same database and batches/
    blocking = BlockingWriter()
    svc.mddb.writer = blocking
    reports = []
    first = threading.Thread(target=lambda: reports.append(svc.mddb.run()))
    first.start()
    try:
        assert blocking.entered.wait(30)
        second = other_process.mddb.run()
        assert second.skipped_because and "another load is running" in second.skipped_because
        assert second.folders == []
    finally:
        blocking.release.set()
        first.join(60)
        other_process.db.engine.dispose()
    assert len(reports[0].loaded) == 3
    assert {row.attempts for row in loads(svc).values()} == {1}
    assert len(combined_mail(svc)) == 3
    assert len(all_records(svc)) == 6
    assert svc.mddb.run().folders == []


def test_loads_racing_from_two_threads_load_each_batch_once(svc, client, alice, settings):
    for n in range(4):
        deposit(svc, client, deposit_xml(many("10.5555", 3, start=10 * n + 1)))
    other_process = build_agency(settings)
    barrier = threading.Barrier(2)
    reports = []

    def load(agency):
        barrier.wait(10)
        reports.append(agency.mddb.run())

    threads = [threading.Thread(target=load, args=(a,)) for a in (svc, other_process)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        other_process.db.engine.dispose()
    loaded = [f.folder for r in reports for f in r.loaded]
    assert sorted(loaded) == sorted(set(loaded)) and len(loaded) == 4
    assert len(combined_mail(svc)) == 4
    assert {row.attempts for row in loads(svc).values()} == {1}


def test_expired_lease_of_a_crashed_loader_is_taken_over(svc, client, alice):
    deposit(svc, client, deposit_xml(many("10.5555", 1)))
    with svc.db.transaction() as session:
        session.add(JobLock(name=MDDB_JOB, owner="crashed-host:1:dead",
                            acquired_at=datetime.now(timezone.utc) - timedelta(hours=2),
                            expires_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    report = svc.mddb.run()
    assert report.skipped_because is None and len(report.loaded) == 1


def test_live_lease_of_another_process_makes_the_load_skip(svc, client, alice):
    deposit(svc, client, deposit_xml(many("10.5555", 1)))
    other = JobLease(svc.db, MDDB_JOB, 300, owner="other-host:2:alive")
    assert other.acquire()
    report = svc.mddb.run()
    assert "other-host:2:alive" in report.skipped_because
    assert all_records(svc) == {}
    assert svc.mddb.status().lease_holder == "other-host:2:alive"
    other.release()
    assert len(svc.mddb.run().loaded) == 1


def test_a_loader_that_lost_its_lease_cannot_commit(svc, client, alice):
    """Fencing: once another process holds the lease, the old holder's chunk is rolled back."""
    deposit(svc, client, deposit_xml(many("10.5555", 2)))
    lease = JobLease(svc.db, MDDB_JOB, 300, owner="slow-loader")
    assert lease.acquire()
    with svc.db.transaction() as session:  # the lease expired and another process claimed it
        session.get(JobLock, MDDB_JOB).owner = "new-loader"
    with pytest.raises(LeaseLost):
        with svc.db.transaction() as session:
            lease.renew(session)
    assert not lease.acquire()


def test_a_lost_lease_stops_the_load_and_the_next_load_finishes_the_work(svc, client, alice):
    deposit(svc, client, deposit_xml(many("10.5555", 2)))

    class StealingWriter(MetadataWriter):
        def write(self, session, prepared):
            raise LeaseLost("stolen")

    svc.mddb.writer = StealingWriter()
    with pytest.raises(LeaseLost):
        svc.mddb.run()
    assert all_records(svc) == {} and loads(svc) == {}
    assert last_run(svc.db, MDDB_JOB).last_status == "failed"
    svc.mddb.writer = MetadataWriter()
    assert len(svc.mddb.run().loaded) == 1  # the lease was released; nothing was lost


def test_trigger_is_daily_at_the_hour_or_every_n_minutes(settings):
    daily = mddb_trigger(settings.replace(mddb_hour=4, mddb_interval_minutes=0))
    assert isinstance(daily, CronTrigger)
    assert daily.get_next_fire_time(None, datetime(2024, 5, 1, 5, 0, tzinfo=timezone.utc)) == datetime(
        2024, 5, 2, 4, 0, tzinfo=timezone.utc)
    interval = mddb_trigger(settings.replace(mddb_interval_minutes=15))
    assert isinstance(interval, IntervalTrigger) and interval.interval == timedelta(minutes=15)
    with pytest.raises(ValueError, match="AGENCY_MDDB_HOUR must be 0 to 23"):
        mddb_trigger(settings.replace(mddb_hour=24))


def test_missed_runs_are_recognized(settings):
    daily = settings.replace(mddb_hour=2, mddb_interval_minutes=0)
    now = datetime(2024, 5, 2, 9, 0, tzinfo=timezone.utc)
    assert missed_since(daily, None, now)  # never ran
    assert not missed_since(daily, datetime(2024, 5, 2, 2, 0, 5, tzinfo=timezone.utc), now)  # ran at 02:00 today
    assert missed_since(daily, datetime(2024, 5, 1, 2, 0, tzinfo=timezone.utc), now)  # down at 02:00 today
    every = settings.replace(mddb_interval_minutes=10)
    assert not missed_since(every, now - timedelta(minutes=5), now)
    assert missed_since(every, now - timedelta(minutes=11), now)


def test_scheduler_jobs_and_catch_up_after_a_restart(svc, client, alice):
    scheduler = build_scheduler(svc)  # never ran: the load is due at once
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {MDDB_JOB, MDDB_PROMPT_JOB, MAIL_JOB, ELECTION_JOB, COUNT_FOLD_JOB}
    load_job = jobs[MDDB_JOB]
    assert load_job.coalesce is True and load_job.max_instances == 1
    assert load_job.misfire_grace_time == svc.settings.mddb_misfire_grace_seconds
    assert load_job.next_run_time <= datetime.now(timezone.utc) + timedelta(seconds=1)

    svc.mddb.run()  # job state is in the database: a restarted scheduler sees this run
    restarted = build_agency(svc.settings)
    try:
        later = build_scheduler(restarted)
        later.start(paused=True)  # computes next run times without running anything
        try:
            load_job = later.get_job(MDDB_JOB)
            assert load_job.next_run_time.hour == svc.settings.mddb_hour
            assert load_job.next_run_time > datetime.now(timezone.utc)
        finally:
            later.shutdown(wait=False)
        assert restarted.mddb.status().last_status == "ok"
    finally:
        restarted.db.engine.dispose()


@pytest.mark.parametrize("child_process", [True, False], ids=["child-process", "in-process"])
def test_serve_runs_the_scheduled_load(svc, client, alice, settings, child_process):
    deposit(svc, client, deposit_xml(many("10.5555", 2)))
    running = build_agency(settings.replace(run_scheduler=True, run_worker=False, mddb_interval_minutes=60,
                                            mddb_in_child_process=child_process))
    running.start_background()
    try:
        deadline = time.monotonic() + 30
        while not all_records(svc) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(all_records(svc)) == 2
    finally:
        running.stop_background()
        running.db.engine.dispose()
    assert running._scheduler is None
