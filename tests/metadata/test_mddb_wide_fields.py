"""Records with very wide fields are read whole, and the records around them too."""

from __future__ import annotations

from agency.metadata.extraction import WIDE_ELEMENT_CHILDREN, BatchMetadataReader
from batchgen import Article, deposit_xml


def test_a_title_of_many_inline_elements_is_read_whole_and_the_next_records_too(tmp_path):
    inline = WIDE_ELEMENT_CHILDREN * 40
    data = deposit_xml([Article("10.5555/w.1", title="WIDE"), Article("10.5555/w.2", title="Second"),
                        Article("10.5555/w.3", title="Third")])
    data = data.replace(b"<title>WIDE</title>", b"<title>A" + b" <i>x</i>" * inline + b" Z</title>", 1)
    path = tmp_path / "wide.xml"
    path.write_bytes(data)
    records = list(BatchMetadataReader(path))
    assert [r.doi for r in records] == ["10.5555/w.1", "10.5555/w.2", "10.5555/w.3"]
    assert records[0].title == "A " + "x " * inline + "Z"
    assert [r.title for r in records[1:]] == ["Second", "Third"]
    assert all(r.journal_title == "Journal of Tests" and r.volume == "1" for r in records)
