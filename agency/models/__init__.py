"""Tables, one module per domain; importing this package registers them all."""

from agency.models.base import Base
from agency.models.accounts import Account, Prefix
from agency.models.audit import AuditEvent
from agency.models.callbacks import CallbackDelivery, CallbackTarget
from agency.models.datacite import DataciteDoi, MetadataRelation
from agency.models.handles import Handle, HandleChallenge, HandleValue
from agency.models.metadata import (
    JobLock, JobRun, MddbLoad, MetadataContributor, MetadataIdentifier, MetadataLocator, MetadataRecord,
)
from agency.models.metadata import MetadataJournalTitle
from agency.models.outbox import OutboxMessage
from agency.models.submissions import RecordResult, Submission

__all__ = [
    "Base",
    "Account",
    "AuditEvent",
    "CallbackDelivery",
    "CallbackTarget",
    "DataciteDoi",
    "Prefix",
    "Handle",
    "HandleChallenge",
    "HandleValue",
    "JobLock",
    "JobRun",
    "MddbLoad",
    "MetadataContributor",
    "MetadataIdentifier",
    "MetadataJournalTitle",
    "MetadataLocator",
    "MetadataRelation",
    "MetadataRecord",
    "OutboxMessage",
    "RecordResult",
    "Submission",
]
