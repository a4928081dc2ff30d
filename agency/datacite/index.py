"""Findable DataCite records in the metadata database, so that resolution's citation formats
(CSL JSON, BibTeX, RIS...) and DOI look-up queries find them as they find Crossref records.

Only findable DOIs are indexed: a registered (hidden) DOI's metadata is not public.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from agency.datacite.kernel4 import DataciteRecord
from agency.handles.doi_syntax import doi_key, doi_prefix
from agency.metadata.text_keys import name_key, text_key, title_key
from agency.models import Handle, MetadataContributor, MetadataRecord, MetadataRelation

MDS_FOLDER = "(mds)"  # batch_folder of an MDS record with no body kept (a DOI converted from Crossref)
KEY_CHARS = 512

# resourceTypeGeneral → the content type whose citation type fits it (agency.handles.resolver's CSL types).
CONTENT_TYPES = {
    "Dataset": "dataset", "JournalArticle": "journal_article", "Dissertation": "dissertation",
    "Report": "report-paper_metadata", "Book": "book_metadata", "Standard": "standard_metadata",
    "PeerReview": "peer_review", "Preprint": "posted_content", "ConferencePaper": "conference_paper",
}


def _cut(value: str | None, limit: int = KEY_CHARS) -> str | None:
    return value[:limit] if value else value


def unindex(session: Session, doi: str) -> None:
    key = doi_key(doi)
    for table in (MetadataRelation, MetadataContributor):
        session.execute(delete(table).where(table.doi_key == key))
    session.execute(delete(MetadataRecord).where(MetadataRecord.doi_key == key))


def index_record(session: Session, record: DataciteRecord, url: str | None, login: str,
                 submission_id: int | None = None, folder: str | None = None) -> None:
    """Replace the DOI's indexed metadata with this record's, naming the submission (and its folder
    under batches/) that received it."""
    unindex(session, record.doi)
    key = doi_key(record.doi)
    handle = session.get(Handle, key)
    title = next(iter(record.titles), None)
    first = record.creators[0] if record.creators else None
    first_surname = (first.family_name or first.name.split(",")[0]) if first else None
    session.add(MetadataRecord(
        doi_key=key, doi=record.doi, prefix=doi_prefix(record.doi), url=url,
        content_type=CONTENT_TYPES.get(record.resource_type_general, "dataset"
                                       if record.resource_type_general in ("Collection", "Software") else "component"),
        body_type="datacite", publication_type=record.resource_type_general,
        title=title, title_key=_cut(title_key(title)), year=record.publication_year or None,
        publisher=record.publisher, registrant=record.publisher, depositor_login=login,
        first_author_surname=first_surname, first_author_key=_cut(name_key(first_surname)),
        version=handle.version if handle is not None else "0", submission_id=submission_id,
        batch_folder=folder or MDS_FOLDER,
    ))
    session.flush()
    for position, creator in enumerate(record.creators, start=1):
        organization = creator.name_type == "Organizational"
        surname = creator.name if organization else (creator.family_name or creator.name.split(",")[0].strip())
        given = None if organization else (creator.given_name or (creator.name.split(",", 1)[1].strip()
                                                                 if "," in creator.name else None))
        session.add(MetadataContributor(
            doi_key=key, position=position, kind="organization" if organization else "person", role="author",
            sequence="first" if position == 1 else "additional", is_first_author=position == 1,
            surname=surname, given_name=given, surname_key=_cut(name_key(surname) or text_key(surname))))
    for position, related in enumerate(record.related_identifiers, start=1):
        session.add(MetadataRelation(doi_key=key, position=position, identifier=related.value,
                                     identifier_type=related.identifier_type, relation_type=related.relation_type))
