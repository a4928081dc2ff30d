"""Small Crossref-style deposits written for tests (journal articles, any namespace version)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from xml.sax.saxutils import escape


@dataclass
class Article:
    doi: str
    url: str = ""
    timestamp: str | None = None
    title: str = "A study of things"
    surname: str = "Smith"
    first_page: str = ""  # default: a page of its own, from the DOI (identical citations are "with conflict")

    def __post_init__(self):
        if not self.first_page:
            self.first_page = str(1 + zlib.crc32(self.doi.lower().encode()))
        if not self.url:
            self.url = "https://example.org/articles/" + self.doi.split("/", 1)[-1]


def deposit_xml(articles: list[Article], timestamp: str = "20240101000000", version: str = "5.3.0",
                batch_id: str = "batch-1", email: str = "depositor@example.org",
                issn: str | None = None, journal: str = "Journal of Tests",
                articles_per_journal: int = 5_000) -> bytes:
    """A Crossref 5.x deposit of ``articles``, in one ``<journal>`` body item per ``articles_per_journal``
    (each well under AGENCY_MAX_BODY_ITEM_BYTES, as a registrant puts one issue in each)."""
    issn = issn or issn_of_prefix(articles[0].doi.split("/", 1)[0] if articles else "10.5555")
    items = []
    for a in articles:
        ts = f"\n          <timestamp>{escape(a.timestamp)}</timestamp>" if a.timestamp is not None else ""
        items.append(f"""      <journal_article publication_type="full_text">
        <titles><title>{escape(a.title)}</title></titles>
        <contributors>
          <person_name contributor_role="author" sequence="first"><given_name>Ann</given_name><surname>{escape(a.surname)}</surname></person_name>
        </contributors>
        <publication_date media_type="online"><year>2024</year></publication_date>
        <pages><first_page>{escape(a.first_page)}</first_page></pages>
        <doi_data>
          <doi>{escape(a.doi)}</doi>{ts}
          <resource>{escape(a.url)}</resource>
        </doi_data>
      </journal_article>""")
    containers = [f"""    <journal>
      <journal_metadata language="en"><full_title>{escape(journal)}</full_title><issn media_type="electronic">{issn}</issn></journal_metadata>
      <journal_issue><publication_date media_type="online"><year>2024</year></publication_date><journal_volume><volume>1</volume></journal_volume><issue>1</issue></journal_issue>
{chunk}
    </journal>""" for chunk in ("\n".join(items[n:n + articles_per_journal])
                              for n in range(0, max(1, len(items)), articles_per_journal))]
    body = "\n".join(containers)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<doi_batch xmlns="http://www.crossref.org/schema/{version}" version="{version}">
  <head>
    <doi_batch_id>{escape(batch_id)}</doi_batch_id>
    <timestamp>{timestamp}</timestamp>
    <depositor><depositor_name>Test Press</depositor_name><email_address>{escape(email)}</email_address></depositor>
    <registrant>Test Press</registrant>
  </head>
  <body>
{body}
  </body>
</doi_batch>
""".encode()


def issn_of_prefix(prefix: str) -> str:
    """The test journal's ISSN for a prefix: 1234-5679 for 10.5555, another valid one for each other prefix,
    so that each test account deposits its own journal (title records have one owner)."""
    if prefix == "10.5555":
        return "1234-5679"
    digits = f"{int(''.join(c for c in prefix if c.isdigit()) or 0) % 10_000_000:07d}"
    rest = (11 - sum(int(d) * w for d, w in zip(digits, range(8, 1, -1))) % 11) % 11
    return f"{digits[:4]}-{digits[4:]}{'X' if rest == 10 else rest}"


def many(prefix: str, count: int, start: int = 1, **kwargs) -> list[Article]:
    """``count`` articles ``prefix/test.N``."""
    return [Article(f"{prefix}/test.{i}", **kwargs) for i in range(start, start + count)]


GRANT_DOI_DATA = "<doi_data><doi>10.5555/g</doi><resource>https://example.org/g</resource></doi_data>"


def grant_xml(version: str = "0.1.1", timestamp: str = "20210720030518", doi_data: str = GRANT_DOI_DATA) -> str:
    """A one-grant deposit in namespace http://www.crossref.org/grant_id/<version>."""
    return f"""<doi_batch xmlns="http://www.crossref.org/grant_id/{version}" version="{version}">
  <head>
    <doi_batch_id>g1</doi_batch_id><timestamp>{timestamp}</timestamp>
    <depositor><depositor_name>F</depositor_name><email_address>f@example.org</email_address></depositor>
    <registrant>F</registrant>
  </head>
  <body>
    <grant>
      <project><project-title>T</project-title><funding><funder-name>F</funder-name></funding></project>
      <award-number>A-1</award-number>
      {doi_data}
    </grant>
  </body>
</doi_batch>"""
