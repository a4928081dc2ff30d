"""Title records and the ownership checks a deposit's records pass (as Crossref does, with better messages).

The first deposit of a journal, book, series or proceedings creates its title
record (title, ISSNs / ISBNs, owning account). A later deposit by another
account using one of those identifiers fails those records, saying who owns the
title and how to ask for a transfer; the owner depositing a different title text
gets a Warning. A DOI that a completed transfer moved to the depositor while its
title stayed with the other account (a partial transfer) is the exception: its
update is accepted with a Warning naming the title's owner. Ownership is decided
by the database: each identifier is a primary key, inserted ``ON CONFLICT DO
NOTHING`` and read back, so two accounts racing on a new ISSN end with one owner.

Registered journal articles leave their ``ISSN|volume|issue|first page|year``
in ``citation_keys``; another DOI arriving with the same key is "Added with
conflict" (Warning), naming the DOI it conflicts with as Crossref's
``dois_in_conflict`` does.

Both run inside the deposit runner's chunk transaction (``deposit.runner.RecordChecks``):
one look-up per chunk for the titles, one for the citations.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from agency.accounts import Registrant
from agency.admin.audit import Actor, record_event
from agency.db import bulk_insert, conflict_insert
from agency.deposit.extraction import DepositRecord, TitleContext
from agency.deposit.logs import conflict_note
from agency.handles.doi_syntax import doi_key
from agency.handles.store import FAILURE, WARNING, KeyList, RecordDiagnostic
from agency.metadata.identifiers import parse_isbn, parse_issn
from agency.models import Account, CitationKey, TitleIdentifier, TitleRecord

TITLE_OUTCOME = "title"
MAX_TITLE_CHARS = 2000
MAX_CONFLICTS_NAMED = 10


@dataclass(frozen=True)
class Owner:
    title_id: int
    title: str
    account_id: int
    login: str


@dataclass(frozen=True)
class Verdict:
    status: str  # FAILURE or WARNING
    message: str
    # For a Failure because another account owns the title: the Warning a DOI transferred to the
    # depositor gets instead (its update is accepted; the title record stays its owner's).
    transferred: str | None = None


@lru_cache(maxsize=4096)
def identifiers_of(context: TitleContext) -> tuple[tuple[str, str], ...]:
    """(kind, canonical value) of a context's identifiers; ones that cannot be parsed are not titles' keys.
    Cached: every record of a journal shares one context."""
    found = [("issn", parsed.canonical) for raw in context.issns if (parsed := parse_issn(raw))]
    found += [("isbn", parsed.canonical) for raw in context.isbns if (parsed := parse_isbn(raw))]
    return tuple(dict.fromkeys(found))


def identifiers_of_title(value: str) -> str:
    """The canonical form of an ISSN or ISBN naming a title (as given when it is neither)."""
    parsed = parse_issn(value) or parse_isbn(value)
    return parsed.canonical if parsed else value.strip()


def _same_title(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def owners(session: Session, identifiers: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Owner]:
    values = sorted({value for _kind, value in identifiers})
    if not values:
        return {}
    rows = session.execute(
        select(TitleIdentifier.kind, TitleIdentifier.value, TitleRecord.id, TitleRecord.title,
               TitleRecord.account_id, Account.login)
        .join(TitleRecord, TitleRecord.id == TitleIdentifier.title_id)
        .join(Account, Account.id == TitleRecord.account_id)
        .where(TitleIdentifier.value.in_(values)))
    return {(kind, value): Owner(tid, title, aid, login) for kind, value, tid, title, aid, login in rows}


def refusal(kind: str, value: str, owner: Owner, login: str) -> str:
    label = kind.upper()
    return (f'{label} "{value}" has already been assigned, title/{kind}: {owner.title}/{value} is owned by '
            f"publisher: {owner.login}. To deposit under this title, the owner ({owner.login}) or the RA "
            f'opens a transfer to you (POST /v1/transfers {{"to": "{login}", "title": "{value}"}}), '
            "and both of you consent.")


class TitleGuard:
    """The ``RecordChecks`` of deposits: title ownership before registering, citation conflicts after."""

    def before_registration(self, session: Session, registrant: Registrant,
                            records: Sequence[DepositRecord]) -> dict[int, RecordDiagnostic]:
        # Resource-only records (doi_resources) name no title: they change no title's ownership.
        contexts = {id(c): c for r in records for c in getattr(r, "titles", ())}
        if not contexts:
            return {}
        verdicts = self._decide(session, registrant, list(contexts.values()))
        failing = [r for r in records if any(verdicts.get(id(c)) is not None and verdicts[id(c)].status == FAILURE
                                             for c in getattr(r, "titles", ()))]
        received = transferred_to(session, registrant.id, [doi_key(r.doi) for r in failing]) if failing else set()
        out: dict[int, RecordDiagnostic] = {}
        for record in records:
            found = [verdicts[id(c)] for c in getattr(record, "titles", ()) if id(c) in verdicts]
            if doi_key(record.doi) in received and all(v.transferred for v in found if v.status == FAILURE):
                found = [Verdict(WARNING, v.transferred) if v.status == FAILURE else v for v in found]
            failure = next((v for v in found if v.status == FAILURE), None)
            chosen = failure or (found[0] if found else None)
            if chosen is not None:
                out[record.seq] = RecordDiagnostic(record.seq, record.doi, chosen.status, chosen.message,
                                                   TITLE_OUTCOME if failure else "")
        return out

    def _decide(self, session: Session, registrant: Registrant,
                contexts: list[TitleContext]) -> dict[int, Verdict]:
        wanted = {c_id: identifiers_of(c) for c_id, c in ((id(c), c) for c in contexts)}
        known = owners(session, (i for ids in wanted.values() for i in ids))
        verdicts: dict[int, Verdict] = {}
        for context in contexts:
            identifiers = wanted[id(context)]
            if not identifiers:
                continue
            verdict = self._verdict(registrant, context, identifiers, known)
            if verdict is None and any(i not in known for i in identifiers):
                known.update(self._claim(session, registrant, context, identifiers, known))
                verdict = self._verdict(registrant, context, identifiers, known)
            if verdict is not None:
                verdicts[id(context)] = verdict
        return verdicts

    @staticmethod
    def _verdict(registrant: Registrant, context: TitleContext, identifiers: list[tuple[str, str]],
                 known: dict[tuple[str, str], Owner]) -> Verdict | None:
        for kind, value in identifiers:
            owner = known.get((kind, value))
            if owner is not None and owner.account_id != registrant.id:
                return Verdict(FAILURE, refusal(kind, value, owner, registrant.login), transferred=(
                    f'{kind.upper()} "{value}" belongs to the title record "{owner.title}" of {owner.login}; '
                    "this DOI was transferred to you, so its update is accepted and the title record stays "
                    f"{owner.login}'s (a transfer of the whole title moves it)"))
        for kind, value in identifiers:
            owner = known.get((kind, value))
            if owner is not None and context.title and not _same_title(owner.title, context.title):
                return Verdict(WARNING, f'Title "{context.title}" differs from the title record "{owner.title}" '
                                        f"({kind.upper()} {value}) this account owns; the title record keeps "
                                        "its title (ask the RA to change it)")
        return None

    @staticmethod
    def _claim(session: Session, registrant: Registrant, context: TitleContext,
               identifiers: list[tuple[str, str]], known: dict[tuple[str, str], Owner]
               ) -> dict[tuple[str, str], Owner]:
        """Insert the identifiers nobody owned, under this account's title record (a new one unless one of
        the context's identifiers already has one); the database keeps the first writer's row."""
        mine = next((known[i] for i in identifiers if i in known), None)
        created = None
        if mine is None:
            created = TitleRecord(kind=context.kind, title=(context.title or "(untitled)")[:MAX_TITLE_CHARS],
                                  account_id=registrant.id)
            session.add(created)
            session.flush()
            mine = Owner(created.id, created.title, registrant.id, registrant.login)
        missing = [i for i in identifiers if i not in known]
        insert = conflict_insert(session.connection().dialect.name)
        inserted = {tuple(row) for row in session.execute(
            insert(TitleIdentifier).values([{"kind": k, "value": v, "title_id": mine.title_id} for k, v in missing])
            .on_conflict_do_nothing(index_elements=["kind", "value"])
            .returning(TitleIdentifier.kind, TitleIdentifier.value))}
        claimed = {i: mine for i in missing if i in inserted}
        if len(inserted) < len(missing):  # another deposit got there first: its owner stands
            claimed.update(owners(session, [i for i in missing if i not in inserted]))
            if created is not None and not inserted:
                session.execute(delete(TitleRecord).where(TitleRecord.id == created.id))
        if inserted:
            record_event(session, Actor.account(registrant.login),
                         "title.create" if created is not None else "title.add-identifier", f"title:{mine.title_id}",
                         account_id=registrant.id, after={"title": mine.title,
                                                          "identifiers": sorted(v for _k, v in inserted)})
        return claimed

    def after_registration(self, session: Session, registrant: Registrant,
                           records: Sequence[DepositRecord]) -> dict[int, str]:
        """Remember the registered articles' citation keys; name the other DOIs already carrying the same."""
        keyed = {}
        issns: dict[int, str | None] = {}  # per title context: one journal's records share it
        for record in records:
            key = citation_key(record, issns)
            if key is not None:
                keyed[doi_key(record.doi)] = (key, record)
        if not keyed:
            return {}
        others: dict[str, list[str]] = {}
        wanted = KeyList.of(session, sorted({k for k, _r in keyed.values()}))
        for key, other_key, doi in session.execute(
                select(CitationKey.key, CitationKey.doi_key, CitationKey.doi).select_from(wanted.table.source)
                .join(CitationKey, CitationKey.key == wanted.key), wanted.parameters):
            if other_key not in keyed:
                others.setdefault(key, []).append(doi)
        bulk_insert(session.connection(), CitationKey.__table__,
                    [{"doi_key": dk, "key": k, "doi": r.doi} for dk, (k, r) in sorted(keyed.items())],
                    on_conflict=_replace_citation)
        notes = {}
        earlier: dict[str, list[str]] = {}  # earlier records of this chunk, by key: the same answer after a resume
        for dk, (k, record) in sorted(keyed.items(), key=lambda item: item[1][1].seq):
            conflicting = sorted(others.get(k, []) + earlier.get(k, []))
            earlier.setdefault(k, []).append(record.doi)
            if conflicting:
                notes[record.seq] = ("with conflict: another DOI has the same ISSN, volume, issue, first page and "
                                     f"year {conflict_note(conflicting, MAX_CONFLICTS_NAMED)}")
        return notes


