"""Moving a prefix between agencies (Handbook 9.1.6): export, import elsewhere, then 'served elsewhere'."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
import zipfile

import pytest
from sqlalchemy import create_engine, func, select, text

from admin_cli_env import cli_env  # noqa: F401 (fixture)
from agency.admin.archive import ArchiveError, export_prefix, import_prefix
from agency.admin.audit import Actor
from agency.admin.prefixes import mark_served_elsewhere
from agency.admin.titles import titles_of
from agency.cli import main
from agency.config import load_settings
from agency.models import (CitationKey, Handle, HandleValue, MetadataContributor, MetadataIdentifier, MetadataLocator,
                           MetadataRecord, Prefix)
from agency.services import build_agency
from batchgen import Article, deposit_xml
from conftest import PG_URL, _pg_schema_url, add_account, basic_headers

OPS = Actor.operator("ops")


@pytest.fixture
def other(tmp_path, database_url):
    """A second, empty agency on the same kind of database."""
    schema = None
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'other.db'}"
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = _pg_schema_url(schema)
    agency = build_agency(load_settings(environ={}, data_dir=tmp_path / "other-var", batch_dir=tmp_path / "other-b",
                                        database_url=url, password_time_cost=1, run_worker=False,
                                        run_scheduler=False, base_url="http://other"))
    add_account(agency, "press", "press-password", "press@example.org", [])
    yield agency
    agency.db.engine.dispose()
    if schema:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def snapshot(agency) -> dict:
    def rows(model, order, skip=()):
        columns = [c for c in model.__table__.columns if c.key not in skip]
        return [tuple(r) for r in session.execute(select(*columns).order_by(*order))]

    with agency.db.sessions() as session:
        return {
            "handles": rows(Handle, [Handle.key], skip=("account_id", "submission_id")),
            "values": rows(HandleValue, [HandleValue.handle_key, HandleValue.idx]),
            "metadata": rows(MetadataRecord, [MetadataRecord.doi_key], skip=("submission_id",)),
            "contributors": rows(MetadataContributor, [MetadataContributor.doi_key, MetadataContributor.position]),
            "identifiers": rows(MetadataIdentifier, [MetadataIdentifier.doi_key, MetadataIdentifier.value]),
            "locators": rows(MetadataLocator, [MetadataLocator.doi_key, MetadataLocator.issn]),
            "citations": rows(CitationKey, [CitationKey.doi_key]),
            "titles": sorted((r.kind, r.title, tuple(i)) for r, i, _o in titles_of(session)),
        }


@pytest.fixture
def exported(svc, deposit, tmp_path):
    deposit(deposit_xml([Article("10.5555/x.1"), Article("10.5555/x.2"), Article("10.5555/x.3")],
                        timestamp="20240101000000"))
    deposit(deposit_xml([Article("10.5555/x.1", url="https://example.org/v2")], timestamp="20240201000000"))
    deposit(deposit_xml([Article("10.32013/elsewhere")], issn="2049-3630"))
    svc.mddb.run(mail=False)
    path = tmp_path / "10.5555.zip"
    with svc.db.sessions() as session:
        counts = export_prefix(session, svc.settings, "10.5555", path)
    assert counts["handles"] == 3 and counts["metadata"] == 3 and counts["titles"] == 1
    assert counts["batch_files"] >= 4  # two submissions: batch.xml and log.xml at least
    return path


def _import(other, path, login="press"):
    with other.db.transaction() as session:
        return import_prefix(session, other.settings, OPS, path, login)


def test_round_trip_into_an_empty_agency_keeps_everything_and_versions(svc, other, exported):
    report = _import(other, exported)
    assert (report.handles_written, report.metadata_written, report.titles_created) == (3, 3, 1)
    source = snapshot(svc)
    source["handles"] = [h for h in source["handles"] if h[0].startswith("10.5555/")]
    source["values"] = [v for v in source["values"] if v[0].startswith("10.5555/")]
    for name in ("metadata", "contributors", "identifiers", "citations"):
        source[name] = [r for r in source[name] if r[0].startswith("10.5555/")]
    source["locators"] = [r for r in source["locators"] if r[-1].startswith("10.5555/")]
    source["titles"] = [t for t in source["titles"] if "1234-5679" in t[2]]
    assert snapshot(other) == source
    assert [(h[3], h[4]) for h in snapshot(other)["handles"]] == [  # versions and revisions kept
        ("0000020240201000000", 2), ("0000020240101000000", 1), ("0000020240101000000", 1)]
    with other.db.sessions() as session:
        assert session.get(Prefix, "10.5555").account_id == session.execute(
            text("select id from accounts where login = 'press'")).scalar()
    assert sorted(p.name for p in (other.settings.data_dir / "imported" / "10.5555").rglob("*.xml"))[:1] == [
        "batch.xml"]
    # Importing twice changes nothing.
    again = _import(other, exported)
    assert (again.handles_written, again.handles_kept, again.metadata_written) == (0, 3, 0)
    assert snapshot(other) == source
    # Precedence continues: an older or equal timestamp is refused there; a newer one updates.
    from agency.admin.accounts import set_password  # noqa: F401 (press has a password already)
    headers = basic_headers("press", "press-password")
    from agency.app import create_app

    client = create_app(agency=other).test_client()
    response = client.post("/v1/deposits", data=deposit_xml([Article("10.5555/x.1")], timestamp="20240201000000"),
                           headers=headers)
    other.worker.run_until_idle()
    records = client.get(response.headers["Location"], headers=headers).get_json()["records"]
    assert records[0]["status"] == "Failure" and "less or equal" in records[0]["msg"]
    response = client.post("/v1/deposits", data=deposit_xml([Article("10.5555/x.1")], timestamp="20240301000000"),
                           headers=headers)
    other.worker.run_until_idle()
    records = client.get(response.headers["Location"], headers=headers).get_json()["records"]
    assert records[0]["msg"] == "Successfully updated"


def _rewrite(source, target, replace=None, add=(), fix_manifest=True):
    """A copy of an archive with entries replaced/added, its manifest's checksums recomputed or not."""
    replace = replace or {}
    with zipfile.ZipFile(source) as zin:
        manifest = json.loads(zin.read("manifest.json"))
        contents = {i.filename: zin.read(i.filename) for i in zin.infolist() if i.filename != "manifest.json"}
    contents.update(replace)
    with zipfile.ZipFile(target, "w") as zout:
        for name, data in [*contents.items(), *add]:
            zout.writestr(name, data)
            if fix_manifest:
                manifest["entries"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        zout.writestr("manifest.json", json.dumps(manifest))
    return target


def _nothing_written(other):
    with other.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Handle)) == 0
        assert session.scalar(select(func.count()).select_from(Prefix)) == 0
        assert session.scalar(select(func.count()).select_from(MetadataRecord)) == 0
    assert not (other.settings.data_dir / "imported").exists()


