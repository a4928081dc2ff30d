"""Resolution encodes stored rows straight to the wire: the same octets as decoding them into values and encoding."""

from __future__ import annotations

from batchgen import Article

from agency.handles.editing import HandleEditor
from agency.handles.protocol.directory import StoreDirectory
from agency.handles.values import HandleValue, Reference
from hdl_wire import make_prefix_record
from resolve_data import register


def test_encoded_rows_match_the_value_codec(client, svc, alice):
    register(client, svc, [Article("10.5555/Enc.1", url="https://example.org/enc")])  # HS_ADMIN derived
    make_prefix_record(svc)  # stored HS_ADMIN values, a secret key that is not public
    with svc.db.transaction() as session:
        HandleEditor(session, "operator:test").create("10.5555/enc.2", [
            HandleValue(1, "URL", b"https://example.org/2", 3600, timestamp=1_700_000_000),
            HandleValue(2, "EMAIL", b"hidden@example.org", public_read=False),
            HandleValue(7, "HS_ALIAS", b"10.5555/enc.1", 60, ttl_type=1, references=(Reference("10.5555/enc.1", 1),
                                                                                     Reference("0.NA/10.5555", 200)),
                        public_write=True),
        ])
    directory = StoreDirectory(svc.db, svc.settings.handle_ttl)
    for handle in ("10.5555/ENC.1", "10.5555/enc.2", "0.NA/10.5555", "0.NA/10.5555".lower()):
        values = directory.values(handle)
        expected = [(v.index, v.type, v.encode()) for v in values if v.public_read]
        assert directory.public_values_encoded(handle) == expected, handle
    derived = directory.public_values_encoded("10.5555/enc.1")
    assert [(i, t) for i, t, _ in derived] == [(1, "URL"), (100, "HS_ADMIN")]
    assert [i for i, _, _ in directory.public_values_encoded("10.5555/enc.2")] == [1, 7, 100]
    assert 300 not in [i for i, _, _ in directory.public_values_encoded("0.NA/10.5555")]
    assert directory.public_values_encoded("10.5555/none") is None
