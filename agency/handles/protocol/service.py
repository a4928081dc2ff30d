"""What the handle server answers, whatever the transport: one request message in, one response message out.

Resolution and site information are answered at once. Administration is
challenged first (RFC 3652 section 3.5 challenge-response, with an HS_SECKEY
secret or an HS_PUBKEY key pair); the answer, checked against the key value it
names, releases the guarded request, which is then allowed only if that key
holds the permission through the handle's HS_ADMIN values
(or, to create a handle, the prefix record's).

A request with the CT flag gets a response signed with the server's key (signing.py), whatever it answers;
other responses carry an empty credential.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from sqlalchemy.exc import SQLAlchemyError

from agency.db import Database
from agency.handles.admins import permission_for_value, permitted
from agency.handles.editing import PREFIX_NAMESPACE, EditError, HandleEditor, handle_prefix
from agency.handles.protocol import messages as m
from agency.handles.protocol.answer_cache import AnswerCache
from agency.handles.protocol.authentication import (
    AnswerError, ChallengeLimit, Challenges, answer_matches,
)
from agency.handles.protocol.directory import StoreDirectory
from agency.handles.protocol.signing import ResponseSigner
from agency.handles.public_keys import KeyFormatError, signature_matches
from agency.handles.values import (
    ADD_HANDLE, DELETE_HANDLE, PUBKEY_TYPE, SECKEY_TYPE, HandleValue, Reference, type_matches,
)
from agency.sign_in import SignInGuard, TooManyFailures

log = logging.getLogger(__name__)
SITE_HANDLE = "/"
STORE_UNREADABLE = "the handle store could not be read; try again shortly"


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 256 * 1024


class HandleService:
    def __init__(self, db: Database, directory: StoreDirectory, site_record: bytes, *, site_serial: int = 1,
                 limits: Limits = Limits(), audit: Callable | None = None,
                 challenges: Challenges | None = None, guard: SignInGuard | None = None,
                 answers: AnswerCache | None = None, signer: ResponseSigner | None = None) -> None:
        self.db = db
        self.directory = directory
        self.site_record = site_record
        self.site_serial = site_serial
        self.limits = limits
        self.audit = audit
        self.challenges = challenges or Challenges(db, limits.max_message_bytes)
        self.guard = guard or SignInGuard()  # wrong key answers: per key and per client address
        self.answers = answers  # None: every resolution reads the store
        self.signer = signer  # None: certified requests get unsigned responses (a service without a key pair)

    # -- entry point

    def answer(self, envelope: m.Envelope, payload: bytes, peer: str) -> bytes | None:
        """The response (envelope first) to one received message; None when nothing should be sent."""
        try:
            request = m.parse_message(envelope, payload, self.limits.max_message_bytes)
        except m.ProtocolError as exc:
            return self._bare_error(envelope, payload, exc)
        try:
            m.check_version(envelope)
            if request.header.response_code != 0:
                return None  # a response sent to us: never answer one (no loops between servers)
            return self._dispatch(request, peer)
        except m.ProtocolError as exc:
            return self._error(request, exc.code, exc.message)
        except SQLAlchemyError:
            log.exception("handle store error answering op %s", request.header.op_code)
            return self._error(request, m.RC_SERVER_BUSY, STORE_UNREADABLE)

    def answer_octets(self, envelope_octets: bytes, payload: bytes, peer: str,
                      checked: int | None = None) -> bytes | None:
        """``answer`` for a message as received (its envelope's octets, then the rest): what the transports call.

        A plain resolution (most of what a handle server receives, and never one asking for a certified
        response) takes a shorter way: it is looked up among the kept answers (where there are any) by its
        body's octets before anything else is parsed, and answered from the few fields the response echoes.
        ``checked``: what ``check_store`` gave after this message was received (one change check serves every
        message received before it); None to check now."""
        plain = m.plain_resolution(envelope_octets, payload, self.limits.max_message_bytes)
        if plain is not None:
            found = None
            if self.answers is not None:
                if checked is None:
                    found, checked = self.answers.lookup(plain.body)
                else:
                    found = self.answers.get(plain.body)
            if found is None:
                found = self._plain_answer(plain, checked)
            if found is not None:
                return m.plain_resolution_response(plain, found[0], found[1], self.site_serial)
        return self.answer(m.Envelope.decode(envelope_octets), payload, peer)

    def _plain_answer(self, plain: m.PlainResolution, checked: int | None) -> tuple[int, bytes] | None:
        """The answer to a plain resolution of a handle served here, read (and kept, where answers are); None for
        anything else (a malformed body, the site handle, a prefix served elsewhere): ``answer`` answers it."""
        try:
            query = m.resolution_query(plain.body)
        except m.ProtocolError:
            return None
        if query.handle == SITE_HANDLE or "/" not in query.handle or not self.directory.serves(query.handle):
            return None
        try:
            found = self._read_answer(query)
        except SQLAlchemyError:
            log.exception("handle store error answering a resolution")
            return m.RC_SERVER_BUSY, m.error_body(STORE_UNREADABLE)
        if self.answers is not None:
            self.answers.keep(plain.body, checked, found)
        return found

    def credential_for(self, op_flags: int) -> m.Credential | None:
        """What signs the response to a request with these operation flags: the signer when CT asks for it."""
        if self.signer is None or not op_flags & m.OF_CERTIFIED:
            return None
        return self.signer.credential

    def check_store(self) -> int | None:
        """Check the store for commits once, for every message received so far (None: nothing is kept)."""
        return None if self.answers is None else self.answers.check()

    def _dispatch(self, request: m.Message, peer: str) -> bytes:
        op = request.header.op_code
        if op == m.OC_RESOLUTION:
            return self._resolve(request)
        if op == m.OC_GET_SITEINFO:
            return self._reply(request, m.RC_SUCCESS, self.site_record)
        if op in m.ADMIN_OPERATIONS:
            return self._challenge(request)
        if op == m.OC_CHALLENGE_RESPONSE:
            return self._answered(request, peer)
        if op in (m.OC_SESSION_SETUP, m.OC_SESSION_TERMINATE, m.OC_SESSION_EXCHANGEKEY, m.OC_LIST_HANDLE,
                  m.OC_LIST_NA, m.OC_VERIFY_RESPONSE):
            return self._error(request, m.RC_OPERATION_DENIED, f"operation {op} is not offered by this server")
        return self._error(request, m.RC_OPERATION_DENIED, f"unknown operation code {op}")

    # -- resolution

    def _resolve(self, request: m.Message) -> bytes:
        query = m.resolution_request(request)
        if query.handle == SITE_HANDLE:
            return self._reply(request, m.RC_SUCCESS, self.site_record, op_code=m.OC_GET_SITEINFO)
        if "/" not in query.handle:
            return self._error(request, m.RC_INVALID_HANDLE, "a handle has the form prefix/suffix")
        if not self.directory.serves(query.handle):
            return self._error(request, m.RC_SERVER_NOT_RESP,
                               f"prefix {handle_prefix(query.handle)} is not served here")
        code, body = self._resolution_answer(request, query)
        return self._reply(request, code, body)

    def _resolution_answer(self, request: m.Message, query: m.Resolution) -> tuple[int, bytes]:
        """Response code and body: kept ones while the store is unchanged (unauthenticated requests only)."""
        if self.answers is None or request.credential:
            return self._read_answer(query)
        found, version = self.answers.lookup(request.body)
        if found is not None:
            return found
        answer = self._read_answer(query)
        self.answers.keep(request.body, version, answer)
        return answer

    def _read_answer(self, query: m.Resolution) -> tuple[int, bytes]:
        encoded = self.directory.public_values_encoded(query.handle)  # public values only: no authenticated reads
        if encoded is None:
            return m.RC_HANDLE_NOT_FOUND, m.error_body("handle not found")
        if query.indexes or query.types:
            encoded = [item for item in encoded
                       if item[0] in query.indexes or any(type_matches(item[1], t) for t in query.types)]
        if not encoded:
            return m.RC_VALUES_NOT_FOUND, m.error_body("no values of the requested types or indexes")
        return m.RC_SUCCESS, m.resolution_body_encoded(query.handle, [item[2] for item in encoded])

    # -- administration

    def _challenge(self, request: m.Message) -> bytes:
        handle = _target_handle(request)  # parse now: a malformed request is refused before any challenge
        if not self.directory.serves(handle):
            return self._error(request, m.RC_SERVER_NOT_RESP, f"prefix {handle_prefix(handle)} is not served here")
        try:
            challenge = self.challenges.issue(request)
        except ChallengeLimit:
            return self._error(request, m.RC_SERVER_BUSY, "too many open challenges; try again shortly")
        return m.response_bytes(request, m.RC_AUTHEN_NEEDED, m.challenge_body(challenge.nonce),
                                session_id=challenge.session_id, with_digest=True, site_serial=self.site_serial,
                                credential=self.credential_for(request.header.op_flags))

    def _answered(self, answer_message: m.Message, peer: str) -> bytes:
        answer = m.challenge_answer(answer_message)
        challenge = self.challenges.take(answer_message.envelope.session_id)
        if challenge is None:
            return self._error(answer_message, m.RC_AUTHEN_TIMEOUT,
                               "no challenge is open for this session (it expired, was answered, or never existed)")
        request = challenge.request
        if answer.auth_type not in (SECKEY_TYPE, PUBKEY_TYPE):
            return self._error(answer_message, m.RC_AUTHEN_FAILED, f"authentication type {answer.auth_type[:40]!r}"
                               " is not supported here: use HS_SECKEY or HS_PUBKEY", op_code=request.header.op_code)
        identity = Reference(answer.handle, answer.index)
        try:  # answers being checked count as failures until they are known: a burst cannot outrun the limit
            with self.guard.attempt(str(identity), peer) as outcome:
                outcome.succeeded = self._answer_is_right(answer, challenge, peer)
        except TooManyFailures as exc:
            return self._error(answer_message, m.RC_AUTHEN_FAILED, "too many failed authentications for this key "
                               f"or from this address; try again in {exc.retry_after} s", op_code=request.header.op_code)
        if not outcome.succeeded:
            return self._error(answer_message, m.RC_AUTHEN_FAILED, "authentication failed",
                               op_code=request.header.op_code)
        code, message = self._perform(request, identity)
        if code == m.RC_SUCCESS:
            return self._reply(answer_message, m.RC_SUCCESS, b"", op_code=request.header.op_code)
        return self._error(answer_message, code, message, op_code=request.header.op_code)

    def _answer_is_right(self, answer: m.ChallengeAnswer, challenge, peer: str) -> bool:
        """Whether the answer proves the key it names (a key that does not exist proves nothing)."""
        key = self._key_value(answer.handle, answer.index, answer.auth_type)
        if key is None:
            return False
        try:
            if answer.auth_type == PUBKEY_TYPE:
                return signature_matches(key, challenge.nonce, challenge.request_digest, answer.answer)
            return answer_matches(key, challenge.nonce, challenge.request_digest, answer.answer)
        except (AnswerError, KeyFormatError) as exc:
            log.info("refused challenge answer from %s: %s", peer, exc)
            return False

    def _key_value(self, handle: str, index: int, key_type: str) -> bytes | None:
        """The data of the HS_SECKEY or HS_PUBKEY value an answer names (None when there is no such value)."""
        if not self.directory.serves(handle):
            return None  # keys of handles served elsewhere would need a verification request: not offered
        for value in self.directory.values(handle) or []:
            if value.index == index and value.type == key_type:
                return value.data
        return None

    def _perform(self, request: m.Message, identity: Reference) -> tuple[int, str]:
        op = request.header.op_code
        actor = f"handle-admin:{identity.index}:{identity.handle}"
        try:
            with self.db.transaction() as session:
                values_of = self.directory.values_reader(session)
                editor = HandleEditor(session, actor, self.audit)
                if op == m.OC_CREATE_HANDLE:
                    body = m.values_request(request)
                    if body.handle.upper().startswith(PREFIX_NAMESPACE):
                        return m.RC_NOT_AUTHORIZED, "prefix records are created by the RA (agency prefixes create)"
                    prefix_record = values_of(PREFIX_NAMESPACE + handle_prefix(body.handle))
                    if not permitted(identity, prefix_record, ADD_HANDLE, values_of):
                        return m.RC_NOT_AUTHORIZED, "this key may not create handles under that prefix"
                    editor.create(body.handle, body.values, overwrite=request.flag(m.OF_OVERWRITE))
                    return m.RC_SUCCESS, ""
                handle = _target_handle(request)
                current = values_of(handle)
                if not current:
                    return m.RC_HANDLE_NOT_FOUND, "handle not found"
                if op == m.OC_DELETE_HANDLE:
                    if not permitted(identity, current, DELETE_HANDLE, values_of):
                        return m.RC_NOT_AUTHORIZED, "this key may not delete that handle"
                    editor.delete(handle)
                    return m.RC_SUCCESS, ""
                if op == m.OC_REMOVE_VALUE:
                    body = m.remove_request(request)
                    by_index = {v.index: v for v in current}
                    for index in body.indexes:
                        if index in by_index and not self._may_change(identity, current, "remove", by_index[index],
                                                                      values_of):
                            return m.RC_NOT_AUTHORIZED, f"this key may not remove the value at index {index}"
                    editor.remove(handle, body.indexes)
                    return m.RC_SUCCESS, ""
                body = m.values_request(request)
                action = "add" if op == m.OC_ADD_VALUE else "modify"
                by_index = {v.index: v for v in current}
                for value in body.values:
                    old = by_index.get(value.index)
                    if not self._may_change(identity, current, action, old or value, values_of, new=value):
                        return m.RC_NOT_AUTHORIZED, f"this key may not {action} the value at index {value.index}"
                if action == "add":
                    editor.add(handle, body.values, overwrite=request.flag(m.OF_OVERWRITE))
                else:
                    editor.modify(handle, body.values)
                return m.RC_SUCCESS, ""
        except EditError as exc:
            return exc.code, exc.message

    @staticmethod
    def _may_change(identity: Reference, current: list[HandleValue], action: str, value: HandleValue,
                    values_of, new: HandleValue | None = None) -> bool:
        if action != "add" and not value.admin_write:
            return False
        needed = permission_for_value(action, value.type)
        if new is not None and new.type != value.type:
            needed |= permission_for_value(action, new.type)
        return all(permitted(identity, current, bit, values_of) for bit in _bits(needed))

    # -- replies

    def _reply(self, request: m.Message, code: int, body: bytes, op_code: int | None = None) -> bytes:
        return m.response_bytes(request, code, body, op_code=op_code, site_serial=self.site_serial,
                                credential=self.credential_for(request.header.op_flags))

    def _error(self, request: m.Message, code: int, message: str, op_code: int | None = None) -> bytes:
        return self._reply(request, code, m.error_body(message), op_code)

    def _bare_error(self, envelope: m.Envelope, payload: bytes, exc: m.ProtocolError) -> bytes | None:
        """An error for a message that did not parse (dropped when it claims to be a response itself)."""
        header = m.Header.decode(payload) if len(payload) >= m.HEADER_SIZE else None
        if header is not None and header.response_code != 0:
            return None
        return m.unparsed_error(envelope, header, exc.code, exc.message, site_serial=self.site_serial,
                                credential=self.credential_for(header.op_flags if header else 0))


def _bits(mask: int):
    return [1 << i for i in range(12) if mask & (1 << i)]


def _target_handle(request: m.Message) -> str:
    """The handle an administrative request acts on (its body starts with it)."""
    return m.handle_only(request) if request.header.op_code == m.OC_DELETE_HANDLE else _first_handle(request)


def _first_handle(request: m.Message) -> str:
    from agency.handles.values import Reader

    reader = Reader(request.body)
    handle = m.read_handle(reader)
    # Check the rest of the body now too, so a malformed request is refused before it is challenged.
    if request.header.op_code == m.OC_REMOVE_VALUE:
        m.remove_request(request)
    else:
        m.values_request(request)
    return handle