def transferred_to(session: Session, account_id: int, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` a completed transfer moved to the account (one primary-key probe per transfer)."""
    from agency.models import Transfer, TransferItem
    from agency.models.transfers import COMPLETED

    if not keys:
        return set()
    return set(session.scalars(
        select(TransferItem.doi_key).join(Transfer, Transfer.id == TransferItem.transfer_id)
        .where(Transfer.to_account_id == account_id, Transfer.status == COMPLETED,
               TransferItem.doi_key.in_(sorted(set(keys))))))


def _replace_citation(statement):
    return statement.on_conflict_do_update(index_elements=[CitationKey.__table__.c.doi_key],
                                           set_={"key": statement.excluded.key, "doi": statement.excluded.doi})


def citation_key(record: DepositRecord, issns: dict[int, str | None] | None = None) -> str | None:
    """``issn|volume|issue|first page|year`` of a journal article with all five, else None.
    ``issns`` caches each title context's first ISSN across the records of a chunk."""
    citation = getattr(record, "citation", None)  # resource-only records carry none
    if citation is None or not record.titles:
        return None
    volume, issue, first_page, year = citation.volume, citation.issue, citation.first_page, citation.year
    if not (volume and issue and first_page and year):
        return None
    context = record.titles[0]
    if issns is not None and id(context) in issns:
        issn = issns[id(context)]
    else:
        issn = next((value for kind, value in identifiers_of(context) if kind == "issn"), None)
        if issns is not None:
            issns[id(context)] = issn
    if issn is None:
        return None
    # Extraction has collapsed the spaces already.
    return f"{issn}|{volume.casefold()}|{issue.casefold()}|{first_page.casefold()}|{year.casefold()}"[:700]


def titles_of(session: Session, account_id: int | None = None) -> list[tuple[TitleRecord, list[str], str]]:
    """Title records with their identifiers and owner's login, for listings and exports."""
    query = select(TitleRecord, Account.login).join(Account, Account.id == TitleRecord.account_id).order_by(
        TitleRecord.id)
    if account_id is not None:
        query = query.where(TitleRecord.account_id == account_id)
    out = []
    for record, login in session.execute(query):
        identifiers = list(session.scalars(select(TitleIdentifier.value).where(
            TitleIdentifier.title_id == record.id).order_by(TitleIdentifier.value)))
        out.append((record, identifiers, login))
    return out
