"""The combined diagnostic of a loaded batch: deposit and indexing results per record, and its email.

``combined.xml`` (``templates/logs/combined_diagnostic.xml.j2``, described by
``schemas/log/combined_diagnostic.xsd``) is written beside ``log.xml``; the
email (``templates/mail/combined.{txt,html}.j2``) summarizes it for a person:
counts, the failures with DOI and reason, and what to do about the common ones.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator

from jinja2 import Environment
from markupsafe import Markup, escape

from agency.deposit.batch_files import fsync_dir
from agency.deposit.logs import SERVICE_NAME
from agency.handles.store import FAILURE, SUCCESS, WARNING
from agency.metadata.index import SKIPPED

COMBINED_TEMPLATE = "logs/combined_diagnostic.xml.j2"
RECORD_TEMPLATE = "logs/combined_record.xml.j2"  # its record_diagnostic macro renders one record
MAIL_TEXT = "mail/combined.txt.j2"
MAIL_HTML = "mail/combined.html.j2"
LISTED_PROBLEMS = 100  # the email lists this many failures and warnings; the attachment has them all
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# (category, what a message contains), checked in order; the templates hold the advice per category.
_CATEGORIES = (
    ("stale", "less or equal to previously submitted version"),
    ("prefix", "not allowed to add records for prefix"),
    ("invalid_doi", "Invalid DOI"),
    ("invalid_url", "Invalid resource URL"),
    ("newer", "from a newer deposit"),
    ("timestamp", "timestamp"),
    ("duplicate", "Duplicate DOI"),
    ("check_digit", "check digit"),
    ("check_digit", "is not a valid ISSN"),
    ("check_digit", "is not a valid ISBN"),
    ("title", "has no title"),
    ("system", "could not be stored"),
    ("system", "does not match"),
    ("system", "no result for this record"),
    ("system", "not found in the batch file"),
)


def category_of(message: str) -> str:
    """The kind of problem a message reports, for the advice in the email ("other" if unknown)."""
    lowered = message.lower()
    for category, marker in _CATEGORIES:
        if marker.lower() in lowered:
            return category
    return "other"


def xml_text(text: str) -> str:
    """Text safe in XML 1.0 (control characters dropped)."""
    if text.isprintable():  # nearly always: nothing to drop
        return text
    return _NOT_XML.sub("", text)


def xml_texts(texts: tuple[str, ...]) -> tuple[str, ...]:
    """``xml_text`` of each text: the tuple itself when all are printable (nearly always, and a
    record's messages are mostly one shared tuple), checked without a Python call per text."""
    if all(map(str.isprintable, texts)):
        return texts
    return tuple(xml_text(text) for text in texts)


@dataclass(slots=True)
class CombinedRow:
    """One record: its deposit result and its indexing result."""

    seq: int
    doi: str
    deposit_status: str
    deposit_message: str
    index_status: str
    index_messages: tuple[str, ...]


@dataclass(slots=True)
class Problem:
    seq: int
    doi: str
    stage: str  # deposit | indexing
    status: str
    reason: str
    category: str


@dataclass
class CombinedCounts:
    record_count: int = 0
    success_count: int = 0
    warning_count: int = 0
    failure_count: int = 0
    indexed_count: int = 0
    index_warning_count: int = 0
    index_failure_count: int = 0
    skipped_count: int = 0
    failures: list[Problem] = field(default_factory=list)  # the first LISTED_PROBLEMS
    warnings: list[Problem] = field(default_factory=list)
    categories: set[str] = field(default_factory=set)

    @property
    def registered_count(self) -> int:
        return self.success_count + self.warning_count

    @property
    def problem_count(self) -> int:
        return self.failure_count + self.index_failure_count

    def add(self, row: CombinedRow) -> None:
        self.record_count += 1
        if row.deposit_status == SUCCESS:
            self.success_count += 1
        elif row.deposit_status == WARNING:
            self.warning_count += 1
        else:
            self.failure_count += 1
            self._note(self.failures, Problem(row.seq, row.doi, "deposit", FAILURE, row.deposit_message,
                                              category_of(row.deposit_message)))
        if row.index_status in (SUCCESS, WARNING):
            self.indexed_count += 1
        if row.index_status == WARNING:
            self.index_warning_count += 1
            for message in row.index_messages:
                self._note(self.warnings, Problem(row.seq, row.doi, "indexing", WARNING, message,
                                                  category_of(message)))
        elif row.index_status == FAILURE:
            self.index_failure_count += 1
            reason = "; ".join(row.index_messages)
            self._note(self.failures, Problem(row.seq, row.doi, "indexing", FAILURE, reason, category_of(reason)))
        elif row.index_status == SKIPPED:
            self.skipped_count += 1

    def _note(self, into: list[Problem], problem: Problem) -> None:
        self.categories.add(problem.category)
        if len(into) < LISTED_PROBLEMS:
            into.append(problem)


_DOI_MARK = "\x00doi\x00"  # stands for the DOI in a rendered shape: escaping keeps it, and xml_text'd text lacks it
SHAPES_KEPT = 256  # distinct (statuses, messages) kept rendered; a batch has a handful
RECORDS_PER_CHUNK = 512  # record_diagnostic elements handed to the document template at once


class RecordDiagnostics:
    """The record_diagnostic elements of combined.xml, from the template's ``record_diagnostic`` macro.

    Records differ mostly by their DOI: nearly all share one of a few (deposit status and message,
    indexing status and messages). The macro renders each such shape once with a mark for the DOI,
    and every record of that shape is the rendered text with its own DOI, escaped as the template
    escapes it, in the mark's place: the same bytes as rendering each record, at a fraction of the cost.
    """

    def __init__(self, templates: Environment) -> None:
        self.macro = templates.get_template(RECORD_TEMPLATE).module.record_diagnostic
        self.shapes: dict[tuple, tuple[str, str] | None] = {}

    def chunks(self, rows: Iterable[CombinedRow]) -> Iterator[Markup]:
        """The rendered records in order, joined in chunks (the document template's loop runs per chunk)."""
        pieces: list[str] = []
        for row in rows:
            pieces.append(self.render(row))
            if len(pieces) == RECORDS_PER_CHUNK:
                yield Markup("".join(pieces))
                pieces = []
        if pieces:
            yield Markup("".join(pieces))

    def render(self, row: CombinedRow) -> str:
        """One record_diagnostic element."""
        shape = self._shape(row)
        if shape is None:  # the mark is not where the DOI goes: render this record on its own
            return str(self.macro(row))
        before, after = shape
        return "".join((before, escape(row.doi), after))  # not +: Markup's __radd__ would escape the markup

    def _shape(self, row: CombinedRow) -> tuple[str, str] | None:
        """The text before and after the DOI of records like ``row`` (None if it cannot be split there)."""
        key = (row.deposit_status, row.deposit_message, row.index_status, row.index_messages)
        try:
            return self.shapes[key]
        except KeyError:
            pass
        marked = str(self.macro(CombinedRow(row.seq, _DOI_MARK, *key)))
        parts = marked.split(_DOI_MARK)
        shape = (parts[0], parts[1]) if len(parts) == 2 else None
        if len(self.shapes) >= SHAPES_KEPT:
            self.shapes.clear()
        self.shapes[key] = shape
        return shape


@dataclass(frozen=True)
class MailContent:
    subject: str
    text: str
    html: str


class CombinedDiagnostics:
    """Renders combined.xml and the email that carries it."""

    def __init__(self, templates: Environment) -> None:
        self.xml = templates.get_template(COMBINED_TEMPLATE)
        self.records = RecordDiagnostics(templates)
        self.text = templates.get_template(MAIL_TEXT)
        self.html = templates.get_template(MAIL_HTML)

    def write(self, path: Path, rows: Iterable[CombinedRow], counts: CombinedCounts, submission_id: int | None,
              batch_id: str | None, indexed_at: datetime) -> None:
        """Stream the document to a temporary file, fsync it, rename it into place."""
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "w", encoding="utf-8") as fh:
            for chunk in self.xml.generate(record_diagnostics=self.records.chunks(rows), counts=counts,
                                           submission_id=submission_id,
                                           batch_id=xml_text(batch_id) if batch_id else None,
                                           indexed_at=indexed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                           service=SERVICE_NAME):
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)  # the rename survives a crash: the queued email attaches this file

    def mail(self, counts: CombinedCounts, submission_id: int | None, batch_id: str | None, login: str,
             folder: str, attachment_name: str) -> MailContent:
        label = batch_id or (f"submission {submission_id}" if submission_id is not None else folder)
        subject = (f"Batch {label}: {counts.registered_count} of {counts.record_count} registered, "
                   f"{counts.indexed_count} indexed")
        if counts.problem_count:
            subject += f", {counts.problem_count} failed"
        if counts.index_warning_count:
            subject += f", {counts.index_warning_count} with warnings"
        if submission_id is not None and batch_id:
            subject += f" (submission {submission_id})"
        context = dict(counts=counts, submission_id=submission_id, batch_id=batch_id, login=login,
                       folder=folder, attachment_name=attachment_name, listed=LISTED_PROBLEMS,
                       categories=counts.categories)
        return MailContent(subject, self.text.render(**context), self.html.render(**context))
