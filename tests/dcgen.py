"""Small DataCite kernel-4 records written for tests."""

from __future__ import annotations

from xml.sax.saxutils import escape

KERNEL4 = "http://datacite.org/schema/kernel-4"
DATASET = '<resourceType resourceTypeGeneral="Dataset">Survey</resourceType>'


def record_xml(doi: str = "10.5555/dc-1", namespace: str = KERNEL4, extra: str = "",
               resource_type: str = DATASET, title: str = "A data set") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<resource xmlns="{namespace}">
  <identifier identifierType="DOI">{escape(doi)}</identifier>
  <creators><creator><creatorName nameType="Personal">Doe, Jane</creatorName>
    <givenName>Jane</givenName><familyName>Doe</familyName></creator></creators>
  <titles><title xml:lang="en">{escape(title)}</title></titles>
  <publisher>Agency Press</publisher>
  <publicationYear>2024</publicationYear>
  {resource_type}{extra}
</resource>""".encode()
