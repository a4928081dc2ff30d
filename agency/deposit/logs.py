"""Batch logs: record diagnostics rendered as a ``doi_batch_diagnostic`` XML document.

Logs are rendered from ``templates/logs/`` and written durably next to the
batch, so a log file on disk is always complete.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from jinja2 import Environment

from agency.models import Submission
from agency.deposit.validation import XmlIssue

SERVICE_NAME = "agency"
LOG_TEMPLATE = "logs/doi_batch_diagnostic.xml.j2"


@dataclass(frozen=True)
class BatchCounts:
    record_count: int = 0
    success_count: int = 0
    warning_count: int = 0
    failure_count: int = 0

    @classmethod
    def of(cls, submission: Submission) -> "BatchCounts":
        return cls(submission.record_count, submission.success_count,
                   submission.warning_count, submission.failure_count)



# A refused file's log counts it as one failed record, as Crossref's whole-file rejection does.
REFUSED_FILE_COUNTS = BatchCounts(record_count=1, success_count=0, warning_count=0, failure_count=1)


@dataclass(frozen=True)
class Refusal:
    kind: str
    summary: str
    issues: list[XmlIssue]

    @classmethod
    def of(cls, submission: Submission) -> "Refusal":
        raw = json.loads(submission.refusal or "{}")
        return cls(submission.refusal_kind or "invalid", raw.get("summary", ""),
                   [XmlIssue(**issue) for issue in raw.get("issues", [])])

    @property
    def message(self) -> str:
        """The reason in one line, as Crossref's whole-file rejection puts it in <msg>: the summary
        and the first error with its line, column and element path."""
        if not self.issues:
            return self.summary + "."
        more = len(self.issues) - 1
        return (f"{self.summary}: {self.issues[0]}"
                + (f" (and {more} more error{'s' if more > 1 else ''}; see <refusal>)" if more > 0 else ""))

    def to_json(self) -> str:
        return json.dumps({"summary": self.summary, "issues": [i.as_dict() for i in self.issues]})


@dataclass(frozen=True)
class StoppedDiagnostic:
    """The one Failure a poller sees for a submission that stopped as failed (no DOI: the batch's)."""

    message: str
    status: str = "Failure"
    doi: str = ""


def stopped_batch(submission: Submission) -> tuple[StoppedDiagnostic, BatchCounts]:
    """The extra Failure line of a failed submission's log, and counts that include it.

    Crossref-style pollers read ``failure_count`` and the record diagnostics; a failed
    submission must show a failure there, never pass for a completed batch."""
    reason = submission.failure_reason or "Processing failed."
    message = (f"Processing of this batch stopped after {submission.records_done} record(s): {reason} "
               f"Records after that were not registered. The agency has been told; the submission "
               f"({submission.id}) can be retried by the operator, or the file deposited again.")
    counts = BatchCounts.of(submission)
    return StoppedDiagnostic(message), BatchCounts(counts.record_count + 1, counts.success_count,
                                                   counts.warning_count, counts.failure_count + 1)


DOIS_IN_CONFLICT = "dois_in_conflict: "
_CONFLICT_NOTE = re.compile(r"\(dois_in_conflict: (.*)\)\s*$")  # last in the message; DOIs may hold ")"


def conflict_note(dois: list[str], shown: int) -> str:
    """The parenthesis a "with conflict" message ends with: the first ``shown`` DOIs, and how many more."""
    more = len(dois) - shown
    return f"({DOIS_IN_CONFLICT}{' '.join(dois[:shown])}{f' and {more} more' if more > 0 else ''})"


def dois_in_conflict(message: str) -> list[str]:
    """The DOIs a record's message names as in conflict (the log's ``<dois_in_conflict>``, as Crossref's)."""
    found = _CONFLICT_NOTE.search(message or "")
    if not found:
        return []
    return found.group(1).split(" and ", 1)[0].split()  # DOIs hold no space


class BatchLogs:
    """Renders and writes the per-batch XML logs."""

    def __init__(self, env: Environment) -> None:
        self.template = env.get_template(LOG_TEMPLATE)
        self.template.globals["dois_in_conflict"] = dois_in_conflict

    def chunks(self, submission: Submission | None, status: str, diagnostics: Iterable = (),
               counts: BatchCounts | None = None, refusal: Refusal | None = None) -> Iterator[str]:
        return self.template.generate(submission=submission or _Unknown(), status=status,
                                      service=SERVICE_NAME, diagnostics=diagnostics, counts=counts,
                                      refusal=refusal)

    def render(self, *args, **kwargs) -> str:
        return "".join(self.chunks(*args, **kwargs))

    def write(self, path: Path, submission: Submission, diagnostics: Iterable,
              counts: BatchCounts, refusal: Refusal | None = None) -> None:
        """Write the completed log atomically (temp file, fsync, rename)."""
        tmp = path.with_name(path.name + ".part")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                for chunk in self.chunks(submission, "completed", diagnostics, counts, refusal):
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk must not keep half a log as well
            raise


class _Unknown:
    id = ""
    doi_batch_id = None
