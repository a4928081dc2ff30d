"""Durable mail: an outbox table written with its cause, delivered later with retries.

``enqueue_mail`` adds a row to the caller's transaction, so an email exists if
and only if the state change that caused it was committed. ``MailSender``
delivers due rows over SMTP (``settings.smtp_url``) or, when no SMTP server is
configured, into a maildir under the data folder: the standard ``tmp/new/cur``
layout (readable by mutt or ``mailbox.Maildir``) where each message is a plain
``.eml`` file a person can open.

Exactly once, as far as SMTP allows: a message is claimed (a lease on its row,
committed) before it is sent and marked sent right after the server's 250 reply.
A crash between that reply and our commit is the only way a message can go out
twice, and then it goes out with the same ``Message-ID`` (stored on the row at
enqueue time), so mail clients and de-duplicating servers see one message. No
protocol can close that window: the server commits its copy before we can
commit ours. We keep it short by claiming and sending one message at a time
and marking it sent before touching the next one.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import re
import smtplib
import socket
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Iterable, Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from agency.deposit.batch_files import fsync_dir
from agency.config import Settings
from agency.db import Database, conflict_insert
from agency.models import OutboxMessage
from agency.models.outbox import DEAD, PENDING, SENT
from agency.models.types import utcnow
from agency.runtime.scheduling import process_owner

log = logging.getLogger(__name__)

MAX_KEY_CHARS = 255
MAX_SUBJECT_CHARS = 250
ADDRESS_PATTERN = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}$")
MIME_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
LEFT_OUT_NOTE = "left out unusable recipient address(es): "
TRUE_WORDS, FALSE_WORDS = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


class MailConfigError(ValueError):
    """The mail settings (``AGENCY_SMTP_URL`` …) cannot work; raised at start-up."""


# -- addresses ----------------------------------------------------------------
def clean_address(raw: str | None) -> str | None:
    """The address as a plain ``local@domain`` (IDNA domain), or None when it is not one.

    Addresses come from batch heads, i.e. from registrants' files; anything with
    spaces, line breaks, several addresses or a display name is not trusted.
    """
    if not raw:
        return None
    candidate = raw.strip()
    if "@" not in candidate:
        return None
    local, _, domain = candidate.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    address = f"{local}@{domain}"
    if len(address) > 320 or not ADDRESS_PATTERN.match(address):
        return None
    if local.startswith(".") or local.endswith(".") or ".." in local or ".." in domain:
        return None
    if domain.startswith((".", "-")) or domain.endswith((".", "-")):
        return None
    return address


def recipients_for(batch_email: str | None, account_email: str | None) -> list[str]:
    """Whom to tell about a batch: the batch head's address when usable, else the account's."""
    for candidate in (batch_email, account_email):
        address = clean_address(candidate)
        if address:
            return [address]
    return []


# -- enqueueing ---------------------------------------------------------------
def enqueue_mail(session: Session, *, key: str, recipients: list[str], subject: str, text: str,
                 html: str | None = None, attachment_path: str | None = None,
                 attachment_name: str | None = None,
                 attachment_type: str = "application/xml") -> OutboxMessage | None:
    """Add an email to the outbox inside the caller's transaction; None if ``key`` exists already.

    ``key`` names the cause (e.g. ``combined-42``) so a retried cause cannot mail
    twice. ``attachment_path`` is relative to the batch folder and is read at
    send time. Unusable recipient addresses are left out and noted on the row;
    with none left the row is stored ``dead`` with the reason, so a bad address
    in a registrant's file never rolls back the caller's work and stays visible.
    """
    key = _checked_key(key)
    attachment = _checked_attachment(attachment_path, attachment_name, attachment_type)
    good, bad = _split_addresses(recipients)
    problems = []
    if bad:
        problems.append(LEFT_OUT_NOTE + ", ".join(repr(b) for b in bad))
    if not good:
        problems.append("no usable recipient address, so nothing can be sent")
    now = utcnow()
    values = dict(
        key=key, message_id=email.utils.make_msgid(_slug(key), domain=_message_id_domain()),
        recipients=",".join(good), subject=_clean_subject(subject), text_body=_clean_text(text),
        html_body=_clean_text(html) if html else None, attachment_path=attachment[0],
        attachment_name=attachment[1], attachment_type=attachment[2], created_at=now,
        status=PENDING if good else DEAD, attempts=0, next_attempt_at=now,
        last_error="; ".join(problems) or None,
    )
    new_id = session.scalar(_insert_unless_key_exists(session, values))
    if new_id is None:
        return None
    if not good:
        log.warning("outbox %s (%s) is dead on arrival: %s", new_id, key, values["last_error"])
    return session.get(OutboxMessage, new_id)


def _insert_unless_key_exists(session: Session, values: dict):
    """INSERT … ON CONFLICT (key) DO NOTHING: atomic against a concurrent enqueue of the same key."""
    insert = conflict_insert(session.get_bind().dialect.name)
    return (insert(OutboxMessage).values(**values)
            .on_conflict_do_nothing(index_elements=[OutboxMessage.key])
            .returning(OutboxMessage.id))


def _checked_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValueError("enqueue_mail: key must be a non-empty string naming the cause")
    if len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise ValueError(f"enqueue_mail: key must be at most {MAX_KEY_CHARS} printable characters")
    return key


def _checked_attachment(path: str | None, name: str | None,
                        mime_type: str | None) -> tuple[str | None, str | None, str | None]:
    if path is None:
        return None, None, None
    relative = PurePosixPath(str(path).replace("\\", "/"))
    if not relative.parts or relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"enqueue_mail: attachment_path {path!r} must be relative to the batch folder")
    mime_type = mime_type or "application/octet-stream"
    if not MIME_TYPE_PATTERN.match(mime_type):
        raise ValueError(f"enqueue_mail: attachment_type {mime_type!r} is not a MIME type like application/xml")
    shown = "".join(c for c in (name or relative.name) if c.isprintable() and c not in "/\\\"")[:255]
    return str(relative), shown or relative.name, mime_type.lower()


def _split_addresses(recipients: Iterable[str]) -> tuple[list[str], list[str]]:
    if isinstance(recipients, str):
        recipients = [recipients]
    good: list[str] = []
    bad: list[str] = []
    for raw in recipients or []:
        address = clean_address(raw)
        if address is None:
            bad.append(str(raw)[:100])
        elif address not in good:
            good.append(address)
    return good, bad


def _clean_subject(subject: str) -> str:
    """One line (a header cannot carry line breaks), NUL-free, of a readable length."""
    flat = " ".join(_clean_text(subject or "").split())
    return flat[:MAX_SUBJECT_CHARS] or "(no subject)"


def _clean_text(text: str) -> str:
    # PostgreSQL text cannot hold NUL; registrants' files can put one in an error message.
    return (text or "").replace("\x00", "\ufffd")


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", key)[:64]


@cache
def _message_id_domain() -> str:
    host = re.sub(r"[^A-Za-z0-9.-]+", "-", socket.gethostname()).strip(".-")
    return host or "agency.localhost"


# -- messages -----------------------------------------------------------------
class DeliveryFailure(Exception):
    """A failed attempt; ``permanent`` when retrying the same message cannot help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def build_message(row: OutboxMessage, settings: Settings) -> EmailMessage:
    """The MIME message of an outbox row: text, optional HTML alternative, optional attachment.

    Everything that identifies the message (Message-ID, Date) comes from the row,
    so a re-send is byte-for-byte the same message.
    """
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = ", ".join(row.recipient_list)
    message["Subject"] = row.subject
    message["Date"] = email.utils.format_datetime(row.created_at)
    message["Message-ID"] = row.message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    text, html = row.text_body, row.html_body
    attachment = _attachment_bytes(row, settings)
    if row.attachment_path and attachment is None:
        note = _too_large_note(row, settings)
        text = f"{text.rstrip()}\n\n{note}\n"
        html = f"{html}<p>{note}</p>" if html else None
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    if attachment is not None:
        maintype, subtype = (row.attachment_type or "application/octet-stream").split("/", 1)
        message.add_attachment(attachment, maintype=maintype, subtype=subtype, filename=row.attachment_name)
    return message


