"""Emails that tell a depositor their batch was refused, with the errors and the log attached,
or that a submission stopped as failed (the operator too), with the reason and what happens next.

Only deposits that came in through the asynchronous, Crossref-compatible path
(``/servlet/deposit``, i.e. ``submission.operation != "api"``) are mailed: those
clients read the HTTP answer at most for "received", and expect the outcome by
email. The plain API (``operation == "api"``) answers its caller directly with
the errors, so no email is sent there.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment
from lxml import etree
from sqlalchemy.orm import Session

from agency.accounts import Registrant
from agency.deposit.batch_files import LOG_FILE, submission_path
from agency.config import Settings
from agency.deposit.logs import Refusal
from agency.notify.outbox import clean_address, enqueue_mail, recipients_for
from agency.models import Account, OutboxMessage, Submission
from agency.deposit.validation import HOSTILE, MAX_REPORTED_ERRORS, hardened_parser_options, local_name

API_OPERATION = "api"
REFUSED_TEXT = "mail/refused.txt.j2"
REFUSED_HTML = "mail/refused.html.j2"
FAILED_TEXT = "mail/failed.txt.j2"
STATUS_PATHS = {"deposit": "/v1/deposits/{id}", "query": "/v1/queries/{id}", "url-update": "/v1/url-updates/{id}"}
HEAD_SCAN_EVENTS = 10_000  # the head comes first; never read further into a refused file


def refusal_key(submission_id: int) -> str:
    return f"refused-{submission_id}"


class RefusalNotices:
    """The intake's ``on_refused`` hook: one email per refused asynchronous deposit."""

    def __init__(self, settings: Settings, templates: Environment) -> None:
        self.settings = settings
        self.text_template = templates.get_template(REFUSED_TEXT)
        self.html_template = templates.get_template(REFUSED_HTML)

    def on_refused(self, session: Session, submission: Submission, registrant: Registrant) -> OutboxMessage | None:
        """Enqueue the notice in the refusing transaction (so it exists iff the refusal is recorded)."""
        if submission.operation == API_OPERATION:
            return None
        refusal = Refusal.of(submission)
        batch_email = submission.depositor_email or self._head_email(submission, refusal)
        context = self._context(submission, registrant, refusal)
        return enqueue_mail(
            session, key=refusal_key(submission.id),
            recipients=recipients_for(batch_email, registrant.email),
            subject=_subject(submission),
            text=self.text_template.render(**context), html=self.html_template.render(**context),
            attachment_path=f"{submission.storage_path}/{LOG_FILE}",
            attachment_name=f"submission-{submission.id}-log.xml", attachment_type="application/xml",
        )

    def _head_email(self, submission: Submission, refusal: Refusal) -> str | None:
        if refusal.kind == HOSTILE:
            return None  # a file refused for safety is not read again
        return head_email(submission_path(self.settings.batch_dir, submission.storage_path))

    def _context(self, submission: Submission, registrant: Registrant, refusal: Refusal) -> dict:
        base = self.settings.base_url.rstrip("/")
        return dict(
            submission=submission, registrant=registrant, refusal=refusal, issues=refusal.issues,
            truncated=len(refusal.issues) >= MAX_REPORTED_ERRORS,
            received=f"{submission.received_at:%Y-%m-%d %H:%M:%S} UTC",
            status_url=f"{base}/v1/deposits/{submission.id}", log_url=f"{base}/v1/deposits/{submission.id}/log",
        )


class FailureNotices:
    """The worker's ``on_failed`` hook: one email per submission that stopped as failed.

    Every kind and every path is mailed, the plain API included: its caller was told
    "accepted" and may never poll again. The operator (``AGENCY_OPERATOR_EMAIL``) is
    copied, since only a retry by staff (``agency submissions retry``) moves it on."""

    def __init__(self, settings: Settings, templates: Environment) -> None:
        self.settings = settings
        self.template = templates.get_template(FAILED_TEXT)

    def on_failed(self, session: Session, submission: Submission) -> OutboxMessage | None:
        account = session.get(Account, submission.account_id)
        recipients = recipients_for(submission.depositor_email, account.email if account else None)
        operator = clean_address(self.settings.operator_email)
        if operator and operator not in recipients:
            recipients.append(operator)
        base = self.settings.base_url.rstrip("/")
        status_path = STATUS_PATHS.get(submission.kind, "/v1/deposits/{id}").format(id=submission.id)
        batch = f" (batch {submission.doi_batch_id})" if submission.doi_batch_id else ""
        stopped = submission.completed_at or submission.last_slice_at
        return enqueue_mail(
            session, key=f"failed-{submission.id}-{int(stopped.timestamp()) if stopped else 0}",
            recipients=recipients, subject=f"Submission failed: {submission.file_name}{batch}, submission "
                                           f"{submission.id}",
            text=self.template.render(submission=submission, login=account.login if account else "?",
                                      received=f"{submission.received_at:%Y-%m-%d %H:%M:%S} UTC",
                                      status_url=base + status_path))


def _subject(submission: Submission) -> str:
    batch = f" (batch {submission.doi_batch_id})" if submission.doi_batch_id else ""
    return f"Deposit refused: {submission.file_name}{batch}, submission {submission.id}"


def head_email(path: Path) -> str | None:
    """``doi_batch/head/depositor/email_address`` from a file that may be broken further on.

    Reads only as far as the head, with the hardened parser; a parse error
    before the address is found just means we do not know it.
    """
    depth, in_head, in_depositor = 0, False, False
    try:
        with open(path, "rb") as fh:
            events = etree.iterparse(fh, events=("start", "end"), **hardened_parser_options())
            for count, (event, element) in enumerate(events):
                name = local_name(element.tag)
                if event == "start":
                    depth += 1
                    in_head = in_head or (depth == 2 and name == "head")
                    in_depositor = in_depositor or (in_head and depth == 3 and name == "depositor")
                    if (depth == 2 and name != "head") or count > HEAD_SCAN_EVENTS:
                        return None
                    continue
                depth -= 1
                if in_depositor and name == "email_address":
                    return clean_address(element.text)
                if name == "head" and depth == 1:
                    return None
                in_depositor = in_depositor and not (name == "depositor" and depth == 2)
    except (etree.XMLSyntaxError, OSError):
        return None
    return None
