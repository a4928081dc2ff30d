"""Transfers of DOIs between registrants (DOI Handbook 9.1.5): the names stay, the administrator changes.

A transfer moves a set of DOIs — a list, every DOI of a title record, or a
whole prefix — from account A to account B. Either party or an operator opens
it; A and B each consent; an operator completes it (or it completes on the
second consent when ``AGENCY_TRANSFERS_AUTO`` is on). Until then nothing
changes; either party or an operator may withdraw it.

Completion is one transaction: every DOI's owner becomes B only where A still
owns it (all or nothing), so B may update them from then on (timestamp
precedence continues from the stored versions), A no longer may, and HS_ADMIN
follows (``handles.store.admin_prefix``); both parties are mailed through the
outbox and every step is audited.

The title records involved move with the DOIs: a title transfer's own title
record, and for a list or a prefix every title record of A's that one of the
moved DOIs carries (by ISSN/ISBN, in the metadata index or the citation keys)
once A keeps no DOI of that title. A title A still has DOIs of stays A's (a
title has one owner) and the completion's audit event names it; B's updates
of the DOIs it received under that title are accepted with a Warning
(``admin.titles.TitleGuard``). Each title that moves has its own audit event. While a transfer is open its DOIs are held
by a unique index (``transfer_items.open_key``): two open transfers never share one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agency.accounts import Registrant
from agency.admin.accounts import audited_change
from agency.admin.audit import Actor
from agency.admin.titles import identifiers_of_title
from agency.handles.doi_syntax import doi_key
from agency.models import (Account, CitationKey, Handle, MetadataIdentifier, Prefix, TitleIdentifier, TitleRecord,
                           Transfer, TransferItem)
from agency.models.transfers import COMPLETED, OPEN, WITHDRAWN
from agency.models.types import utcnow
from agency.notify.outbox import enqueue_mail

MAX_LISTED_DOIS = 10_000  # DOIs named one by one in a transfer request
MAX_TRANSFER_DOIS = 1_000_000  # DOIs one transfer moves (a title's, a prefix's): split larger moves
_IN_CHUNK = 5000  # keys per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


class TransferError(ValueError):
    """A transfer request that cannot be honoured; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TransferView:
    id: int
    status: str
    from_login: str
    to_login: str
    scope: str
    scope_value: str | None
    dois: int
    opened_by: str
    opened_at: datetime
    from_consent_at: datetime | None
    to_consent_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None

    def as_json(self) -> dict:
        when = lambda moment: moment.isoformat() if moment else None  # noqa: E731
        return {"transfer_id": self.id, "status": self.status, "from": self.from_login, "to": self.to_login,
                "scope": self.scope, "scope_value": self.scope_value, "dois": self.dois, "opened_by": self.opened_by,
                "opened_at": when(self.opened_at), "consents": {"from": when(self.from_consent_at),
                                                                "to": when(self.to_consent_at)},
                "closed_at": when(self.closed_at), "closed_by": self.closed_by}

    def line(self) -> str:
        consents = [who for who, at in (("from", self.from_consent_at), ("to", self.to_consent_at)) if at]
        return (f"transfer {self.id} {self.status}: {self.dois} DOI(s) ({self.scope}"
                f"{' ' + self.scope_value if self.scope_value else ''}) {self.from_login} -> {self.to_login}; "
                f"consents: {', '.join(consents) or 'none yet'}")


def _account(session: Session, login: str, role: str) -> Account:
    account = session.scalar(select(Account).where(Account.login == login))
    if account is None:
        raise TransferError(f"no account {login!r} ({role})", 404)
    return account


def _chunks(keys: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(keys), _IN_CHUNK):
        yield keys[start:start + _IN_CHUNK]


def _keys_of_dois(session: Session, source: Account, dois: list) -> list[str]:
    if not isinstance(dois, list) or not all(isinstance(d, str) for d in dois):
        raise TransferError('"dois" must be a list of DOI names', 400)
    if len(dois) > MAX_LISTED_DOIS:
        raise TransferError(f"at most {MAX_LISTED_DOIS} DOIs may be listed in one transfer; "
                            "move a whole title or prefix, or open several transfers", 413)
    keys = sorted({doi_key(d.strip()) for d in dois if d.strip()})
    owned: dict[str, int] = {}
    for chunk in _chunks(keys):
        owned.update(session.execute(select(Handle.key, Handle.account_id).where(Handle.key.in_(chunk))).all())
    for doi in dois:
        key = doi_key(doi.strip())
        if key not in owned:
            raise TransferError(f"DOI {doi} is not registered here", 404)
        if owned[key] != source.id:
            raise TransferError(f"DOI {doi} is not owned by {source.login}: only its owner's DOIs can be "
                                "transferred", 403)
    return keys