def _attachment_file(row: OutboxMessage, settings: Settings) -> Path:
    root = settings.batch_dir.resolve()
    path = (root / row.attachment_path).resolve()
    if not path.is_relative_to(root):
        raise DeliveryFailure(f"attachment {row.attachment_path!r} is outside the batch folder", permanent=True)
    return path


def _attachment_bytes(row: OutboxMessage, settings: Settings) -> bytes | None:
    """The attachment, or None when it is too large to mail (the text then says so)."""
    if not row.attachment_path:
        return None
    path = _attachment_file(row, settings)
    try:
        if path.stat().st_size > settings.mail_max_attachment_bytes:
            return None
        return path.read_bytes()
    except FileNotFoundError:
        raise DeliveryFailure(f"attachment {row.attachment_path} is missing under the batch folder") from None
    except OSError as exc:
        raise DeliveryFailure(f"attachment {row.attachment_path} cannot be read: {exc}") from None


def _too_large_note(row: OutboxMessage, settings: Settings) -> str:
    size = _attachment_file(row, settings).stat().st_size
    return (f"The file {row.attachment_name} ({size} bytes) is larger than the "
            f"{settings.mail_max_attachment_bytes} bytes this agency attaches to mail, so it is not "
            "attached; it is kept by the agency and can be downloaded there.")


