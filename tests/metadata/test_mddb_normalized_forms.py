"""What the load stores for matching beyond plain keys: cleaned surname keys and journal title variants by ISSN."""

from __future__ import annotations

from sqlalchemy import select

from agency.models import MetadataJournalTitle
from batchgen import Article, deposit_xml
from mddb_pipeline import contributors, deposit, record


def title_variants(svc) -> set[tuple[str, str]]:
    with svc.db.sessions() as session:
        return {tuple(row) for row in session.execute(select(MetadataJournalTitle.issn,
                                                             MetadataJournalTitle.title_key))}


def test_surname_keys_are_cleaned_and_the_deposited_text_kept(svc, client, alice):
    deposit(svc, client, deposit_xml([Article("10.5555/a", surname="Kim, Researcher"),
                                      Article("10.5555/b", surname="Policastro (*package author and creator*)"),
                                      Article("10.5555/c", surname="\u2019t&nbsp;Hart")]))
    svc.mddb.run(mail=False)
    assert [record(svc, d).first_author_key for d in ("10.5555/a", "10.5555/b", "10.5555/c")] == [
        "kim", "policastro", "thart"]
    (kim,) = contributors(svc, "10.5555/a")
    assert kim.surname == "Kim, Researcher" and kim.surname_key == "kim"  # answers show what was deposited
    assert record(svc, "10.5555/c").first_author_surname == "\u2019t&nbsp;Hart"


def test_each_title_a_journal_was_deposited_under_is_learnt_by_issn(svc, client, alice):
    deposit(svc, client, deposit_xml([Article("10.5555/a")], journal="Proceedings of the Tests Conferences",
                                     batch_id="one", timestamp="20240101000000"))
    deposit(svc, client, deposit_xml([Article("10.5555/b")], journal="Tests Proceedings", batch_id="two"))
    svc.mddb.run(mail=False)
    assert title_variants(svc) == {("1234-5679", "proceedings of the tests conferences"),
                                   ("1234-5679", "tests proceedings")}
    # a newer deposit of the same DOI under the other title replaces the record, not what was learnt
    deposit(svc, client, deposit_xml([Article("10.5555/a")], journal="Tests Proceedings", batch_id="three",
                                     timestamp="20250101000000"))
    svc.mddb.run(mail=False)
    assert record(svc, "10.5555/a").journal_title == "Tests Proceedings"
    assert len(title_variants(svc)) == 2
