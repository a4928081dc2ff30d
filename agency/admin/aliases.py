"""Aliases: DOI X made an alias of DOI Y (a DOI registered twice), and undone.

The alias keeps its record and gets an HS_ALIAS value naming the primary:
resolution of X follows to Y's URL, deposits to X are refused naming Y, piped
queries answer Y. Both DOIs must exist and belong to the account; an alias of
itself, a cycle (Y already leads to X) and a chain longer than
``MAX_ALIAS_HOPS`` are refused. Every change is audited in its own transaction.

Crossref's forced-aliasing files come through the deposit servlet with
``subType=cm``: a header line ``H:email=…;op=force_alias;delim=tab`` (or
``op=unalias``), then ``primary<TAB>alias`` lines (for ``unalias``, the alias
alone may be given). Each line is applied alone; the file is kept as a
completed submission of kind ``alias`` with its log, and the log is mailed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO

from sqlalchemy.orm import Session

from agency.accounts import Registrant
from agency.admin.audit import Actor, record_event
from agency.config import Settings
from agency.db import Database
from agency.deposit.batch_files import LOG_FILE
from agency.deposit.intake import DepositIntake
from agency.deposit.logs import BatchCounts, BatchLogs
from agency.handles.doi_syntax import MAX_DOI_LENGTH, doi_key, doi_problem
from agency.handles.store import (
    FAILURE, MAX_ALIAS_HOPS, SUCCESS, RecordDiagnostic, alias_chain, clear_alias, handle_states, set_alias,
)
from agency.models import RecordResult, Submission
from agency.models.submissions import COMPLETED
from agency.models.types import utcnow
from agency.notify.outbox import clean_address, enqueue_mail, recipients_for
from agency.query.piped_format import QueryTextError, iter_query_lines

ALIAS_KIND = "alias"
ALIAS_FILE = "aliases.txt"
FORCE_ALIAS, UNALIAS = "force_alias", "unalias"
MAX_ALIAS_FILE_LINES = 10_000  # applied while the request waits: kept small
MAX_ALIAS_LINE_CHARS = 2 * MAX_DOI_LENGTH + 1
_HEADER = re.compile(r"^H:(?P<fields>.*)$")


class AliasError(Exception):
    """An alias that cannot be made or undone; ``status`` is the HTTP answer (404 unknown, 409 conflict, 400)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def make_alias(session: Session, actor: Actor, registrant: Registrant, primary: str, alias: str, ttl: int) -> None:
    """Make ``alias`` an alias of ``primary`` in the caller's transaction (with its audit event)."""
    for doi in (primary, alias):
        problem = doi_problem(doi)
        if problem:
            raise AliasError(f"Invalid DOI {doi[:100]!r}: {problem}", 400)
    if doi_key(primary) == doi_key(alias):
        raise AliasError(f"A DOI cannot be an alias of itself ({alias}).", 400)
    states = handle_states(session, [doi_key(primary), doi_key(alias)])
    for doi in (primary, alias):
        state = states.get(doi_key(doi))
        if state is None or state.account_id != registrant.id:
            raise AliasError(f"{doi} is not a DOI of this account.", 404)
        if state.withdrawn:
            raise AliasError(f"{doi} is withdrawn; it cannot take part in an alias.")
    chain = alias_chain(session, primary)
    if doi_key(alias) in {doi_key(name) for name in chain}:
        raise AliasError(f"Making {alias} an alias of {primary} would make a cycle: "
                         + " -> ".join(chain) + f" -> {alias}.")
    if len(chain) > MAX_ALIAS_HOPS or doi_key(chain[-1]) in {doi_key(n) for n in chain[:-1]}:
        raise AliasError(f"{primary} is at the start of a chain of {len(chain) - 1} aliases; at most "
                         f"{MAX_ALIAS_HOPS} are followed. Alias {alias} to {chain[-1]} instead.")
    before = states[doi_key(alias)].alias_of
    set_alias(session, doi_key(alias), states[doi_key(primary)].name, ttl)
    record_event(session, actor, "doi.alias", f"doi:{states[doi_key(alias)].name}", account_id=registrant.id,
                 before={"alias_of": before}, after={"alias_of": states[doi_key(primary)].name})


def remove_alias(session: Session, actor: Actor, registrant: Registrant, alias: str) -> str:
    """Undo an alias in the caller's transaction; returns the primary it pointed at."""
    state = handle_states(session, [doi_key(alias)]).get(doi_key(alias))
    if state is None or state.account_id != registrant.id:
        raise AliasError(f"{alias} is not a DOI of this account.", 404)
    if state.alias_of is None:
        raise AliasError(f"{alias} is not an alias.", 404)
    clear_alias(session, state.key)
    record_event(session, actor, "doi.unalias", f"doi:{state.name}", account_id=registrant.id,
                 before={"alias_of": state.alias_of}, after={"alias_of": None})
    return state.alias_of


