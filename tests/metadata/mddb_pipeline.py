"""Shared steps of the metadata-load tests: deposit through the real pipeline, then load."""

from __future__ import annotations

from sqlalchemy import select

from conftest import basic_headers
from agency.models import MddbLoad, MetadataContributor, MetadataIdentifier, MetadataRecord, OutboxMessage, Submission

ALICE = basic_headers("alice", "alice-password")
BOB = basic_headers("bob", "bob-password")


def deposit(svc, client, data: bytes, headers=ALICE) -> int:
    """POST a batch, run the worker until idle; returns the submission id."""
    response = client.post("/v1/deposits", data=data, headers=headers)
    assert response.status_code == 202, response.get_json()
    svc.worker.run_until_idle()
    return response.get_json()["submission_id"]


def record(svc, doi: str) -> MetadataRecord | None:
    with svc.db.sessions() as session:
        return session.get(MetadataRecord, doi.upper())


def all_records(svc) -> dict[str, MetadataRecord]:
    with svc.db.sessions() as session:
        return {r.doi_key: r for r in session.scalars(select(MetadataRecord))}


def contributors(svc, doi: str) -> list[MetadataContributor]:
    with svc.db.sessions() as session:
        return list(session.scalars(select(MetadataContributor).where(MetadataContributor.doi_key == doi.upper())
                                    .order_by(MetadataContributor.position)))


def identifiers(svc, doi: str) -> set[tuple[str, str, bool]]:
    with svc.db.sessions() as session:
        return {(i.kind, i.value, i.valid_check_digit) for i in session.scalars(
            select(MetadataIdentifier).where(MetadataIdentifier.doi_key == doi.upper()))}


def submission(svc, submission_id: int) -> Submission:
    with svc.db.sessions() as session:
        return session.get(Submission, submission_id)


def loads(svc) -> dict[str, MddbLoad]:
    with svc.db.sessions() as session:
        return {row.folder: row for row in session.scalars(select(MddbLoad))}


def combined_mail(svc) -> list[OutboxMessage]:
    with svc.db.sessions() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("combined-%"))
                                    .order_by(OutboxMessage.id)))


def folder_of(svc, submission_id: int):
    return svc.settings.batch_dir / submission(svc, submission_id).storage_path


def table_snapshot(svc) -> tuple:
    """Everything the index holds, comparable across loads (indexed_at left out)."""
    with svc.db.sessions() as session:
        records = sorted(tuple(getattr(r, c.name) for c in MetadataRecord.__table__.columns if c.name != "indexed_at")
                         for r in session.scalars(select(MetadataRecord)))
        people = sorted(tuple(getattr(r, c.name) for c in MetadataContributor.__table__.columns)
                        for r in session.scalars(select(MetadataContributor)))
        ids = sorted(tuple(getattr(r, c.name) for c in MetadataIdentifier.__table__.columns)
                     for r in session.scalars(select(MetadataIdentifier)))
    return records, people, ids
