"""Resolution, framework-free: what a pasted DOI names, where it leads, and why it is not found.

Four things live here, each used by both HTTP faces of the resolver (the DOI
proxy style ``/{doi}`` and the Handle.Net REST API):

* recognizing the forms people paste (``doi:``, ``info:doi/``,
  ``https://doi.org/…``, percent-encoded, any case) and refusing hostile paths;
* looking a DOI up in one query, and explaining a miss (prefix only, trailing
  slash, doubled slashes, quotes or punctuation copied along, a prefix this
  agency does not serve);
* building Handle.Net REST JSON from the values of ``agency.handles.store``, and the
  prefix records (``0.NA/<prefix>``) of the prefixes served here;
* CSL JSON and BibTeX from the metadata index, for content negotiation.
"""

from __future__ import annotations

import base64
import functools
import re
import threading
import unicodedata
import zlib
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Iterable, Protocol, Sequence
from urllib.parse import quote, unquote

from sqlalchemy import Engine, and_, bindparam, exists, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased

from agency.db import close_with_engine
from agency.handles.doi_syntax import MAX_DOI_LENGTH, doi_key, doi_prefix
from agency.handles.store import (ADMIN_HANDLE_INDEX, ADMIN_INDEX, ALIAS_INDEX, MAX_ALIAS_HOPS, URL_INDEX,
                                  HandleValueView, admin_value_data, epoch_seconds, handle_values)
from agency.handles.values import AdminRecord, ValueFormatError, decode_vlist, encode_vlist
from agency.models import Account, Handle, HandleValue, Prefix


class Executor(Protocol):
    """A Connection or a Session: anything that executes a statement."""

    def execute(self, statement, parameters=None): ...


# ---------------------------------------------------------------------------
# What a request path names