# -- transports ---------------------------------------------------------------
class Connection(Protocol):
    def send(self, row: OutboxMessage, message: EmailMessage) -> str | None:
        """Deliver one message; returns a note on partly refused recipients, raises DeliveryFailure."""

    def close(self) -> None: ...


class Transport(Protocol):
    def connect(self) -> Connection:
        """Open a connection (raises DeliveryFailure when the server cannot be reached)."""

    def describe(self) -> str: ...


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to submit mail, parsed from ``AGENCY_SMTP_URL``."""

    host: str
    port: int
    security: str  # "none" | "starttls" | "tls"
    username: str | None = None
    password: str | None = None

    def describe(self) -> str:
        """The URL without the password, for logs and error messages."""
        scheme = "smtps" if self.security == "tls" else "smtp"
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = "?starttls=1" if self.security == "starttls" else ""
        return f"{scheme}://{user}{host}:{self.port}{query}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://host[:25]``, ``smtp://user:pass@host:587?starttls=1``, ``smtps://host[:465]``.

    User and password are percent-decoded (write ``@ : / ? #`` in them as %40 %3A
    %2F %3F %23). Anything else in the URL is refused rather than ignored.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise MailConfigError(f"AGENCY_SMTP_URL {_redacted(url)!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise MailConfigError(f"AGENCY_SMTP_URL must start with smtp:// or smtps://, not {scheme or '(none)'}://")
    if not parts.hostname:
        raise MailConfigError("AGENCY_SMTP_URL has no host name, as in smtp://mail.example.org:25")
    if parts.path not in ("", "/") or parts.fragment:
        raise MailConfigError("AGENCY_SMTP_URL must not have a path or #fragment: smtp://[user:pass@]host[:port]")
    starttls = _starttls_option(parts.query)
    if scheme == "smtps" and starttls:
        raise MailConfigError("AGENCY_SMTP_URL: smtps:// is TLS from the start; starttls=1 applies to smtp:// only")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise MailConfigError("AGENCY_SMTP_URL has a password but no user name")
    security = "tls" if scheme == "smtps" else ("starttls" if starttls else "none")
    default_port = {"tls": 465, "starttls": 587, "none": 25}[security]
    return SmtpTarget(host=parts.hostname, port=port or default_port, security=security,
                      username=username, password=password)


def _starttls_option(query: str) -> bool:
    try:
        options = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise MailConfigError(f"AGENCY_SMTP_URL: cannot read the options {query!r}; use ?starttls=1") from None
    unknown = sorted(set(options) - {"starttls"})
    if unknown:
        raise MailConfigError(f"AGENCY_SMTP_URL: unknown option(s) {', '.join(unknown)}; the only option is starttls=1")
    value = options.get("starttls", [""])[-1].strip().lower()
    if value not in TRUE_WORDS | FALSE_WORDS:
        raise MailConfigError(f"AGENCY_SMTP_URL: starttls={value!r}; use starttls=1 or starttls=0")
    return value in TRUE_WORDS


def _redacted(url: str) -> str:
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)


class SmtpTransport:
    """Submission to an SMTP server; TLS certificates are verified (``AGENCY_SMTP_CA_FILE`` adds a CA)."""

    def __init__(self, target: SmtpTarget, settings: Settings) -> None:
        self.target = target
        self.settings = settings
        self.envelope_from = email.utils.parseaddr(settings.mail_from)[1] or settings.mail_from

    def describe(self) -> str:
        return self.target.describe()

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.smtp_ca_file or None)

    def connect(self) -> "SmtpConnection":
        target, timeout = self.target, self.settings.smtp_timeout_seconds
        client: smtplib.SMTP | None = None
        try:
            if target.security == "tls":
                client = smtplib.SMTP_SSL(target.host, target.port, local_hostname=_helo_name(), timeout=timeout,
                                          context=self.tls_context())
            else:
                client = smtplib.SMTP(target.host, target.port, local_hostname=_helo_name(), timeout=timeout)
            client.ehlo()
            if target.security == "starttls":
                client.starttls(context=self.tls_context())
                client.ehlo()
            if target.username:
                client.login(target.username, target.password or "")
        except (OSError, smtplib.SMTPException) as exc:
            if client is not None:
                _quietly_close(client)
            raise DeliveryFailure(f"cannot submit to {self.describe()}: {_describe_error(exc)}") from None
        return SmtpConnection(client, self.envelope_from, self.describe())


@cache
def _helo_name() -> str:
    """This host's name for EHLO, looked up once (smtplib would ask DNS on every connection)."""
    return socket.getfqdn() or "localhost"


