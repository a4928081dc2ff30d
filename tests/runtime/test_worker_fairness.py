"""A huge batch from one registrant does not hold up a small batch from another."""

from __future__ import annotations

import io

from sqlalchemy import select

from agency.models import Submission
from agency.services import build_agency
from batchgen import deposit_xml, many
from conftest import ALICE, BOB, add_account


def test_small_batch_completes_while_a_large_one_is_still_running(settings):
    agency = build_agency(settings.replace(worker_slice_records=1000, chunk_records=500))
    try:
        alice = add_account(agency, *ALICE)
        bob = add_account(agency, *BOB)
        big, _ = agency.intake.receive(alice, io.BytesIO(deposit_xml(many("10.5555", 8_000))), "big.xml")
        agency.worker.run_once()  # the big batch has started
        small, _ = agency.intake.receive(bob, io.BytesIO(deposit_xml(many("10.6666", 10))), "small.xml")
        slices = 0
        while True:
            assert agency.worker.run_once()
            slices += 1
            with agency.db.sessions() as session:
                small_status = session.get(Submission, small.id).status
                big_done = session.get(Submission, big.id).records_done
            if small_status == "completed":
                break
        assert slices == 1  # the very next slice went to the small batch
        assert big_done < 8_000
        agency.worker.run_until_idle()
        with agency.db.sessions() as session:
            statuses = session.execute(select(Submission.id, Submission.status, Submission.success_count)
                                       .order_by(Submission.id)).all()
        assert [tuple(s) for s in statuses] == [(big.id, "completed", 8_000), (small.id, "completed", 10)]
    finally:
        agency.db.engine.dispose()


def test_two_large_batches_take_turns(settings):
    agency = build_agency(settings.replace(worker_slice_records=500, chunk_records=250))
    try:
        alice = add_account(agency, *ALICE)
        bob = add_account(agency, *BOB)
        first, _ = agency.intake.receive(alice, io.BytesIO(deposit_xml(many("10.5555", 3000))), "a.xml")
        second, _ = agency.intake.receive(bob, io.BytesIO(deposit_xml(many("10.6666", 3000))), "b.xml")
        progress = []
        for _ in range(4):
            agency.worker.run_once()
            with agency.db.sessions() as session:
                progress.append((session.get(Submission, first.id).records_done,
                                 session.get(Submission, second.id).records_done))
        assert progress == [(500, 0), (500, 500), (1000, 500), (1000, 1000)]
    finally:
        agency.db.engine.dispose()


def test_a_service_worker_keeps_its_lease_while_nobody_else_waits_and_yields_when_someone_does(settings, monkeypatch):
    """The worker loop of a service runs slice after slice of one batch under one claim while it is
    alone (no release and claim between them, two commits saved a slice); the slice after another
    registrant's batch arrives goes to that batch."""
    agency = build_agency(settings.replace(worker_slice_records=1000, chunk_records=500))
    try:
        alice = add_account(agency, *ALICE)
        bob = add_account(agency, *BOB)
        claims = []
        real_claim = agency.worker.claim
        monkeypatch.setattr(agency.worker, "claim", lambda: claims.append(1) or real_claim())
        alone, _ = agency.intake.receive(alice, io.BytesIO(deposit_xml(many("10.5555", 4_000))), "alone.xml")
        assert agency.worker.run_once(keep_going=True)
        assert len(claims) == 1
        with agency.db.sessions() as session:
            row = session.get(Submission, alone.id)
            assert (row.status, row.records_done, row.lease_owner) == ("completed", 4_000, None)

        big, _ = agency.intake.receive(alice, io.BytesIO(deposit_xml(many("10.5555", 8_000, start=10_000))),
                                       "big.xml")
        runner = agency.worker.runners["deposit"]
        real_slice = runner.run_slice
        slices = []

        def slice_then_bob_arrives(submission_id, owner):
            finished = real_slice(submission_id, owner)
            slices.append(submission_id)
            if len(slices) == 2:
                agency.intake.receive(bob, io.BytesIO(deposit_xml(many("10.6666", 10))), "small.xml")
            return finished

        monkeypatch.setattr(runner, "run_slice", slice_then_bob_arrives)
        assert agency.worker.run_once(keep_going=True)
        assert slices == [big.id, big.id]  # two slices under one claim, then it let go
        with agency.db.sessions() as session:
            row = session.get(Submission, big.id)
            assert (row.status, row.records_done, row.lease_owner) == ("processing", 2_000, None)
        assert agency.worker.run_once(keep_going=True)
        assert slices[2] != big.id  # bob's batch went next
        agency.worker.run_until_idle()
        with agency.db.sessions() as session:
            assert [s for (s,) in session.execute(select(Submission.status))] == ["completed"] * 3
    finally:
        agency.db.engine.dispose()