def _title_record(session: Session, source: Account, value: str) -> TitleRecord:
    owner = session.execute(select(TitleRecord).join(TitleIdentifier, TitleIdentifier.title_id == TitleRecord.id)
                            .where(TitleIdentifier.value == identifiers_of_title(value))).scalar_one_or_none()
    if owner is None:
        raise TransferError(f"no title record has the ISSN/ISBN {value!r}", 404)
    if owner.account_id != source.id:
        raise TransferError(f"title {owner.title!r} ({value}) is not owned by {source.login}", 403)
    return owner


def _keys_of_title(session: Session, source: Account, title: TitleRecord) -> list[str]:
    """The owner's DOIs that carry one of the title's identifiers (in the metadata database, or as the
    ISSN of a registered article's citation)."""
    values = list(session.scalars(select(TitleIdentifier.value).where(TitleIdentifier.title_id == title.id)))
    keys = set(session.scalars(select(MetadataIdentifier.doi_key).where(MetadataIdentifier.value.in_(values))))
    for value in values:
        keys.update(session.scalars(select(CitationKey.doi_key).where(CitationKey.key.startswith(value + "|"))))
    owned = set()
    for chunk in _chunks(sorted(keys)):
        owned.update(session.scalars(select(Handle.key).where(Handle.key.in_(chunk), Handle.account_id == source.id)))
    return sorted(owned)


def open_transfer(session: Session, actor: Actor, to_login: str, *, from_login: str,
                  dois: list | None = None, title: str | None = None, prefix: str | None = None
                  ) -> TransferView:
    """Open a transfer of a DOI list, a title's DOIs or a prefix from ``from_login`` to ``to_login``.

    Opening is not consenting: each party consents on its own, the opener too."""
    if sum(x is not None for x in (dois, title, prefix)) != 1:
        raise TransferError('give exactly one of "dois", "title" or "prefix"', 400)
    source, target = _account(session, from_login, "from"), _account(session, to_login, "to")
    if source.id == target.id:
        raise TransferError("a transfer needs two different accounts", 400)
    if target.disabled_at is not None:
        raise TransferError(f"account {target.login!r} is disabled: it cannot receive DOIs", 409)
    if source.disabled_at is not None:
        raise TransferError(f"account {source.login!r} is disabled", 409)
    scope_value = None
    if dois is not None:
        scope, keys = "dois", _keys_of_dois(session, source, dois)
    elif title is not None:
        record = _title_record(session, source, str(title))
        scope, scope_value, keys = "title", str(title), _keys_of_title(session, source, record)
    else:
        row = session.get(Prefix, str(prefix).strip().lower())
        if row is None or row.account_id != source.id:
            raise TransferError(f"prefix {prefix} is not owned by {source.login}", 403)
        scope, scope_value = "prefix", row.prefix
        keys = sorted(session.scalars(select(Handle.key).where(Handle.prefix == row.prefix,
                                                               Handle.account_id == source.id)))
        _refuse_overlapping_scope(session, "prefix", row.prefix)
    if not keys and scope != "prefix":
        raise TransferError("nothing to transfer: the set of DOIs is empty", 400)
    if len(keys) > MAX_TRANSFER_DOIS:
        raise TransferError(f"{len(keys)} DOIs: one transfer moves at most {MAX_TRANSFER_DOIS}", 413)
    if scope == "title":
        _refuse_overlapping_scope(session, "title", scope_value)
    _refuse_overlap(session, keys)
    transfer = Transfer(from_account_id=source.id, to_account_id=target.id, scope=scope, scope_value=scope_value,
                        status=OPEN, opened_by=str(actor))
    session.add(transfer)
    session.flush()
    try:
        with session.begin_nested():
            session.execute(TransferItem.__table__.insert(), [
                {"transfer_id": transfer.id, "doi_key": k, "open_key": k} for k in keys])
    except IntegrityError:
        raise TransferError("some of these DOIs are in another open transfer (opened just now): "
                            "complete or withdraw it first", 409) from None
    _audit_both(session, actor, "transfer.open", transfer, after={"from": source.login, "to": target.login,
                                                                  "scope": scope, "scope_value": scope_value,
                                                                  "dois": len(keys)})
    return view(session, transfer.id)


