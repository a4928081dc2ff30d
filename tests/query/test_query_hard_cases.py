"""The kinds of issue 19 end to end: deposited over HTTP, loaded, queried; each with a must-find and a must-not.

Sibling journals, ISSN typos (wrong check digit, or valid but wrong), messy
deposited surnames, same-issue co-authors with similar names, and journal
title forms learnt from deposits.
"""

from __future__ import annotations

from labelled_set import Article, Journal, _doi_batch
from querydata import deposit, load_index

JOSS = Journal("Journal of Open Source Software", "J Open Source Softw", "2475-9066", "2475-9066", ("electronic",),
               True)
JOSE = Journal("Journal of Open Source Education", "J Open Source Educ", "2576-3555", "2576-3555", ("electronic",),
               True)


def article(journal: Journal, n: int, surnames: list[str], volume: int = 5, issue: int = 2, page: str = "10",
            year: int = 2020) -> Article:
    return Article(f"10.5555/hard.{n}", journal, volume, issue, page, year, surnames, f"Article {n}")


def put(client, svc, journal: Journal, articles: list[Article], batch: str) -> None:
    issues: dict[tuple[int, int], list[Article]] = {}
    for a in articles:
        issues.setdefault((a.volume, a.issue), []).append(a)
    deposit(client, svc, _doi_batch(journal, issues, batch))


def answers(svc, *lines: str) -> list[str]:
    return svc.queries.answer_now(list(lines)).text.split("\n")[:len(lines)]


def doi_of(answer: str) -> str:
    fields = answer.split("|")
    return fields[9] if len(fields) >= 10 else ""


def test_sibling_journals_do_not_answer_for_each_other(client, svc, alice):
    put(client, svc, JOSS, [article(JOSS, 1, ["Okafor"])], "joss")
    load_index(svc)
    found, sibling, sibling_title_only = answers(
        svc,
        "2475-9066|Journal of Open Source Software|Okafor|5|2|10|2020|full_text|a|",
        "2576-3555|Journal of Open Source Education|Okafor|5|2|10|2020|full_text|b|",  # JOSE's, never deposited
        "|Journal of Open Source Education|Okafor|5|2|10|2020|full_text|c|")
    assert doi_of(found) == "10.5555/hard.1"
    assert "NO_MATCH" in sibling and "NO_MATCH" in sibling_title_only


def test_issn_typos_are_weak_fields_and_the_answer_says_so(client, svc, alice):
    put(client, svc, JOSS, [article(JOSS, 1, ["Okafor"]), article(JOSS, 2, ["Haddad"], page="30")], "joss")
    put(client, svc, JOSE, [article(JOSE, 3, ["Silva"], page="77")], "jose")
    load_index(svc)
    check_digit_with_title, check_digit_alone, valid_typo, valid_typo_no_issue, known_other = answers(
        svc,
        "2475-9067|Journal of Open Source Software|Okafor|5|2|10|2020|full_text|a|",  # wrong check digit
        "2475-9067||Haddad|5||30|2020|full_text|b|",
        "2475-9074||Okafor|5|2|10|2020|full_text|c|",  # valid ISSN, no journal has it: exact fields decide
        "2475-9074||Okafor|5||10|2019|full_text|d|",  # ... not when the year is off
        "2576-3555||Okafor|5|2|10|2020|full_text|e|")  # JOSE's ISSN: another journal indexed here
    assert doi_of(check_digit_with_title) == "10.5555/hard.1"
    assert check_digit_with_title.split("|")[10].startswith("NOTE: ISSN '2475-9067' has a wrong check digit")
    assert doi_of(check_digit_alone) == "10.5555/hard.2"
    assert doi_of(valid_typo) == "10.5555/hard.1"
    assert "NO_MATCH" in valid_typo_no_issue and "NO_MATCH" in known_other


