"""Exactly one scheduler across processes: the holder of the ``scheduler`` lease runs the jobs."""

from __future__ import annotations

import time

from agency.runtime.scheduling import ELECTION_JOB, MAIL_JOB, MDDB_JOB, SchedulerElection, build_scheduler
from agency.services import build_agency


def test_one_process_is_elected_and_another_takes_over_when_it_goes(svc, settings):
    other = build_agency(settings)  # a second process on the same database
    try:
        first, second = SchedulerElection(svc.db, 30), SchedulerElection(other.db, 30)
        ran: list[str] = []
        first_job = first.guard(lambda: ran.append("first"))
        second_job = second.guard(lambda: ran.append("second"))
        first_job()
        second_job()
        assert ran == ["first"] and first.elected and not second.elected
        assert first.campaign() and not second.campaign()  # the holder renews, the other stands by
        first.resign()  # a clean shutdown hands over at once
        second_job()
        first_job()
        assert ran == ["first", "second"] and second.elected and not first.elected
    finally:
        other.db.engine.dispose()


def test_a_dead_scheduler_is_replaced_once_its_lease_expires(svc, settings):
    taken_over: list[bool] = []
    dead, standby = SchedulerElection(svc.db, 1), SchedulerElection(svc.db, 1, on_elected=lambda: taken_over.append(True))
    assert dead.campaign() and not standby.campaign()
    time.sleep(0.7)
    assert not dead.elected  # it counts itself elected for 2/3 of the lease only: never two at once
    assert not standby.campaign()  # the lease itself has not expired yet
    time.sleep(0.5)
    assert standby.campaign() and taken_over == [True]
    assert not dead.campaign()


def test_every_scheduled_job_waits_for_the_election(svc):
    scheduler = build_scheduler(svc)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert ELECTION_JOB in jobs and jobs[ELECTION_JOB].func == scheduler.election.campaign
    for job_id in (MDDB_JOB, MAIL_JOB):
        assert jobs[job_id].func.__wrapped__ is not None  # election.guard(...)


def test_readyz_names_the_elected_scheduler(settings, client, svc):
    running = build_agency(settings.replace(run_scheduler=True, mddb_poll_seconds=0))
    try:
        running.start_background()
        deadline = time.monotonic() + 20
        while running.background_state()["scheduler"] != "elected" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running.background_state()["scheduler"] == "elected"
        owner = running._scheduler.election.lease.owner
        assert client.get("/readyz").get_json()["scheduler_lease"] == owner
        running.stop_background()
        assert client.get("/readyz").get_json()["scheduler_lease"] == "none"  # resigned on shutdown
    finally:
        running.stop_background()
        running.db.engine.dispose()


def test_a_shutdown_that_outlived_the_election_window_still_hands_over(svc):
    """Shutting down waits for running jobs; by then this process may no longer count itself
    elected (2/3 of the lease), but the lease row still names it: resigning must free it."""
    leaving, standby = SchedulerElection(svc.db, 30), SchedulerElection(svc.db, 30)
    assert leaving.campaign()
    leaving._valid_until = 0.0  # the window lapsed while a long job finished
    assert not leaving.elected and not standby.campaign()
    leaving.resign()
    assert standby.campaign()
    leaving.resign()  # a process that does not hold the lease releases nothing of another's
    assert standby.campaign() and not leaving.campaign()