def _refuse_overlapping_scope(session: Session, scope: str, value: str) -> None:
    other = session.scalar(select(Transfer.id).where(Transfer.status == OPEN, Transfer.scope == scope,
                                                     Transfer.scope_value == value))
    if other is not None:
        raise TransferError(f"{scope} {value} is in open transfer {other} already: complete or withdraw it first")


def _refuse_overlap(session: Session, keys: list[str]) -> None:
    for chunk in _chunks(keys):
        row = session.execute(select(TransferItem.transfer_id, TransferItem.doi_key)
                              .where(TransferItem.open_key.in_(chunk)).limit(1)).first()
        if row is not None:
            raise TransferError(f"DOI {row.doi_key} is in open transfer {row.transfer_id} already: complete or "
                                "withdraw that one first")


def _audit_both(session: Session, actor: Actor, action: str, transfer: Transfer, *, after: dict | None = None,
                reason: str | None = None) -> None:
    """One event per party, so each sees it at GET /v1/audit."""
    for account_id in (transfer.from_account_id, transfer.to_account_id):
        audited_change(session, actor, action, f"transfer:{transfer.id}", account_id=account_id,
                       before=None, after=after, reason=reason)


def _locked(session: Session, transfer_id: int) -> Transfer:
    transfer = session.scalar(select(Transfer).where(Transfer.id == transfer_id).with_for_update())
    if transfer is None:
        raise TransferError(f"no transfer {transfer_id}", 404)
    return transfer


def party_of(session: Session, transfer: Transfer, login: str) -> str | None:
    """"from", "to" or None: which side of the transfer an account is."""
    account_id = session.scalar(select(Account.id).where(Account.login == login))
    if account_id == transfer.from_account_id:
        return "from"
    if account_id == transfer.to_account_id:
        return "to"
    return None


def consent(session: Session, actor: Actor, transfer_id: int, party: str, *,
            auto_complete: bool = False) -> TransferView:
    """``party``'s consent: given by that account itself, or relayed by an operator (the actor says which)."""
    transfer = _locked(session, transfer_id)
    side = party_of(session, transfer, party)
    if side is None:
        raise TransferError(f"{party} is not a party of transfer {transfer_id}: only the two parties consent", 403)
    if transfer.status != OPEN:
        raise TransferError(f"transfer {transfer_id} is {transfer.status}: nothing to consent to")
    column = "from_consent_at" if side == "from" else "to_consent_at"
    if getattr(transfer, column) is not None:
        raise TransferError(f"{party} has consented to transfer {transfer_id} already")
    setattr(transfer, column, utcnow())
    _audit_both(session, actor, "transfer.consent", transfer, after={"side": side, "party": party})
    if auto_complete and transfer.from_consent_at and transfer.to_consent_at:
        return complete(session, Actor("system", "system"), transfer_id, reason="both parties consented "
                                                                                "(AGENCY_TRANSFERS_AUTO)")
    return view(session, transfer_id)