@dataclass(frozen=True)
class AliasFile:
    operation: str  # force_alias | unalias
    email: str | None
    lines: list[tuple[int, str]]  # (line number, text) after the header, blank lines left out


def read_alias_file(source: IO[bytes]) -> AliasFile:
    """The header and lines of a forced-aliasing file; raises QueryTextError when it is not one."""
    lines = [(n, text) for n, text in enumerate(iter_query_lines(source, MAX_ALIAS_FILE_LINES + 1,
                                                                  MAX_ALIAS_LINE_CHARS), start=1)
             if text.strip()]
    if not lines or not _HEADER.match(lines[0][1].strip()):
        raise QueryTextError("An aliasing file starts with a header line such as "
                             "H:email=you@example.org;op=force_alias;delim=tab")
    fields = dict(part.split("=", 1) for part in _HEADER.match(lines[0][1].strip())["fields"].split(";")
                  if "=" in part)
    operation = fields.get("op", "").strip()
    if operation not in (FORCE_ALIAS, UNALIAS):
        raise QueryTextError(f"The header's op is {operation!r}; use op=force_alias or op=unalias.")
    if fields.get("delim", "tab").strip() != "tab":
        raise QueryTextError("Only delim=tab is supported: primary<TAB>alias lines.")
    if len(lines) - 1 > MAX_ALIAS_FILE_LINES:
        raise QueryTextError(f"More than {MAX_ALIAS_FILE_LINES} lines: split the file.")
    return AliasFile(operation, clean_address(fields.get("email")), lines[1:])


class AliasFiles:
    """Applies forced-aliasing files at once, keeping each as a completed ``alias`` submission with its log."""

    def __init__(self, settings: Settings, db: Database, deposits: DepositIntake, logs: BatchLogs) -> None:
        self.settings = settings
        self.db = db
        self.deposits = deposits
        self.logs = logs

    def receive(self, registrant: Registrant, source: IO[bytes], file_name: str) -> Submission:
        """Raises QueryTextError or IntakeError when the file is refused (nothing is kept then)."""
        spooled = self.deposits.spool(source)
        try:
            with open(spooled.path, "rb") as fh:
                parsed = read_alias_file(fh)
            now = utcnow()
            submission = self.deposits.record_text_file(registrant, spooled, ALIAS_KIND, parsed.operation, file_name,
                                                        ALIAS_FILE, status=COMPLETED, started_at=now,
                                                        depositor_email=parsed.email)
        finally:
            spooled.path.unlink(missing_ok=True)
        diagnostics = [self._apply_line(registrant, parsed.operation, number, text) for number, text in parsed.lines]
        return self._complete(submission.id, registrant, diagnostics)

    def _apply_line(self, registrant: Registrant, operation: str, number: int, text: str) -> RecordDiagnostic:
        parts = [p.strip() for p in text.split("\t")]
        actor = Actor.account(registrant.login)
        try:
            with self.db.transaction() as session:
                if operation == UNALIAS:
                    alias = parts[-1]
                    primary = remove_alias(session, actor, registrant, alias)
                    return RecordDiagnostic(number, alias, SUCCESS, f"Alias to {primary} removed", "unaliased")
                if len(parts) != 2:
                    return RecordDiagnostic(number, parts[0], FAILURE, "A line is primary<TAB>alias", "invalid")
                primary, alias = parts
                make_alias(session, actor, registrant, primary, alias, self.settings.handle_ttl)
                return RecordDiagnostic(number, alias, SUCCESS, f"Successfully aliased to {primary}", "aliased")
        except AliasError as exc:
            return RecordDiagnostic(number, parts[-1], FAILURE, exc.message, "refused")

    def _complete(self, submission_id: int, registrant: Registrant, diagnostics: list[RecordDiagnostic]) -> Submission:
        with self.db.transaction() as session:
            submission = session.get(Submission, submission_id)
            session.add_all(RecordResult(submission_id=submission_id, seq=d.seq, doi=d.doi[:MAX_DOI_LENGTH],
                                         status=d.status, message=d.message, outcome=d.outcome)
                            for d in diagnostics)
            failures = sum(d.status == FAILURE for d in diagnostics)
            submission.record_count = submission.records_done = len(diagnostics)
            submission.success_count, submission.failure_count = len(diagnostics) - failures, failures
            submission.completed_at = utcnow()
            self.logs.write(self.settings.batch_dir / submission.storage_path / LOG_FILE, submission, diagnostics,
                            BatchCounts.of(submission))
            enqueue_mail(session, key=f"alias-{submission.id}",
                         recipients=recipients_for(submission.depositor_email, registrant.email),
                         subject=f"Aliasing: {submission.file_name} (submission {submission.id})",
                         text=(f"Your aliasing file {submission.file_name} ({submission.operation}) was applied: "
                               f"{submission.success_count} lines succeeded, {failures} failed. The log is "
                               "attached."),
                         attachment_path=f"{submission.storage_path}/{LOG_FILE}",
                         attachment_name=f"submission-{submission.id}-log.xml")
        return submission
