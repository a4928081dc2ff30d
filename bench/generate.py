"""Crossref-style journal deposits of any size, for benchmarks (streamed to a file)."""

from __future__ import annotations

import random
from pathlib import Path
from xml.sax.saxutils import escape

WORDS = ("analysis quantum protein cell dynamics model network climate river soil neural gene signal "
         "structure thermal ocean matrix catalyst enzyme lattice spectral memory cortex tissue").split()
SURNAMES = ("Smith Müller García Chen Okafor Novák Rossi Tanaka Kowalski Dubois Silva Ivanova Haddad "
            "Johansson O'Brien Nguyen Patel Kim Schmidt Costa").split()
GIVEN = "Ana Ben Chloé Dmitri Eun Farah Gustav Hiro Inès Jonas Kofi Lena Mateo Nadia Omar".split()


def write_batch(path: Path, records: int, prefix: str = "10.5555", seed: int = 1,
                timestamp: str = "20240101000000", articles_per_issue: int = 50,
                batch_id: str | None = None) -> list[str]:
    """Write a journal deposit of ``records`` articles; returns their DOIs in document order."""
    rnd = random.Random(seed)
    dois: list[str] = []
    with open(path, "w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n'
                  '<doi_batch xmlns="http://www.crossref.org/schema/5.3.0" version="5.3.0">\n'
                  f"  <head>\n    <doi_batch_id>{batch_id or f'bench-{seed}-{records}'}</doi_batch_id>\n"
                  f"    <timestamp>{timestamp}</timestamp>\n"
                  "    <depositor><depositor_name>Bench</depositor_name>"
                  "<email_address>bench@example.org</email_address></depositor>\n"
                  "    <registrant>Bench Press</registrant>\n  </head>\n  <body>\n")
        n, volume = 0, 1
        while n < records:
            out.write("    <journal>\n      <journal_metadata><full_title>Journal of Benchmarks</full_title>"
                      '<issn media_type="electronic">1234-5679</issn></journal_metadata>\n'
                      "      <journal_issue><publication_date media_type=\"online\"><year>2024</year>"
                      f"</publication_date><journal_volume><volume>{volume}</volume></journal_volume>"
                      "<issue>1</issue></journal_issue>\n")
            page = 1
            for _ in range(min(articles_per_issue, records - n)):
                n += 1
                title = " ".join(rnd.choice(WORDS) for _ in range(rnd.randrange(4, 10))).capitalize()
                last = page + rnd.randrange(3, 20)
                out.write('      <journal_article publication_type="full_text">\n'
                          f"        <titles><title>{escape(title)}</title></titles>\n        <contributors>")
                for k in range(rnd.randrange(1, 5)):
                    out.write(f'<person_name contributor_role="author" sequence="{"first" if k == 0 else "additional"}">'
                              f"<given_name>{rnd.choice(GIVEN)}</given_name>"
                              f"<surname>{escape(rnd.choice(SURNAMES))}</surname></person_name>")
                out.write("</contributors>\n"
                          f'        <publication_date media_type="online"><year>2024</year></publication_date>\n'
                          f"        <pages><first_page>{page}</first_page><last_page>{last}</last_page></pages>\n"
                          f"        <doi_data><doi>{prefix}/bench.{seed}.{n}</doi>"
                          f"<resource>https://example.org/articles/{seed}/{n}</resource></doi_data>\n"
                          "      </journal_article>\n")
                page = last + 1
                dois.append(f"{prefix}/bench.{seed}.{n}")
            out.write("    </journal>\n")
            volume += 1
        out.write("  </body>\n</doi_batch>\n")
    return dois