def complete(session: Session, actor: Actor, transfer_id: int, reason: str | None = None) -> TransferView:
    """Move the DOIs (all or nothing), the title record or prefix, mail both parties, audit it."""
    transfer = _locked(session, transfer_id)
    if transfer.status != OPEN:
        raise TransferError(f"transfer {transfer_id} is {transfer.status}: it cannot be completed")
    if not (transfer.from_consent_at and transfer.to_consent_at):
        missing = [side for side, at in (("from", transfer.from_consent_at), ("to", transfer.to_consent_at)) if not at]
        raise TransferError(f"transfer {transfer_id} waits for the consent of: {', '.join(missing)}")
    source, target = session.get(Account, transfer.from_account_id), session.get(Account, transfer.to_account_id)
    if target.disabled_at is not None:
        raise TransferError(f"account {target.login!r} is disabled: it cannot receive DOIs")
    keys = list(session.scalars(select(TransferItem.doi_key).where(TransferItem.transfer_id == transfer.id)
                                .order_by(TransferItem.doi_key)))  # one lock order with deposits: no deadlock
    moved = 0
    for chunk in _chunks(keys):
        moved += session.execute(update(Handle).where(Handle.key.in_(chunk), Handle.account_id == source.id)
                                 .values(account_id=target.id).execution_options(synchronize_session=False)).rowcount
    if moved != len(keys):
        raise TransferError(f"{len(keys) - moved} of the transfer's DOIs are no longer owned by {source.login}: "
                            "nothing was moved; withdraw this transfer and open another")
    if transfer.scope == "prefix":
        later = _move_prefix(session, transfer.scope_value, source, target)
        moved += len(later)
        keys = sorted(set(keys) | set(later))
    named = _title_record(session, source, transfer.scope_value).id if transfer.scope == "title" else None
    titles_moved, titles_kept = _move_titles(session, actor, transfer, source, target, keys, named)
    session.execute(update(TransferItem).where(TransferItem.transfer_id == transfer.id).values(open_key=None))
    transfer.status, transfer.closed_at, transfer.closed_by = COMPLETED, utcnow(), str(actor)
    after = {"from": source.login, "to": target.login, "dois": moved, "titles_moved": titles_moved}
    if titles_kept:
        after["titles_kept"] = titles_kept
    _audit_both(session, actor, "transfer.complete", transfer, reason=reason, after=after)
    done = view(session, transfer_id)
    _mail_parties(session, done, [source, target], titles_moved, titles_kept)
    return done


def _move_prefix(session: Session, prefix: str, source: Account, target: Account) -> list[str]:
    """The prefix and DOIs under it deposited since the transfer opened; returns those DOIs' keys."""
    later = list(session.scalars(update(Handle).where(Handle.prefix == prefix, Handle.account_id == source.id)
                                 .values(account_id=target.id).returning(Handle.key)
                                 .execution_options(synchronize_session=False)))
    session.execute(update(Prefix).where(Prefix.prefix == prefix, Prefix.account_id == source.id)
                    .values(account_id=target.id))
    return later


def _identifiers_of_dois(session: Session, keys: list[str]) -> set[str]:
    """The ISSNs/ISBNs the DOIs carry: in the metadata index, or (journal articles not loaded yet) as
    the ISSN of their citation key."""
    values: set[str] = set()
    for chunk in _chunks(keys):
        values.update(session.scalars(select(MetadataIdentifier.value).where(MetadataIdentifier.doi_key.in_(chunk))))
        values.update(key.split("|", 1)[0] for key in session.scalars(
            select(CitationKey.key).where(CitationKey.doi_key.in_(chunk))))
    return values


def _dois_left_under_title(session: Session, source: Account, title_id: int) -> int:
    """How many DOIs ``source`` still owns that carry one of the title's identifiers (0 or more; the
    database counts, whatever the size of the journal)."""
    values = list(session.scalars(select(TitleIdentifier.value).where(TitleIdentifier.title_id == title_id)))
    if not values:
        return 0
    indexed = select(MetadataIdentifier.doi_key).join(Handle, Handle.key == MetadataIdentifier.doi_key).where(
        MetadataIdentifier.value.in_(values), Handle.account_id == source.id)
    cited = select(CitationKey.doi_key).join(Handle, Handle.key == CitationKey.doi_key).where(
        or_(*(CitationKey.key.startswith(value + "|") for value in values)), Handle.account_id == source.id)
    return session.scalar(select(func.count()).select_from(indexed.union(cited).subquery())) or 0


