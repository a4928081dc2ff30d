"""Tables, one module per domain; importing this package registers them all."""

from agency.models.base import Base
from agency.models.accounts import Account, Prefix
from agency.models.audit import AuditEvent
from agency.models.callbacks import CallbackDelivery, CallbackTarget
from agency.models.datacite import DataciteDoi, MetadataRelation
from agency.models.handles import Handle, HandleChallenge, HandleCount, HandleValue
from agency.models.metadata import (
    JobLock, JobRun, MddbLoad, MetadataContributor, MetadataCount, MetadataIdentifier, MetadataLocator,
    MetadataRecord,
)
from agency.models.metadata import MetadataJournalTitle
from agency.models.operators import Operator
from agency.models.outbox import OutboxMessage
from agency.models.record_states import AliasLink, MetadataResource, VersionReset, Withdrawal
from agency.models.submissions import RecordResult, Submission
from agency.models.titles import CitationKey, TitleIdentifier, TitleRecord
from agency.models.transfers import Transfer, TransferItem

__all__ = [
    "Base",
    "Account",
    "AliasLink",
    "AuditEvent",
    "CallbackDelivery",
    "CallbackTarget",
    "DataciteDoi",
    "Prefix",
    "Handle",
    "HandleChallenge",
    "HandleCount",
    "HandleValue",
    "JobLock",
    "JobRun",
    "MddbLoad",
    "MetadataContributor",
    "MetadataCount",
    "MetadataIdentifier",
    "MetadataJournalTitle",
    "MetadataLocator",
    "MetadataRelation",
    "MetadataRecord",
    "MetadataResource",
    "Operator",
    "OutboxMessage",
    "RecordResult",
    "Submission",
    "VersionReset",
    "Withdrawal",
    "CitationKey",
    "TitleIdentifier",
    "TitleRecord",
    "Transfer",
    "TransferItem",
]