# Room for "https://doi.org/" and friends in front of the longest DOI.
MAX_PATH_CHARS = MAX_DOI_LENGTH + 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PASTED_FORM = re.compile(
    r"""^(?:
        (?:https?:/{1,2})?(?:www\.|dx\.)?(?:doi\.org|hdl\.handle\.net)/(?:doi:|hdl:)?  # a resolver link
      | info:doi/                                                                    # RFC 4452 URI
      | urn:doi:
      | doi:\s*                                                                      # "doi:10…", "DOI: 10…"
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


class BadPath(ValueError):
    """A request path that cannot name a DOI at all: answered 400, never looked up."""


def path_problem(path: str) -> str | None:
    """Why a decoded request path is refused outright (None when it may be looked up)."""
    if len(path) > MAX_PATH_CHARS:
        return (f"The address is {len(path)} characters long; a DOI has at most {MAX_DOI_LENGTH} "
                "characters.")
    if "\ufffd" in path:
        return "The address is not valid UTF-8: a DOI is Unicode text, percent-encoded as UTF-8."
    if _CONTROL.search(path.strip(" \t\r\n")):  # a pasted line break around the DOI is only a slip
        return "The address contains a control character, which no DOI contains."
    return None


def wsgi_path_problem(path_info: str) -> str | None:
    """Invalid UTF-8 as a WSGI server hands it over (PATH_INFO is bytes decoded as latin-1)."""
    try:
        path_info.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:
        return None  # already text (test clients): path_problem() sees U+FFFD instead
    except UnicodeDecodeError:
        return "The address is not valid UTF-8: a DOI is Unicode text, percent-encoded as UTF-8."
    return None


def requested_name(path: str) -> str:
    """The DOI a decoded path names, with pasted wrappers removed (raises BadPath)."""
    problem = path_problem(path)
    if problem:
        raise BadPath(problem)
    name = path.lstrip("/")
    match = _PASTED_FORM.match(name)
    if match:
        name = name[match.end():]
    return name


def spellings(name: str) -> list[str]:
    """The names to try for a request: as given, then once more percent-decoded (double-encoded links)."""
    found = [name]
    if _PERCENT_ESCAPE.search(name):
        try:
            decoded = unquote(name, errors="strict")
        except UnicodeDecodeError:
            return found
        if decoded != name and not path_problem(decoded):
            found.append(decoded)
    return found


# ---------------------------------------------------------------------------
# Looking a DOI up

@dataclass(frozen=True)
class Registered:
    """A DOI registered here: its stored spelling and URL (None while pending publication), and what
    caches need: the URL value's TTL, the record's revision and when it last changed."""

    doi: str
    url: str | None
    ttl: int | None = None
    revision: int = 1
    updated_at: datetime | None = None

    @property
    def is_pending(self) -> bool:
        return self.url is None

    @property
    def etag(self) -> str:
        """Changes whenever the record or its URL does (a URL value rewritten in place too)."""
        return f'"{self.revision}-{zlib.crc32((self.url or "").encode()):08x}"'

    @classmethod
    def of_row(cls, row) -> "Registered":
        return cls(doi=row[0], url=_url_text(row[1]), ttl=row[2], revision=row[3] or 1, updated_at=_moment(row[4]))


def _moment(value) -> datetime | None:
    """A timestamp as the raw driver hands it over (SQLite: text; PostgreSQL: datetime), in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        return _parsed_moment(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@functools.lru_cache(maxsize=4096)
def _parsed_moment(text: str) -> datetime | None:
    """Parsed once per distinct text: DOIs registered together share their timestamp."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _url_text(data) -> str | None:
    """A URL value's data (bytes, as the protocol carries it) as text."""
    return None if data is None else bytes(data).decode("utf-8", "replace")


_ALIAS_VALUE = aliased(HandleValue)
# (name, URL, TTL, revision, updated, HS_ALIAS target): an alias resolves to its target's URL (followed at most
# MAX_ALIAS_HOPS times).
_REGISTERED = select(Handle.name, HandleValue.data, HandleValue.ttl, Handle.revision, Handle.updated_at,
                     _ALIAS_VALUE.data).outerjoin(
    HandleValue, and_(HandleValue.handle_key == Handle.key, HandleValue.idx == URL_INDEX)).outerjoin(
    _ALIAS_VALUE, and_(_ALIAS_VALUE.handle_key == Handle.key, _ALIAS_VALUE.idx == ALIAS_INDEX)).where(
    # A prefix that moved to another agency is not resolved here any more (one primary-key probe).
    ~exists().where(Prefix.prefix == Handle.prefix, Prefix.served_elsewhere.is_not(None)))
# The common case, one spelling, is a plain equality: cached once, no IN-list expansion per request.
_LOOK_UP_ONE = _REGISTERED.where(Handle.key == bindparam("key"))
_LOOK_UP_ANY = _REGISTERED.where(Handle.key.in_(bindparam("keys", expanding=True)))


def look_up(db: Executor, names: Sequence[str]) -> Registered | None:
    """The first of ``names`` registered here, in one query."""
    keys = [doi_key(n) for n in names if n]
    if not keys:
        return None
    fetch = lambda key: db.execute(_LOOK_UP_ONE, {"key": key}).first()  # noqa: E731
    if len(keys) == 1:
        row = fetch(keys[0])
        return _registered(row, fetch) if row else None
    rows = {doi_key(row[0]): row for row in db.execute(_LOOK_UP_ANY, {"keys": keys})}
    for key in keys:
        if key in rows:
            return _registered(rows[key], fetch)
    return None


def _registered(row, fetch) -> Registered:
    """The DOI of ``row`` with the URL it resolves to: its own, or, for an alias (HS_ALIAS), the URL at the
    end of its chain of aliases; a broken, looping or overlong chain leaves the alias's own URL."""
    found = Registered.of_row(row)
    url, target = found.url, _url_text(row[5])
    for _hop in range(MAX_ALIAS_HOPS + 1):
        if target is None:
            return found if url == found.url else replace(found, url=url)
        hop = fetch(doi_key(target))
        if hop is None:
            break
        url, target = _url_text(hop[1]), _url_text(hop[5])
    return found


class FastLookUp:
    """The resolution query compiled once for an engine, run on a connection each thread keeps.

    Resolution must stay close to the speed of a route that reads nothing (the
    goal is 70% of it). Two costs stood in the way: SQLAlchemy's
    Connection.execute (about 50 µs a call, as much as the rest of the
    resolver) and, on PostgreSQL, the round trips of a pool checkout (pre-ping)
    and check-in (rollback) around a one-row SELECT. So the statement is built
    with select() and compiled by the engine's dialect once, and each thread
    runs it on its own connection in autocommit mode: one round trip, and no
    transaction left open between requests to pin an old snapshot.
    The connection comes from the engine (its connect events, e.g. SQLite
    pragmas, have run) and is detached from the pool, so it takes no pool slot.
    A failed query drops the connection and is tried once more on a new one
    (a restarted database); errors surface as SQLAlchemy's DBAPIError.
    """

    def __init__(self, engine: Engine, statement=None) -> None:
        self.engine = engine
        compiled = (_LOOK_UP_ONE if statement is None else statement).compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.positions = compiled.positiontup  # None for drivers with named parameters
        self.fixed = {name: value for name, value in compiled.params.items() if name != "key"}
        self.dbapi_error = engine.dialect.loaded_dbapi.Error
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list = []  # every connection handed out, so close() can close them all
        close_with_engine(engine, self.close)

    def _parameters(self, key: str):
        values = {**self.fixed, "key": key}
        return [values[name] for name in self.positions] if self.positions else values

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            pooled = self.engine.raw_connection()
            pooled.detach()
            connection = pooled.dbapi_connection
            if self.engine.dialect.name == "sqlite":
                connection.isolation_level = None  # autocommit: no BEGIN, every SELECT sees the latest commit
            else:
                connection.autocommit = True
            self._local.connection = connection
            with self._lock:
                self._open.append(connection)
        return connection

    def _discard(self, connection) -> None:
        self._local.connection = None
        with self._lock:
            if connection in self._open:
                self._open.remove(connection)
        try:
            connection.close()
        except self.dbapi_error:
            pass

    def _row(self, key: str):
        return self._run(key, all_rows=False)

    def rows(self, key: str) -> list:
        """Every row the statement gives for ``key`` (another statement than the DOI look-up, given at init)."""
        return self._run(key, all_rows=True)

    def _run(self, key: str, all_rows: bool):
        parameters = self._parameters(key)
        for attempt in (1, 2):
            connection = self._connection()
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(self.sql, parameters)
                    return cursor.fetchall() if all_rows else cursor.fetchone()
                finally:
                    cursor.close()
            except self.dbapi_error as exc:
                self._discard(connection)
                if attempt == 2:
                    raise DBAPIError.instance(self.sql, parameters, exc, self.dbapi_error) from exc
        return None

    def __call__(self, name: str) -> Registered | None:
        """The registered DOI a requested name means (tried as given, then percent-decoded)."""
        for spelling in spellings(name):
            row = self._row(doi_key(spelling))
            if row is not None:
                return _registered(row, self._row)
        return None

    def close(self) -> None:
        """Close every connection this look-up opened (any thread's)."""
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            try:
                connection.close()
            except self.dbapi_error:
                pass
        self._local = threading.local()


def prefix_served(db: Executor, prefix: str) -> bool:
    """Whether this agency answers for the prefix (it has it, and it has not moved elsewhere)."""
    row = db.execute(select(Prefix.served_elsewhere).where(Prefix.prefix == prefix.lower())).first()
    return row is not None and row[0] is None


def served_elsewhere(db: Executor, prefix: str) -> str | None:
    """The service now holding a prefix that moved away from this agency, else None."""
    return db.execute(select(Prefix.served_elsewhere).where(Prefix.prefix == prefix.lower())).scalar()


# ---------------------------------------------------------------------------
# Why a DOI is not found

EMPTY, NOT_A_DOI, PREFIX_ONLY = "empty", "not_a_doi", "prefix_only"
TRAILING_SLASH, SEVERAL_SLASHES, SURROUNDING = "trailing_slash", "several_slashes", "surrounding_characters"
FOREIGN_PREFIX, UNKNOWN_SUFFIX = "foreign_prefix", "unknown_suffix"

_PREFIX_ONLY = re.compile(r"^10\.[0-9]+(?:\.[0-9]+)*/*$")
_DOI_SHAPE = re.compile(r"^10\.[0-9]+(?:\.[0-9]+)*/.+$", re.DOTALL)
# Characters copied along with a DOI from running text: quotes, brackets, sentence punctuation.
_LEADING_JUNK = "\"'`‘’“”«»‹›<([{"
_TRAILING_JUNK = "\"'`‘’“”«»‹›>)]}.,;:!?"
# Invisible characters that PDFs and word processors put into copied text.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)


@dataclass(frozen=True)
class NotFound:
    """Why a requested DOI is not found here, in words a person can act on."""

    requested: str
    problem: str  # one of the constants above, for API clients
    message: str
    hints: tuple[str, ...] = ()
    suggestion: str | None = None  # a registered DOI that is probably the one meant
    prefix: str | None = None
    elsewhere_url: str | None = None  # where a DOI of a prefix not served here may resolve

    def as_json(self) -> dict:
        body = {"error": self.message, "status": 404, "doi": self.requested, "problem": self.problem,
                "hints": list(self.hints)}
        if self.suggestion:
            body["suggestion"] = self.suggestion
        if self.elsewhere_url:
            body["elsewhere"] = self.elsewhere_url
        return body


def _trimmed(name: str) -> str:
    """The name without surrounding white space, quotes, brackets, punctuation or invisible characters."""
    cleaned = name.translate(_INVISIBLE).strip()
    while True:
        trimmed = cleaned.lstrip(_LEADING_JUNK).rstrip(_TRAILING_JUNK).strip()
        if trimmed == cleaned:
            break
        cleaned = trimmed
    return _give_back_closers(trimmed, name.translate(_INVISIBLE))


_CLOSES = {")": "(", "]": "[", ">": "<", "}": "{"}


def _give_back_closers(trimmed: str, original: str) -> str:
    """Closing brackets that close what the DOI itself opened stay: 10.1000/x(1) ends with ")"."""
    start = original.find(trimmed)
    rest = original[start + len(trimmed):] if start >= 0 else ""
    for char in rest:
        opener = _CLOSES.get(char)
        if opener is None or trimmed.count(opener) <= trimmed.count(char):
            break
        trimmed += char
    return trimmed


def _squeezed(name: str) -> str:
    """The usual repairs together: no white space inside, no trailing or doubled slashes."""
    return re.sub("/{2,}", "/", re.sub(r"\s+", "", name).rstrip("/"))


def diagnose(db: Executor, requested: str) -> NotFound:
    """Explain why ``requested`` (already stripped of pasted wrappers) is not registered here."""
    if not requested.strip():
        return NotFound(requested, EMPTY, "No DOI was given.",
                        ("Put the DOI after the address of this resolver, e.g. /10.5555/abc123.",))
    trimmed = _trimmed(requested)
    if _PREFIX_ONLY.match(trimmed):
        return _prefix_only(db, requested, trimmed)
    hints: list[str] = []
    problem = _copy_problems(requested, trimmed, hints)
    candidate = _squeezed(trimmed)
    if not _DOI_SHAPE.match(candidate):
        return NotFound(requested, problem or NOT_A_DOI, "This is not a DOI.", tuple(hints) + (
            "A DOI looks like 10.5555/abc123: “10.”, digits (maybe with more dots), a slash, then the suffix.",))
    suggestion = None
    if problem:
        found = look_up(db, [candidate, trimmed] if candidate != trimmed else [candidate])
        suggestion = found.doi if found else None
    prefix = doi_prefix(candidate)
    if not prefix_served(db, prefix):
        elsewhere = "https://doi.org/" + quote(candidate, safe="/:;()<>[]@!$&'*+,=")
        moved = served_elsewhere(db, prefix)
        if moved:
            hints.append(f"Its DOIs are resolved by {moved} now. Try {elsewhere}")
            return NotFound(requested, problem or FOREIGN_PREFIX,
                            f"The prefix {prefix} has moved to another Registration Agency: {moved}.",
                            tuple(hints), suggestion, prefix, elsewhere)
        hints.append(f"The prefix {prefix} is not served by this agency: the DOI may be registered with "
                     f"another Registration Agency. Try {elsewhere}")
        return NotFound(requested, problem or FOREIGN_PREFIX,
                        f"The prefix {prefix} does not belong to any registrant of this agency.",
                        tuple(hints), suggestion, prefix, elsewhere)
    if problem is None:
        hints.extend(UNKNOWN_SUFFIX_HINTS)
    message = ("This DOI is not registered here, but a DOI very close to it is." if suggestion
               else "This DOI cannot be found: it is not registered with this agency.")
    return NotFound(requested, problem or UNKNOWN_SUFFIX, message, tuple(hints), suggestion, prefix)


UNKNOWN_SUFFIX_HINTS = (
    "The DOI may be wrong where you found it: search for the item by its title or authors instead.",
    "The DOI may have been copied incorrectly: check that every character before and after the slash "
    "is there, and that nothing was added.",
    "The DOI may not be registered yet: deposits are processed in batches, so a DOI deposited moments "
    "ago becomes resolvable shortly after. Try again later, and tell the publisher if it persists.",
)


def _prefix_only(db: Executor, requested: str, trimmed: str) -> NotFound:
    prefix = trimmed.rstrip("/")
    served = prefix_served(db, prefix)
    hint = (f"Only a prefix ({prefix}) was given. A DOI has two parts, prefix/suffix, e.g. {prefix}/abc123: "
            "the suffix after the slash is missing.")
    if served:
        hint += f" The prefix {prefix} is served by this agency."
    return NotFound(requested, PREFIX_ONLY, f"{prefix} is a DOI prefix, not a complete DOI.", (hint,),
                    prefix=prefix)


def _copy_problems(requested: str, trimmed: str, hints: list[str]) -> str | None:
    """Name the copy-and-paste mistakes visible in ``requested``; the first one is the problem."""
    problems = []
    if trimmed != requested:
        problems.append(SURROUNDING)
        hints.append("White space, quotes, brackets, punctuation or invisible characters were copied along "
                     "with the DOI. A DOI ends with the last character of its suffix: remove the rest.")
    if re.search(r"\s", trimmed):
        problems.append(SURROUNDING)
        hints.append("The DOI contains white space, which no DOI does: it was probably broken across lines "
                     "where you copied it. Remove the spaces.")
    if trimmed.endswith("/"):
        problems.append(TRAILING_SLASH)
        hints.append("The address ends with a slash. DOI suffixes practically never end with “/”: remove it.")
    if "//" in trimmed.rstrip("/"):
        problems.append(SEVERAL_SLASHES)
        hints.append("The address has several slashes in a row. A DOI has one slash between prefix and "
                     "suffix: check for a doubled slash.")
    return problems[0] if problems else None


# ---------------------------------------------------------------------------
# Handle.Net REST API records

SUCCESS, ERROR, HANDLE_NOT_FOUND, INVALID_HANDLE = 1, 2, 100, 102
VALUES_NOT_FOUND, NOT_RESPONSIBLE = 200, 301
RESPONSE_HTTP_STATUS = {SUCCESS: 200, ERROR: 500, HANDLE_NOT_FOUND: 404, INVALID_HANDLE: 400,
                        VALUES_NOT_FOUND: 200, NOT_RESPONSIBLE: 400}
PREFIX_NAMESPACE = "0.NA/"
VLIST_INDEX = ADMIN_HANDLE_INDEX


@dataclass(frozen=True)
class HandleAnswer:
    """A Handle.Net REST response: its JSON body and the HTTP status that API pairs with it."""

    body: dict
    http_status: int


def answer(response_code: int, handle: str | None = None, message: str | None = None,
           values: list[dict] | None = None, http_status: int | None = None) -> HandleAnswer:
    body: dict = {"responseCode": response_code}
    if handle is not None:
        body["handle"] = handle
    if message:
        body["message"] = message
    if values is not None:
        body["values"] = values
    return HandleAnswer(body, http_status or RESPONSE_HTTP_STATUS.get(response_code, 500))


def iso_timestamp(moment: datetime | int) -> str:
    if isinstance(moment, int):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def value_data(value: HandleValueView) -> dict:
    """The ``data`` member as Handle.Net's REST API shows it: admin, vlist, site, string or base64."""
    try:
        if value.type == "HS_ADMIN":
            admin = AdminRecord.decode(value.data)
            return {"format": "admin", "value": {"handle": admin.handle, "index": admin.index,
                                                 "permissions": admin.permission_string}}
        if value.type == "HS_VLIST":
            return {"format": "vlist", "value": [{"handle": r.handle, "index": r.index}
                                                 for r in decode_vlist(value.data)]}
    except ValueFormatError:
        pass  # a malformed structured value is shown as its bytes
    try:
        shown = value.data.decode("utf-8")
    except UnicodeDecodeError:
        return {"format": "base64", "value": base64.b64encode(value.data).decode("ascii")}
    return {"format": "string", "value": shown}


def value_json(value: HandleValueView) -> dict:
    return {"index": value.index, "type": value.type, "data": value_data(value), "ttl": value.ttl,
            "timestamp": iso_timestamp(value.timestamp)}


def public_values(values: Iterable[HandleValueView]) -> list[HandleValueView]:
    """What an anonymous reader may see: values without public read (HS_SECKEY) are left out."""
    return [v for v in values if v.public_read]


def type_matches(value_type: str, wanted: str) -> bool:
    """A REST type query matches that type and its sub-types ("URL" matches "URL.mirror"), in any case."""
    value_type, wanted = value_type.upper(), wanted.upper()
    return value_type == wanted or value_type.startswith(wanted + ".")


def select_values(values: Iterable[HandleValueView], types: Sequence[str] = (),
                  indexes: Sequence[int] = ()) -> list[HandleValueView]:
    """Values matching any requested type or any requested index (all when none is requested)."""
    if not types and not indexes:
        return list(values)
    return [v for v in values if v.index in indexes or any(type_matches(v.type, t) for t in types)]


def parse_indexes(raw: Sequence[str]) -> list[int]:
    """The ``index=`` parameters as integers (raises ValueError naming the bad one)."""
    out = []
    for item in raw:
        try:
            out.append(int(item))
        except ValueError:
            raise ValueError(f"index={item[:40]!r} is not an integer: give value indexes such as index=1") \
                from None
    return out


def prefix_record_values(prefix: str, since: datetime, ttl: int) -> list[HandleValueView]:
    """The values of ``0.NA/<prefix>``: who administers the prefix, and its admin group.

    HS_ADMIN names the group at index 200 of the prefix handle itself, the
    reference every DOI's own HS_ADMIN points at. The group (HS_VLIST) is
    empty: no key administers these records over the Handle protocol; the
    agency changes them only through deposits from the prefix's registrant.
    """
    stamp = epoch_seconds(since)
    return [
        HandleValueView(ADMIN_INDEX, "HS_ADMIN", admin_value_data(prefix), ttl, timestamp=stamp),
        HandleValueView(VLIST_INDEX, "HS_VLIST", encode_vlist([]), ttl, timestamp=stamp),
    ]


def handle_record(db, handle: str, ttl: int, types: Sequence[str] = (),
                  indexes: Sequence[int] = ()) -> HandleAnswer:
    """The Handle.Net REST answer for ``handle`` (a DOI, or a prefix record ``0.NA/<prefix>``)."""
    if handle.upper().startswith(PREFIX_NAMESPACE.upper()):
        return _prefix_record(db, handle, ttl, types, indexes)
    prefix, _, suffix = handle.partition("/")
    if not prefix or not suffix:
        return answer(INVALID_HANDLE, handle, "A handle has the form prefix/suffix, e.g. 10.5555/abc123.")
    if not prefix_served(db, prefix):
        moved = served_elsewhere(db, prefix)
        return answer(NOT_RESPONSIBLE, handle, f"Prefix {prefix} is now served by {moved}, not by this server."
                      if moved else _not_responsible_message(prefix))
    values = handle_values(db, handle)  # never empty for a handle that exists: HS_ADMIN is always there
    if not values:
        return answer(HANDLE_NOT_FOUND, handle)
    return _values_answer(handle, values, types, indexes)


def _not_responsible_message(prefix: str) -> str:
    if prefix.lower() in ("hdl:10", "doi:10") or prefix.lower().startswith(("hdl:", "doi:")):
        return f"That prefix doesn't live here: remove “{prefix.split(':', 1)[0]}:” from the handle."
    return f"That prefix doesn't live here: this server answers only for the prefixes it serves, not {prefix}."


def _values_answer(handle: str, values: list[HandleValueView], types: Sequence[str],
                   indexes: Sequence[int]) -> HandleAnswer:
    chosen = select_values(public_values(values), types, indexes)
    if not chosen:
        return answer(VALUES_NOT_FOUND, handle, values=[])
    return answer(SUCCESS, handle, values=[value_json(v) for v in chosen])


def _prefix_record(db, handle: str, ttl: int, types: Sequence[str], indexes: Sequence[int]) -> HandleAnswer:
    stored = handle_values(db, handle)  # a record made by `agency prefixes create`
    if stored:
        return _values_answer(handle, stored, types, indexes)
    prefix = handle[len(PREFIX_NAMESPACE):].lower()
    row = db.execute(select(Account.created_at).join(Prefix, Prefix.account_id == Account.id)
                     .where(Prefix.prefix == prefix)).first()
    if row is None:
        return answer(NOT_RESPONSIBLE, handle, _not_responsible_message(prefix or handle))
    return _values_answer(handle, prefix_record_values(prefix, row.created_at, ttl), types, indexes)


# ---------------------------------------------------------------------------
# Citation metadata (content negotiation) from the metadata index

@dataclass(frozen=True)
class Person:
    role: str  # author, editor, ...
    family: str | None
    given: str | None
    is_organization: bool = False
    orcid: str | None = None


@dataclass(frozen=True)
class CitationRecord:
    """What the metadata index knows of one DOI, in the shape citation formats need."""

    doi: str
    url: str | None
    content_type: str
    body_type: str
    publication_type: str | None
    title: str | None
    container_title: str | None
    container_abbrev: str | None
    series_title: str | None
    volume: str | None
    issue: str | None
    first_page: str | None
    last_page: str | None
    edition: str | None
    year: int | None
    publisher: str | None
    people: tuple[Person, ...] = ()
    issns: tuple[str, ...] = ()
    isbns: tuple[str, ...] = ()


def citation_metadata(db: Executor, doi: str) -> CitationRecord | None:
    """The indexed metadata of ``doi`` (None when the metadata load has not indexed it)."""
    from agency.models.metadata import MetadataContributor, MetadataIdentifier, MetadataRecord

    key = doi_key(doi)
    row = db.execute(select(MetadataRecord.__table__).where(MetadataRecord.doi_key == key)).first()
    if row is None:
        return None
    contributors = db.execute(select(MetadataContributor.__table__)
                              .where(MetadataContributor.doi_key == key)
                              .order_by(MetadataContributor.position)).all()
    identifiers = db.execute(select(MetadataIdentifier.kind, MetadataIdentifier.value)
                             .where(MetadataIdentifier.doi_key == key)
                             .order_by(MetadataIdentifier.kind, MetadataIdentifier.value)).all()
    chapter_like = row.content_type in ("content_item", "conference_paper")
    return CitationRecord(
        doi=row.doi, url=row.url, content_type=row.content_type, body_type=row.body_type,
        publication_type=row.publication_type, title=row.title,
        container_title=row.journal_title or (row.volume_title if chapter_like else None),
        container_abbrev=row.journal_abbrev, series_title=row.series_title,
        volume=row.volume, issue=row.issue, first_page=row.first_page, last_page=row.last_page,
        edition=row.edition_number, year=row.year, publisher=row.publisher,
        people=tuple(Person(role=(c.role or "author").lower(), family=c.surname, given=c.given_name,
                            is_organization=c.kind == "organization", orcid=c.orcid) for c in contributors),
        issns=tuple(v for k, v in identifiers if k == "issn"),
        isbns=tuple(v for k, v in identifiers if k == "isbn"),
    )


_CSL_TYPES = {
    "journal_article": "article-journal", "journal_metadata": "periodical", "journal_issue": "periodical",
    "journal_volume": "periodical", "conference_paper": "paper-conference", "proceedings_metadata": "book",
    "book_metadata": "book", "book_series_metadata": "book", "book_set_metadata": "book",
    "dissertation": "thesis", "report-paper_metadata": "report", "report-paper_series_metadata": "report",
    "standard_metadata": "standard", "database_metadata": "dataset", "dataset": "dataset",
    "posted_content": "article", "peer_review": "review", "component": "document",
}
_CHAPTER_TYPES = {"reference_entry": "entry", "other": "chapter"}


def csl_type(record: CitationRecord) -> str:
    if record.content_type == "content_item":
        if record.body_type == "report-paper":
            return "report"
        return _CHAPTER_TYPES.get(record.publication_type or "", "chapter")
    return _CSL_TYPES.get(record.content_type, "document")


def _csl_name(person: Person) -> dict:
    if person.is_organization:
        return {"literal": person.family or ""}
    name = {"family": person.family or ""}
    if person.given:
        name["given"] = person.given
    if person.orcid:
        name["ORCID"] = person.orcid
    return name


def page_range(record: CitationRecord, dash: str = "-") -> str | None:
    if not record.first_page:
        return None
    return f"{record.first_page}{dash}{record.last_page}" if record.last_page else record.first_page


def csl_json(record: CitationRecord) -> dict:
    """The record as CSL JSON (the citation-style processors' input), in the DOI proxies' shape."""
    item: dict = {"type": csl_type(record), "id": record.doi, "DOI": record.doi}
    if record.url:
        item["URL"] = record.url
    optional = {
        "title": record.title, "container-title": record.container_title,
        "container-title-short": record.container_abbrev, "collection-title": record.series_title,
        "volume": record.volume, "issue": record.issue, "page": page_range(record),
        "edition": record.edition, "publisher": record.publisher,
    }
    item.update({k: v for k, v in optional.items() if v})
    for role in ("author", "editor", "translator", "chair"):
        names = [_csl_name(p) for p in record.people if p.role == role]
        if names:
            item[role] = names
    if record.year:
        item["issued"] = {"date-parts": [[record.year]]}
    if record.issns:
        item["ISSN"] = list(record.issns)
    if record.isbns:
        item["ISBN"] = list(record.isbns)
    return item


_BIBTEX_TYPES = {"article-journal": "article", "paper-conference": "inproceedings", "chapter": "incollection",
                 "entry": "incollection", "book": "book", "thesis": "phdthesis", "report": "techreport",
                 "dataset": "misc", "standard": "misc", "periodical": "misc"}
_BIBTEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%", "$": r"\$",
                   "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def bibtex_escape(text: str) -> str:
    return "".join(_BIBTEX_SPECIAL.get(c, c) for c in " ".join(text.split()))


def _bibtex_verbatim(text: str) -> str:
    """doi and url fields are read verbatim: only braces and backslashes could break the entry."""
    return text.replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D")


# Letters that Unicode does not decompose into an ASCII base letter.
_ASCII_LETTERS = str.maketrans({"Ø": "O", "ø": "o", "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "ß": "ss",
                                "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Þ": "Th", "þ": "th", "ı": "i"})


def bibtex_key(record: CitationRecord) -> str:
    """Surname_year in ASCII letters and digits, as DOI proxies key their BibTeX entries."""
    first = next((p.family for p in record.people if p.role == "author" and p.family), None)
    base = unicodedata.normalize("NFKD", (first or "doi").translate(_ASCII_LETTERS))
    base = re.sub(r"[^A-Za-z0-9]+", "", base.encode("ascii", "ignore").decode()) or "doi"
    return f"{base}_{record.year}" if record.year else base


def _bibtex_names(people: Iterable[Person]) -> str:
    names = []
    for person in people:
        if person.is_organization:
            names.append("{" + bibtex_escape(person.family or "") + "}")
        elif person.given:
            names.append(f"{bibtex_escape(person.family or '')}, {bibtex_escape(person.given)}")
        else:
            names.append(bibtex_escape(person.family or ""))
    return " and ".join(names)


def bibtex(record: CitationRecord) -> str:
    """The record as one BibTeX entry (title braced to keep its capitals, as DOI proxies do)."""
    kind = csl_type(record)
    entry_type = _BIBTEX_TYPES.get(kind, "misc")
    container_field = {"article": "journal", "inproceedings": "booktitle", "incollection": "booktitle"}
    fields: list[tuple[str, str]] = []

    def add(name: str, value: str | None, raw: bool = False) -> None:
        if value:
            fields.append((name, value if raw else bibtex_escape(value)))

    add("title", record.title)
    add("author", _bibtex_names(p for p in record.people if p.role == "author"), raw=True)
    add("editor", _bibtex_names(p for p in record.people if p.role == "editor"), raw=True)
    if entry_type in container_field:
        add(container_field[entry_type], record.container_title)
    add("series", record.series_title)
    add("volume", record.volume)
    add("number", record.issue)
    add("pages", page_range(record, "--"))
    add("edition", record.edition)
    add("year", str(record.year) if record.year else None)
    add("publisher", record.publisher)
    add("ISSN", ", ".join(record.issns))
    add("ISBN", ", ".join(record.isbns))
    add("doi", _bibtex_verbatim(record.doi), raw=True)
    add("url", _bibtex_verbatim(record.url) if record.url else None, raw=True)
    body = ",\n".join(f"  {name} = {{{value}}}" if name != "title" else f"  {name} = {{{{{value}}}}}"
                      for name, value in fields)
    return f"@{entry_type}{{{bibtex_key(record)},\n{body}\n}}\n"