def _move_titles(session: Session, actor: Actor, transfer: Transfer, source: Account, target: Account,
                 keys: list[str], named: int | None) -> tuple[list[dict], list[dict]]:
    """Move the title records involved in the transfer from A to B (see the module's docstring); returns
    the titles moved and those kept by A (with the count of DOIs A still has under them)."""
    values = _identifiers_of_dois(session, keys)
    candidates: dict[int, TitleRecord] = {}
    for chunk in _chunks(sorted(values)):
        for record in session.scalars(select(TitleRecord).join(TitleIdentifier, TitleIdentifier.title_id ==
                                                               TitleRecord.id)
                                      .where(TitleIdentifier.value.in_(chunk), TitleRecord.account_id == source.id)):
            candidates[record.id] = record
    if named is not None and named not in candidates:
        candidates[named] = session.get(TitleRecord, named)
    moved, kept = [], []
    for title_id in sorted(candidates):
        record = candidates[title_id]
        identifiers = sorted(session.scalars(select(TitleIdentifier.value)
                                             .where(TitleIdentifier.title_id == title_id)))
        shown = {"title_id": title_id, "title": record.title, "identifiers": identifiers}
        left = 0 if title_id == named else _dois_left_under_title(session, source, title_id)
        if left:
            kept.append({**shown, "dois_left": left})
            continue
        session.execute(update(TitleRecord).where(TitleRecord.id == title_id)
                        .values(account_id=target.id, updated_at=utcnow()))
        for account_id in (source.id, target.id):
            audited_change(session, actor, "title.transfer", f"title:{title_id}", account_id=account_id,
                           before={"owner": source.login}, after={**shown, "owner": target.login,
                                                                  "transfer_id": transfer.id}, reason=None)
        moved.append(shown)
    return moved, kept


def withdraw(session: Session, actor: Actor, transfer_id: int, reason: str | None = None) -> TransferView:
    """Either party (an account actor) or an operator calls the transfer off; nothing moves."""
    transfer = _locked(session, transfer_id)
    if actor.kind == "account" and party_of(session, transfer, actor.name) is None:
        raise TransferError(f"only the parties of transfer {transfer_id} or an operator may withdraw it", 403)
    if transfer.status != OPEN:
        raise TransferError(f"transfer {transfer_id} is {transfer.status} already")
    session.execute(update(TransferItem).where(TransferItem.transfer_id == transfer.id).values(open_key=None))
    transfer.status, transfer.closed_at, transfer.closed_by = WITHDRAWN, utcnow(), str(actor)
    _audit_both(session, actor, "transfer.withdraw", transfer, reason=reason)
    return view(session, transfer_id)


def view(session: Session, transfer_id: int) -> TransferView:
    transfer = session.get(Transfer, transfer_id)
    if transfer is None:
        raise TransferError(f"no transfer {transfer_id}", 404)
    session.refresh(transfer)
    logins = dict(session.execute(select(Account.id, Account.login).where(
        Account.id.in_((transfer.from_account_id, transfer.to_account_id)))).all())
    count = session.scalar(select(func.count()).select_from(TransferItem).where(
        TransferItem.transfer_id == transfer.id)) or 0
    return TransferView(transfer.id, transfer.status, logins[transfer.from_account_id],
                        logins[transfer.to_account_id], transfer.scope, transfer.scope_value, count,
                        transfer.opened_by, transfer.opened_at, transfer.from_consent_at, transfer.to_consent_at,
                        transfer.closed_at, transfer.closed_by)


def list_transfers(session: Session, registrant: Registrant | None = None, status: str | None = None,
                   limit: int = 1000) -> list[TransferView]:
    query = select(Transfer.id).order_by(Transfer.id.desc()).limit(limit)
    if registrant is not None:
        query = query.where((Transfer.from_account_id == registrant.id) | (Transfer.to_account_id == registrant.id))
    if status:
        query = query.where(Transfer.status == status)
    return [view(session, tid) for tid in session.scalars(query)]


def _title_line(title: dict) -> str:
    return f"{title['title']} ({', '.join(title['identifiers'])})"


def _mail_parties(session: Session, done: TransferView, accounts: list[Account], titles_moved: list[dict],
                  titles_kept: list[dict]) -> None:
    text = (f"Transfer {done.id} is complete: {done.dois} DOI(s) ({done.scope}"
            f"{' ' + done.scope_value if done.scope_value else ''}) moved from {done.from_login} to {done.to_login}.\n"
            f"From now on only {done.to_login} may update them; the DOI names do not change.\n")
    for title in titles_moved:
        text += f"Title record moved to {done.to_login}: {_title_line(title)}.\n"
    for title in titles_kept:
        text += (f"Title record kept by {done.from_login}, who still has {title['dois_left']} DOI(s) of it: "
                 f"{_title_line(title)}.\n")
    for account in accounts:
        enqueue_mail(session, key=f"transfer-{done.id}-{account.login}", recipients=[account.email],
                     subject=f"DOI transfer {done.id} completed: {done.from_login} -> {done.to_login}", text=text)