def test_bad_archives_are_refused_before_anything_is_written(svc, other, exported, tmp_path):
    data = exported.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip at all")
    with zipfile.ZipFile(exported) as z:
        handles = z.read("handles.jsonl")
    first_line = handles.splitlines(keepends=True)[0]
    cases = {
        "truncated": (truncated, "not a readable archive"),
        "garbage": (garbage, "not a readable archive"),
        "escape": (_rewrite(exported, tmp_path / "escape.zip", add=[("batches/../../etc/evil", b"x")]),
                   "would escape the import folder"),
        "absolute": (_rewrite(exported, tmp_path / "abs.zip", add=[("/tmp/evil", b"x")]),
                     "would escape the import folder"),
        "duplicated handle": (_rewrite(exported, tmp_path / "dup.zip", replace={"handles.jsonl": handles + first_line}),
                              "appears twice"),
        "checksum": (_rewrite(exported, tmp_path / "sum.zip", replace={"handles.jsonl": handles.replace(
            base64.b64encode(b"https://example.org/v2"), base64.b64encode(b"https://evil.example/v2"))}, fix_manifest=False),
                     "does not match its checksum"),
        "unlisted": (_rewrite(exported, tmp_path / "unlisted.zip", add=[("extra.txt", b"x")], fix_manifest=False),
                     "does not match its manifest"),
        "bad line": (_rewrite(exported, tmp_path / "line.zip", replace={"handles.jsonl": b"{not json\n"}),
                     "handles.jsonl line 1 is not JSON"),
        "foreign handle": (_rewrite(exported, tmp_path / "foreign.zip", replace={"handles.jsonl": first_line.replace(
            b'"10.5555/', b'"10.6666/')}), "is not a handle of prefix 10.5555"),
    }
    for name, (path, message) in cases.items():
        with pytest.raises(ArchiveError, match=message):
            _import(other, path)
        _nothing_written(other)
    # Limits on entries and unpacked size.
    other.settings = other.settings.replace(archive_max_entries=3)
    with pytest.raises(ArchiveError, match="the limit is 3 \\(AGENCY_ARCHIVE_MAX_ENTRIES\\)"):
        _import(other, exported)
    other.settings = other.settings.replace(archive_max_entries=100, archive_max_bytes=100)
    with pytest.raises(ArchiveError, match="AGENCY_ARCHIVE_MAX_BYTES"):
        _import(other, exported)
    _nothing_written(other)


