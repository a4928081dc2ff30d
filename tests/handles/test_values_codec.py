"""The RFC 3651 value codec: round trips, the byte layout, and refusal of hostile lengths and counts."""

from __future__ import annotations

import struct

import pytest

from agency.handles.values import (
    ADD_HANDLE, ALL_ADMIN_PERMISSIONS, LIST_HANDLES, SP_HDL_TCP, SP_HDL_UDP, ST_ADMIN_AND_QUERY, AdminRecord,
    HandleValue, Interface, Reader, Reference, ServerRecord, SiteInfo, ValueFormatError, decode_rsa_public_key,
    decode_vlist, encode_rsa_public_key, encode_vlist, select_values,
)


def test_value_layout_is_rfc_3652_section_2_2_3():
    value = HandleValue(1, "URL", b"https://x", ttl=3600, timestamp=1_700_000_000,
                        references=(Reference("0.NA/10.5555", 200),))
    raw = value.encode()
    # index, timestamp, TTL type, TTL, permissions (admin read+write, public read = 0x0e)
    assert raw[:14] == struct.pack(">iIBiB", 1, 1_700_000_000, 0, 3600, 0x0E)
    assert raw[14:21] == b"\0\0\0\x03URL"
    assert raw[21:34] == b"\0\0\0\x09https://x"
    assert raw[34:38] == b"\0\0\0\x01"
    assert HandleValue.decode(raw) == value


def test_permissions_round_trip():
    secret = HandleValue(300, "HS_SECKEY", b"k", public_read=False, public_write=False)
    assert secret.permissions == 0x0C
    assert HandleValue.decode(secret.encode()) == secret


def test_admin_record_and_permission_string():
    admin = AdminRecord("0.NA/10.5555", 200, ALL_ADMIN_PERMISSIONS)
    assert admin.encode() == b"\x0f\xff" + b"\0\0\0\x0c0.NA/10.5555" + b"\0\0\0\xc8"
    assert AdminRecord.decode(admin.encode()) == admin
    assert admin.permission_string == "111111111111"
    only_add = AdminRecord("x/y", 300, ADD_HANDLE)
    assert only_add.permission_string == "000000000001"
    assert AdminRecord.parse_permission_string("100000000000") == LIST_HANDLES
    with pytest.raises(ValueFormatError):
        AdminRecord.parse_permission_string("12")


def test_vlist_round_trip():
    refs = [Reference("0.NA/10.5555", 300), Reference("10.5555/admin", 301)]
    assert decode_vlist(encode_vlist(refs)) == refs
    assert decode_vlist(encode_vlist([])) == []


def test_site_info_round_trip():
    site = SiteInfo(serial=7, attributes=(("desc", "agency"),), servers=(
        ServerRecord(1, ServerRecord.address_bytes("127.0.0.1"), encode_rsa_public_key(65537, 12345678901234567),
                     (Interface(ST_ADMIN_AND_QUERY, SP_HDL_TCP, 2641), Interface(ST_ADMIN_AND_QUERY, SP_HDL_UDP, 2641))),
    ))
    raw = site.encode()
    assert raw[:8] == b"\0\x01\x02\x0b\0\x07\x80\0"
    decoded = SiteInfo.decode(raw)
    assert decoded == site
    assert decoded.servers[0].address[-4:] == bytes([127, 0, 0, 1])
    assert decode_rsa_public_key(decoded.servers[0].public_key) == (65537, 12345678901234567)


def test_type_filters_and_hierarchies():
    values = [HandleValue(1, "URL", b""), HandleValue(2, "URL.mirror", b""), HandleValue(100, "HS_ADMIN", b""),
              HandleValue(200, "HS_VLIST", b""), HandleValue(5, "EMAIL", b"")]
    assert [v.index for v in select_values(values, types=["url"])] == [1]
    assert [v.index for v in select_values(values, types=["HS_"])] == []
    assert [v.index for v in select_values(values, types=["HS_."])] == []  # "HS_" is no type of its own
    assert [v.index for v in select_values(values, types=["URL."])] == [1, 2]
    assert [v.index for v in select_values(values, indexes=[5], types=["HS_ADMIN"])] == [100, 5]
    assert select_values(values) == values


@pytest.mark.parametrize("raw", [
    b"",  # nothing at all
    b"\0\0\0\x01" * 3,  # header cut short
    struct.pack(">iIBiB", 1, 0, 0, 1, 0x0E) + b"\x7f\xff\xff\xff",  # type length past the end
    struct.pack(">iIBiB", 1, 0, 0, 1, 0x0E) + b"\xff\xff\xff\xff",  # negative type length
    struct.pack(">iIBiB", 1, 0, 0, 1, 0x0E) + b"\0\0\0\x02\xff\xfe" + b"\0\0\0\0" + b"\0\0\0\0",  # type not UTF-8
    struct.pack(">iIBiB", 1, 0, 0, 1, 0x0E) + b"\0\0\0\x01U" + b"\0\0\0\0" + b"\x7f\xff\xff\xff",  # huge ref count
    struct.pack(">iIBiB", 1, 0, 0, 1, 0x0E) + b"\0\0\0\x01U" + b"\0\0\0\0" + b"\xff\xff\xff\xff",  # negative count
    struct.pack(">iIBiB", 1, 0, 9, 1, 0x0E) + b"\0\0\0\x01U" + b"\0\0\0\0" + b"\0\0\0\0",  # unknown TTL type
    HandleValue(1, "URL", b"x").encode() + b"junk",  # trailing bytes
])
def test_malformed_values_are_refused(raw):
    with pytest.raises(ValueFormatError):
        HandleValue.decode(raw)


def test_hostile_counts_cost_nothing():
    with pytest.raises(ValueFormatError):
        decode_vlist(b"\x7f\xff\xff\xff")
    with pytest.raises(ValueFormatError):
        Reader(b"\0\0\0\x05abc").blob(100)
    with pytest.raises(ValueFormatError):
        SiteInfo.decode(b"\0\x01\x02\x0b\0\x07\x80\0" + b"\0\0\0\0" + b"\0\0\0\0" + b"\x00\x10\x00\x00")