class SmtpConnection:
    def __init__(self, client: smtplib.SMTP, envelope_from: str, where: str) -> None:
        self.client = client
        self.envelope_from = envelope_from
        self.where = where
        self.broken = False

    def send(self, row: OutboxMessage, message: EmailMessage) -> str | None:
        try:
            refused = self.client.send_message(message, from_addr=self.envelope_from, to_addrs=row.recipient_list)
        except smtplib.SMTPRecipientsRefused as exc:
            permanent = all(code >= 500 for code, _ in exc.recipients.values())
            raise DeliveryFailure(f"{self.where} refused every recipient: {_refusals(exc.recipients)}",
                                  permanent=permanent) from None
        except smtplib.SMTPResponseException as exc:
            # 552 (too big) and a 5xx to the message data are about this message;
            # other 5xx (e.g. "530 authentication required") are about our set-up.
            permanent = exc.smtp_code == 552 or (isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500)
            self.broken = not permanent
            raise DeliveryFailure(f"{self.where}: {_describe_error(exc)}", permanent=permanent) from None
        except (OSError, smtplib.SMTPException) as exc:
            self.broken = True
            raise DeliveryFailure(f"{self.where}: {_describe_error(exc)}") from None
        return f"{self.where} refused some recipients: {_refusals(refused)}" if refused else None

    def close(self) -> None:
        _quietly_close(self.client)


def _refusals(refused: dict) -> str:
    return "; ".join(f"{address} ({code} {_text_of(reply)})" for address, (code, reply) in refused.items())


