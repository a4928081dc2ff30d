"""DataCite's own Python client (the `datacite` package's DataCiteMDSClient, unchanged but for its URL)
against a real agency server process."""

from __future__ import annotations

import re

import pytest
from datacite import DataCiteMDSClient
from datacite.errors import DataCiteBadRequestError, DataCiteForbiddenError, DataCiteNotFoundError

from dcgen import record_xml
from live_server import agency_env, start_server


@pytest.fixture
def server(tmp_path, database_url):
    live = start_server(agency_env(tmp_path, database_url), "--demo")
    yield live
    live.stop()


def demo_client(server) -> tuple[DataCiteMDSClient, str]:
    line = next(line for line in server.output if line.startswith("demo account"))
    login, password = re.search(r"login '([^']+)', password '([^']+)'", line).groups()
    prefix = re.search(r"prefix (10\.[0-9.]+)", line).group(1)
    return DataCiteMDSClient(username=login, password=password, prefix=prefix, url=server.url + "/mds/",
                             timeout=30), prefix


def test_datacite_client_registers_mints_reads_lists_hides_and_deletes_drafts(server):
    client, prefix = demo_client(server)
    doi, draft = f"{prefix}/DC-LIVE-1", f"{prefix}/dc-live-draft"
    assert client.metadata_post(record_xml(doi).decode()) == f"OK ({doi})"
    assert client.doi_post(doi, "https://data.example.org/live-1") == "OK"
    assert client.doi_get(doi) == "https://data.example.org/live-1"
    assert client.metadata_get(doi) == record_xml(doi).decode()
    assert client.media_post(doi, {"application/pdf": "https://data.example.org/live-1.pdf"}) == "OK"
    assert client.media_get(doi) == {"application/pdf": "https://data.example.org/live-1.pdf"}

    assert client.metadata_post(record_xml(draft).decode()) == f"OK ({draft})"
    listing = client._create_request().get("doi")  # the package's own request class: no list method
    assert listing.status_code == 200 and listing.text.split() == [doi]

    assert client.metadata_delete(doi) == "OK"  # hidden, still resolves
    assert client.doi_get(doi) == "https://data.example.org/live-1"
    assert client._create_request().delete("doi/" + draft).status_code == 200
    with pytest.raises(DataCiteNotFoundError):
        client.metadata_get(draft)
    assert client._create_request().delete("doi/" + doi).status_code == 405


def test_datacite_client_sees_refusals(server):
    client, prefix = demo_client(server)
    with pytest.raises(DataCiteBadRequestError) as bad:
        client.metadata_post("<resource>")
    assert "well-formed" in str(bad.value)
    with pytest.raises(DataCiteForbiddenError):
        client.metadata_post(record_xml("10.9999/not-ours").decode())
    with pytest.raises(DataCiteBadRequestError):
        client.metadata_post(record_xml(namespace="http://datacite.org/schema/kernel-3").decode())
