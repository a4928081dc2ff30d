"""A DOI's page shows the versions it went through and the submission that set each, read from what is
kept: the account's submissions' records, version resets and the audit trail (SQLite and PostgreSQL)."""

from __future__ import annotations

from batchgen import Article, deposit_xml

from agency.admin.audit import Actor
from agency.admin.versions import reset_versions
from ui_forms import sign_in, upload


def uploaded(client, svc, data: bytes, kind: str = "deposit") -> int:
    response = upload(client, data, "f.txt" if kind != "deposit" else "f.xml", kind=kind)
    assert response.status_code == 303, response.get_data(as_text=True)
    svc.worker.run_until_idle()
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_versions_their_submissions_resets_and_trail(client, svc, alice):
    sign_in(client)
    first = uploaded(client, svc, deposit_xml([Article("10.5555/Hist")], timestamp="20240101000000"))
    second = uploaded(client, svc, deposit_xml([Article("10.5555/hist")], timestamp="20240202000000"))
    stale = uploaded(client, svc, deposit_xml([Article("10.5555/HIST")], timestamp="20230101000000"))
    urls = uploaded(client, svc, b"10.5555/hist\thttps://moved.example.org/h\n", "url-update")
    uploaded(client, svc, deposit_xml([Article("10.5555/other")], timestamp="20240303000000"))
    with svc.db.transaction() as session:
        reset_versions(session, Actor.operator("olga"), "20200101000000", "ticket 12", dois=["10.5555/hist"])
    page = client.get("/ui/dois/10.5555/hist").get_data(as_text=True)
    table = page.split('id="versions"')[1].split("</table>")[0]
    rows = table.split("<tr")[2:]
    assert [row.split("</a>")[0].rsplit(">", 1)[1] for row in rows] == [str(urls), str(stale), str(second), str(first)]
    assert "20240202000000" in rows[2] and ">updated<" in rows[2]
    assert "20230101000000" in rows[1] and ">stale<" in rows[1]
    assert "20240101000000" in rows[3] and ">added<" in rows[3]
    assert "(URL only)" in rows[0]
    assert "10.5555/other" not in table
    resets = page.split('id="resets"')[1].split("</table>")[0]
    assert "20240202000000" in resets and "20200101000000" in resets and "ticket 12" in resets
    assert "doi.reset_version" in page.split('id="doi-trail"')[1]


def test_a_doi_without_own_writes_says_so_honestly(client, svc, alice):
    sign_in(client)
    uploaded(client, svc, deposit_xml([Article("10.5555/lonely")]))
    page = client.get("/ui/dois/10.5555/lonely").get_data(as_text=True)
    assert 'id="versions"' in page and "There is no table of each DOI" in page