def _text_of(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text_of(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _quietly_close(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


class MaildirTransport:
    """Writes each message as ``new/<name>.eml`` in a maildir; the name comes from the row.

    A deterministic name makes a re-delivery after a crash overwrite the same
    file instead of adding a second copy, so here delivery is exactly once.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return f"maildir {self.folder}"

    def connect(self) -> "MaildirTransport":
        try:
            for sub in ("tmp", "new", "cur"):  # the maildir layout, private to the agency's user
                (self.folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise DeliveryFailure(f"cannot create the maildir {self.folder}: {exc}") from None
        return self

    @staticmethod
    def file_name(row: OutboxMessage) -> str:
        token = hashlib.sha256(row.message_id.encode()).hexdigest()[:12]
        return f"{row.created_at:%Y%m%dT%H%M%S}.{row.id}.{token}.eml"

    def send(self, row: OutboxMessage, message: EmailMessage) -> None:
        name = self.file_name(row)
        if any((self.folder / "cur").glob(f"{name}:*")):
            return None  # delivered before and already seen by a mail reader
        tmp, final = self.folder / "tmp" / name, self.folder / "new" / name
        try:
            with open(tmp, "wb") as fh:
                fh.write(message.as_bytes())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except OSError as exc:
            raise DeliveryFailure(f"cannot write {final}: {exc}") from None
        return None

    def close(self) -> None:
        return None


def transport_for(settings: Settings) -> Transport:
    """SMTP when ``AGENCY_SMTP_URL`` is set, else the maildir in the data folder."""
    if settings.smtp_url.strip():
        return SmtpTransport(parse_smtp_url(settings.smtp_url), settings)
    return MaildirTransport(settings.maildir)


# -- the sender ---------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """How a leased outbox retries: attempts before dead, backoff, lease length, rows looked up per round."""

    max_attempts: int
    base_seconds: int
    max_seconds: int
    lease_seconds: int
    batch_size: int

    def delay(self, attempts: int) -> timedelta:
        """Deterministic exponential backoff after ``attempts`` failures: base, 2·base, 4·base … up to the cap."""
        exponent = max(attempts - 1, 0)
        return timedelta(seconds=min(self.base_seconds * (2 ** min(exponent, 40)), self.max_seconds))


def mail_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(settings.mail_max_attempts, settings.mail_retry_base_seconds, settings.mail_retry_max_seconds,
                       settings.mail_lease_seconds, settings.mail_batch_size)


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    return mail_policy(settings).delay(attempts)


class LeasedOutbox:
    """Rows to deliver (mail, callbacks) claimed one at a time with a lease, retried with backoff, dead after N.

    ``model`` has ``status`` (pending|sent|dead), ``attempts``, ``next_attempt_at``,
    ``last_error``, ``claimed_by`` and ``claimed_until``. Any number of senders may
    run at once, in any processes: a claim is a compare-and-set UPDATE, and every
    later change is fenced on the claim, so a sender whose lease ran out changes nothing.
    """

    model: type = OutboxMessage

    def __init__(self, db: Database, policy: RetryPolicy) -> None:
        self.db = db
        self.policy = policy
        self.name = process_owner()

    def _due_ids(self, now: datetime) -> list[int]:
        model = self.model
        with self.db.sessions() as session:
            return list(session.scalars(
                select(model.id)
                .where(model.status == PENDING, model.next_attempt_at <= now,
                       or_(model.claimed_until.is_(None), model.claimed_until < now))
                .order_by(model.next_attempt_at, model.id)
                .limit(self.policy.batch_size)))

    def _claim(self, row_id: int, now: datetime, owner: str | None = None):
        """Take the lease on one row (a compare-and-set UPDATE); None when another sender was first."""
        model = self.model
        with self.db.transaction() as session:
            taken = session.execute(
                update(model)
                .where(model.id == row_id, model.status == PENDING, model.next_attempt_at <= now,
                       or_(model.claimed_until.is_(None), model.claimed_until < now))
                .values(claimed_by=owner or self.name,
                        claimed_until=now + timedelta(seconds=self.policy.lease_seconds))
                .execution_options(synchronize_session=False))
            if taken.rowcount != 1:
                return None
            return session.get(model, row_id)

    def _attempt(self, row, clock, send):
        """``send()``'s result, or None after recording the failed attempt (a bug costs an attempt too,
        rather than looping silently on lease expiry)."""
        try:
            return send()
        except DeliveryFailure as failure:
            self._record_failure(row, failure, clock())
        except Exception as exc:
            log.exception("%s %s: unexpected error while delivering", self.model.__tablename__, row.id)
            self._record_failure(row, DeliveryFailure(f"unexpected error: {exc!r}"), clock())
        return None

    def _record_failure(self, row, failure: "DeliveryFailure", now: datetime) -> None:
        attempts = row.attempts + 1
        give_up = failure.permanent or attempts >= self.policy.max_attempts
        changes = dict(attempts=attempts, last_error=str(failure)[:4000], claimed_by=None, claimed_until=None)
        if give_up:
            changes["status"] = DEAD
        else:
            changes["next_attempt_at"] = now + self.policy.delay(attempts)
        with self.db.transaction() as session:
            session.execute(self._fenced(row).values(**changes))
        log.warning("%s %s (%s) attempt %d failed%s: %s", self.model.__tablename__, row.id, row.key, attempts,
                    "; giving up (dead)" if give_up else f"; next try at {changes['next_attempt_at']:%H:%M:%S}",
                    failure)

    def _fenced(self, row):
        """An UPDATE that only applies while the claim that loaded ``row`` still holds."""
        return (update(self.model)
                .where(self.model.id == row.id, self.model.claimed_by == row.claimed_by)
                .execution_options(synchronize_session=False))


class MailSender(LeasedOutbox):
    """Delivers due outbox rows; any number of senders may run at once, in any processes."""

    def __init__(self, settings: Settings, db: Database, transport: Transport | None = None) -> None:
        if clean_address(email.utils.parseaddr(settings.mail_from)[1]) is None:
            raise MailConfigError(f"AGENCY_MAIL_FROM {settings.mail_from!r} is not an address like "
                                  "agency@ra.example.org or 'DOI Agency <agency@ra.example.org>'")
        super().__init__(db, mail_policy(settings))
        self.settings = settings
        self.transport = transport or transport_for(settings)

    def deliver_due(self, now: datetime | None = None) -> int:
        """Try every message due now (or at ``now``, for tests) once; returns how many were delivered.

        Without ``now`` the clock is read afresh for every claim, so a long run
        never hands out leases that have already expired.
        """
        clock = (lambda: now) if now is not None else utcnow
        run = _DeliveryRun(self.transport, owner=f"{self.name}:{uuid.uuid4().hex[:8]}")
        delivered, tried = 0, set()
        try:
            while batch := [i for i in self._due_ids(clock()) if i not in tried]:
                for message_id in batch:
                    tried.add(message_id)
                    row = self._claim(message_id, clock(), run.owner)
                    if row is not None:
                        delivered += self._deliver(run, row, clock)
        finally:
            run.close()
        return delivered

    def _deliver(self, run: "_DeliveryRun", row: OutboxMessage, clock) -> int:
        outcome = self._attempt(row, clock, lambda: ("sent", run.send(row, build_message(row, self.settings))))
        if outcome is None:
            return 0
        self._record_sent(row, outcome[1], clock())
        return 1

    def _record_sent(self, row: OutboxMessage, note: str | None, now: datetime) -> None:
        with self.db.transaction() as session:
            marked = session.execute(self._fenced(row).values(
                status=SENT, sent_at=now, attempts=row.attempts + 1, last_error=note or _enqueue_note(row),
                claimed_by=None, claimed_until=None))
        if marked.rowcount != 1:
            log.error("outbox %s was delivered after this sender's lease ran out; another sender "
                      "may deliver it again (same Message-ID %s)", row.id, row.message_id)
        else:
            log.info("outbox %s (%s) delivered via %s", row.id, row.key, self.transport.describe())


def _enqueue_note(row: OutboxMessage) -> str | None:
    """What enqueueing noted (left-out addresses) stays visible once the message is sent."""
    note = row.last_error or ""
    return note if note.startswith(LEFT_OUT_NOTE) else None


class _DeliveryRun:
    """One connection shared by a run; after a failed connect, the run does not hammer the server."""

    def __init__(self, transport: Transport, owner: str) -> None:
        self.transport = transport
        self.owner = owner
        self.connection: Connection | None = None
        self.connect_failure: DeliveryFailure | None = None

    def send(self, row: OutboxMessage, message: EmailMessage) -> str | None:
        if self.connect_failure is not None:
            raise self.connect_failure  # the same attempt, at the same moment: record it for this one too
        if self.connection is None:
            try:
                self.connection = self.transport.connect()
            except DeliveryFailure as failure:
                self.connect_failure = failure
                raise
        try:
            note = self.connection.send(row, message)
        except DeliveryFailure:
            if getattr(self.connection, "broken", False):
                self.close()
            raise
        except BaseException:
            self.close()  # state unknown: never reuse it
            raise
        return note

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# -- operators' view ----------------------------------------------------------
def list_messages(db: Database, statuses: Iterable[str] = (PENDING, DEAD), limit: int = 100) -> list[OutboxMessage]:
    """Messages in the given states, oldest first (what `agency mail list` prints)."""
    with db.sessions() as session:
        return list(session.scalars(select(OutboxMessage)
                                    .where(OutboxMessage.status.in_(list(statuses)))
                                    .order_by(OutboxMessage.id).limit(limit)))


def retry_dead(db: Database, ids: Iterable[int] | None = None, now: datetime | None = None) -> int:
    """Give dead messages a fresh set of attempts (after the operator fixed the cause)."""
    now = now or utcnow()
    statement = update(OutboxMessage).where(OutboxMessage.status == DEAD, OutboxMessage.recipients != "")
    if ids is not None:
        statement = statement.where(OutboxMessage.id.in_(list(ids)))
    with db.transaction() as session:
        result = session.execute(statement.values(status=PENDING, attempts=0, next_attempt_at=now,
                                                  claimed_by=None, claimed_until=None)
                                 .execution_options(synchronize_session=False))
    return result.rowcount


def outbox_counts(db: Database) -> dict[str, int]:
    """How many messages are in each state."""
    with db.sessions() as session:
        rows = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
        return {PENDING: 0, SENT: 0, DEAD: 0, **{status: count for status, count in rows}}


def describe_message(row: OutboxMessage) -> str:
    """One message as an operator reads it in `agency mail list`."""
    when = (f"sent {row.sent_at:%Y-%m-%d %H:%M:%S}" if row.status == SENT
            else f"next {row.next_attempt_at:%Y-%m-%d %H:%M:%S}" if row.status == PENDING else "given up")
    lines = [f"#{row.id} {row.status} attempts={row.attempts} {when} UTC key={row.key}",
             f"    to: {row.recipients or '(nobody)'}  subject: {row.subject}"]
    if row.attachment_path:
        lines.append(f"    attachment: {row.attachment_path} as {row.attachment_name}")
    if row.last_error:
        lines.append(f"    last error: {row.last_error}")
    return "\n".join(lines)
