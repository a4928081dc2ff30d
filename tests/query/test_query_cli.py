"""``agency query FILE``: answers a query file from the command line, clear errors otherwise."""

from __future__ import annotations

from querydata import index_journal

from agency.cli import main


def _environment(monkeypatch, settings) -> None:
    for name, value in (("DATA_DIR", settings.data_dir), ("BATCH_DIR", settings.batch_dir),
                        ("DATABASE_URL", settings.database_url)):
        monkeypatch.setenv(f"AGENCY_{name}", str(value))


def test_cli_answers_a_file(client, svc, alice, settings, tmp_path, monkeypatch, capsys):
    index_journal(client, svc)
    _environment(monkeypatch, settings)
    queries = tmp_path / "refs.txt"
    queries.write_text("|Journal of Tests|Smith|1||250|2024||a|\nb|10.5555/nothing\n")
    assert main(["query", str(queries)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["|Journal of Tests|Smith|1||250|2024||a|10.5555/jt.2",
                   "b|10.5555/nothing|NO_MATCH: 10.5555/nothing is not registered here"]


def test_cli_refuses_unreadable_files(svc, settings, tmp_path, monkeypatch, capsys):
    _environment(monkeypatch, settings)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("|Revista de F\xedsica|x|1||2|2001||k|\n".encode("latin-1"))
    assert main(["query", str(latin)]) == 2
    assert "not ASCII or UTF-8" in capsys.readouterr().err
    assert main(["query", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err