def test_messy_deposited_surnames_are_found_by_their_names(client, svc, alice):
    put(client, svc, JOSS, [article(JOSS, 1, ["Kim, Researcher"], page="10"),
                            article(JOSS, 2, ["Policastro (*package author and creator*)"], page="20"),
                            article(JOSS, 3, ["\u2019t&nbsp;Hart"], page="30"),
                            article(JOSS, 4, ["Xq"], page="40")], "joss")
    load_index(svc)
    kim, policastro, hart, garbled, garbled_no_issue, given_name = answers(
        svc,
        "|Journal of Open Source Software|Kim|5||10|2020|full_text|a|",
        "|J Open Source Softw|Policastro|5||20|2020|full_text|b|",
        "|Journal of Open Source Software|'t Hart|5||30|2021|full_text|c|",
        "2475-9066||Vandermeer|5|2|40|2020|full_text|d|",  # the deposit's surname is junk: ISSN and numbers decide
        "2475-9066||Vandermeer|5||40|2020|full_text|e|",
        "|Journal of Open Source Software|Researcher|5||10|2020|full_text|f|")
    assert [doi_of(a) for a in (kim, policastro, hart, garbled)] == [f"10.5555/hard.{n}" for n in (1, 2, 3, 4)]
    assert "NO_MATCH" in garbled_no_issue and "NO_MATCH" in given_name


def test_first_author_dominates_similar_coauthors_in_one_issue(client, svc, alice):
    put(client, svc, JOSS, [article(JOSS, 1, ["Zhang", "Okafor"], page="10"),
                            article(JOSS, 2, ["Wu", "Chang"], page="30"),
                            article(JOSS, 3, ["Liu", "Rossi"], page="50"),
                            article(JOSS, 4, ["Patel", "Li"], page="70")], "joss")
    load_index(svc)
    # With a title and no first page, the whole issue is a candidate: co-authors must not blur the answer.
    zhang, chang, li, liu = answers(
        svc,
        "|Journal of Open Source Software|Zhang|5|2||2020|full_text|a|",
        "|Journal of Open Source Software|Chang|5|2||2020|full_text|b|",  # a co-author only, no first page
        "|Journal of Open Source Software|Li|5|2||2020|full_text|c|",  # never a first author here: not Liu
        "|Journal of Open Source Software|Liu|5|2||2020|full_text|d|")
    assert doi_of(zhang) == "10.5555/hard.1" and doi_of(liu) == "10.5555/hard.3"
    assert "NO_MATCH" in chang and "NO_MATCH" in li


def test_journal_title_forms_learnt_from_deposits(client, svc, alice):
    long_form = Journal("Proceedings of the Synthetic Results Conferences", "Proc Synth Results Conf", "1234-5679",
                        "1234-5679", ("electronic",), False)
    short_form = Journal("Synthetic Results Proceedings", "Synth Results Proc", "1234-5679", "1234-5679",
                         ("electronic",), False)
    put(client, svc, long_form, [article(long_form, 1, ["Okafor"], volume=1)], "early")
    put(client, svc, short_form, [article(short_form, 2, ["Haddad"], volume=2, page="44")], "late")
    load_index(svc)
    by_long, by_short, another = answers(
        svc,
        "|Proceedings of the Synthetic Results Conferences|Haddad|2||44|2021|full_text|a|",
        "|Synthetic Results Proceedings|Okafor|1||10|2020|full_text|b|",
        "|Proceedings of the Marine Results Conferences|Haddad|2||44|2021|full_text|c|")
    assert doi_of(by_long) == "10.5555/hard.2" and doi_of(by_short) == "10.5555/hard.1"
    assert "NO_MATCH" in another


def test_a_query_job_records_the_doi_of_a_line_answered_with_a_note(client, svc, alice):
    import io

    from querydata import ALICE_AUTH
    from sqlalchemy import select

    from agency.models import RecordResult

    put(client, svc, JOSS, [article(JOSS, 1, ["Okafor"])], "joss")
    load_index(svc)
    lines = ["2475-9067|Journal of Open Source Software|Okafor|5|2|10|2020|full_text|typo|", "k|10.5555/hard.1"]
    response = client.post("/v1/queries", data={"file": (io.BytesIO(("\n".join(lines * 20) + "\n").encode()), "q.txt")},
                           headers=ALICE_AUTH, content_type="multipart/form-data")
    assert response.status_code == 202
    svc.worker.run_until_idle()
    with svc.db.sessions() as session:
        results = session.execute(select(RecordResult.doi, RecordResult.message)
                                  .where(RecordResult.submission_id == response.get_json()["submission_id"])
                                  .order_by(RecordResult.seq)).all()
    assert [doi for doi, _ in results] == ["10.5555/hard.1"] * 40
    assert "NOTE: ISSN '2475-9067'" in results[0].message