def test_a_prefix_served_here_for_someone_else_is_refused(svc, other, exported):
    add_account(other, "rival", "rival-password", "rival@example.org", ["10.5555"])
    with pytest.raises(ArchiveError, match="prefix 10.5555 is served here already, for account 'rival'"):
        _import(other, exported)
    with other.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Handle)) == 0


def test_export_import_and_served_elsewhere_through_the_cli(svc, client, exported, cli_env, capsys, tmp_path,
                                                            deposit):
    path = tmp_path / "again.zip"
    assert main(["export", "--prefix", "10.5555", str(path)]) == 0
    assert "exported 10.5555 to" in capsys.readouterr().out
    assert main(["export", "--prefix", "10.9999", str(path)]) == 2
    assert "prefix 10.9999 is not served here" in capsys.readouterr().err
    assert main(["import", str(path), "--account", "alice"]) == 0  # its own archive: nothing new
    assert "0 handle(s) written, 3 already as new or newer here" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "missing.zip"), "--account", "alice"]) == 2
    assert "nothing was imported" in capsys.readouterr().err
    assert main(["prefixes", "served-elsewhere", "10.5555", "--service", "Other RA (https://other.example)"]) == 0
    assert "served_elsewhere=None -> served_elsewhere=Other RA" in capsys.readouterr().out
    # Resolution answers as a Handle server does for a prefix it does not hold.
    response = client.get("/api/handles/10.5555/x.1")
    body = response.get_json()
    assert body["responseCode"] == 301 and "Other RA (https://other.example)" in body["message"]
    response = client.get("/10.5555/x.1")
    assert response.status_code == 404 and b"Other RA (https://other.example)" in response.data
    assert client.get("/10.32013/elsewhere").status_code == 302
    # Deposits under it are refused with that reason.
    _, records = deposit(deposit_xml([Article("10.5555/x.9")], timestamp="20250101000000"))
    assert records[0]["status"] == "Failure"
    assert records[0]["msg"] == ("Prefix 10.5555 has moved to another registration agency "
                                 "(Other RA (https://other.example)): deposit its DOIs there")
    with svc.db.transaction() as session:
        mark_served_elsewhere(session, OPS, "10.5555", None)
    assert client.get("/10.5555/x.1").status_code == 302
