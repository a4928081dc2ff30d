"""DOI keys fold ASCII case only; invisible formatting characters are refused per record;
keys stored under the old full-Unicode rule are re-keyed and keep resolving."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from agency.handles.doi_syntax import doi_key, doi_problem
from agency.handles.store import rekey_stored_names, resolve_url
from agency.models import Handle, HandleValue, MetadataContributor, MetadataRecord
from batchgen import Article, deposit_xml


def test_only_ascii_letters_are_folded():
    assert doi_key("10.5555/Abc-xyz") == "10.5555/ABC-XYZ"
    assert doi_key("10.5555/x-straße") == "10.5555/X-STRAßE" != doi_key("10.5555/X-STRASSE")
    assert doi_key("10.5555/ﬁle") != doi_key("10.5555/FILE")
    assert doi_key("10.5555/é") == "10.5555/é"  # not É: the DOI system folds ASCII only


@pytest.mark.parametrize("char, name", [("\u200d", "ZERO WIDTH JOINER"), ("\u202e", "RIGHT-TO-LEFT OVERRIDE"),
                                        ("\u2066", "LEFT-TO-RIGHT ISOLATE"), ("\u200b", "ZERO WIDTH SPACE"),
                                        ("\ufeff", "ZERO WIDTH NO-BREAK SPACE")])
def test_format_characters_are_refused_by_name(char, name):
    problem = doi_problem(f"10.5555/ab{char}cd")
    assert problem and "invisible formatting character" in problem and name in problem


def test_lookalikes_are_separate_dois_and_a_format_character_fails_its_record_only(deposit):
    _body, records = deposit(deposit_xml([Article("10.5555/x-straße"), Article("10.5555/X-STRASSE"),
                                          Article("10.5555/bidi\u202egnp.exe"), Article("10.5555/plain")]))
    assert [(r["status"], r["msg"][:40]) for r in records] == [
        ("Success", "Successfully added"), ("Success", "Successfully added"),
        ("Failure", "Invalid DOI: DOI contains an invisible f"), ("Success", "Successfully added")]
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in records[2]["msg"]


def test_old_full_unicode_keys_are_rekeyed_and_resolve_again(svc, alice):
    now = datetime.now(timezone.utc)
    old_key, name = "10.5555/É-STRASSE", "10.5555/é-straße"  # what str.upper() stored
    with svc.db.transaction() as session:
        session.add(Handle(key=old_key, name=name, prefix="10.5555", version="0" * 19, account_id=alice.id,
                           submission_id=0, created_at=now, updated_at=now))
        session.flush()
        session.add(HandleValue(handle_key=old_key, idx=1, type="URL", data=b"https://example.org/e", ttl=86400,
                                timestamp=now))
        session.add(Handle(key="10.5555/ASCII", name="10.5555/ascii", prefix="10.5555", version="0" * 19,
                           account_id=alice.id, submission_id=0, created_at=now, updated_at=now))
        session.add(MetadataRecord(doi_key=old_key, doi=name, prefix="10.5555", version="0" * 19,
                                   content_type="journal_article", body_type="journal", depositor_login="alice",
                                   batch_folder="alice/2024/01/1"))
        session.flush()
        session.add(MetadataContributor(doi_key=old_key, position=1, kind="person", surname="Smith"))
    with svc.db.sessions() as session:
        assert resolve_url(session, name) is None  # the new rule no longer finds the old key
    with svc.db.transaction() as session:
        assert rekey_stored_names(session) == 2  # the handle and its metadata record
    with svc.db.transaction() as session:
        assert rekey_stored_names(session) == 0
    with svc.db.sessions() as session:
        assert resolve_url(session, name) == "https://example.org/e"
        assert resolve_url(session, "10.5555/É-STRASSE") is None  # é and É are different DOIs now
        assert set(session.scalars(select(Handle.key))) == {doi_key(name), "10.5555/ASCII"}
        assert session.scalar(select(MetadataContributor.doi_key)) == doi_key(name)
