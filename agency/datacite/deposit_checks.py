"""Crossref deposits of DOIs that exist only as DataCite MDS drafts.

A draft is not in the handle store, so the store's own interface rule (each interface
refuses the other's DOIs) cannot see it: a Crossref deposit would register the DOI and
the draft's later mint through the MDS API would be refused. The deposit runner's
``RecordChecks`` hook refuses such records first, with the same message.
"""

from __future__ import annotations

from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.accounts import Registrant
from agency.handles.doi_syntax import doi_key
from agency.handles.store import DATACITE, FAILURE, KeyList, RecordDiagnostic, other_interface_message
from agency.models import DataciteDoi

DRAFT = "draft"
INTERFACE_OUTCOME = "interface"


class DraftGuard:
    """``RecordChecks``: a record whose DOI is an MDS draft fails; nothing to add after registration."""

    def before_registration(self, session: Session, registrant: Registrant,
                            records: Sequence) -> dict[int, RecordDiagnostic]:
        keys = {doi_key(r.doi): r for r in records}
        is_draft = DataciteDoi.state == DRAFT
        if not keys or session.scalar(select(DataciteDoi.key).where(is_draft).limit(1)) is None:
            return {}  # no draft at all (one probe of the drafts' index): the usual case
        wanted = KeyList.of(session, list(keys))
        drafts = set(session.scalars(  # primary-key probes, one per record of the chunk
            select(DataciteDoi.key).select_from(wanted.table.source)
            .join(DataciteDoi, DataciteDoi.key == wanted.key).where(is_draft), wanted.parameters))
        return {keys[k].seq: RecordDiagnostic(keys[k].seq, keys[k].doi, FAILURE,
                                              other_interface_message(keys[k].doi, DATACITE), INTERFACE_OUTCOME)
                for k in drafts}

    def after_registration(self, session: Session, registrant: Registrant, records: Sequence) -> dict[int, str]:
        return {}
