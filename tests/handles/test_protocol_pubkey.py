"""HS_PUBKEY challenge-response (RFC 3652 section 3.5): the prefix administrator's key pair instead of a secret.

Three referees: a client written here from the RFC (raw bytes, signatures made
with ``cryptography``), `agency prefixes pubkey` on the command line, and CNRI's
client library (``../shared/tools/hdl-client``) driven by ``java/hdlref/PubkeyAdmin.java``,
which generates the key pair and writes its public half with CNRI's own
``Util.getBytesFromPublicKey``, then creates, modifies and deletes handles
through CNRI's request encoding and challenge handling.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa

from agency.handles.prefix_records import PrefixRecordError, set_prefix_public_key
from agency.handles.public_keys import (
    KeyFormatError, decode_public_key, encode_public_key, load_public_key_file, signature_matches,
)
from agency.handles.store import handle_values
from agency.services import handle_audit
from hdl_wire import (  # noqa: F401
    HDL_CLIENT, handle_port, hdl_client, make_prefix_record, parse, request, tcp_exchange, text, u32, value_lines,
)
from test_prefix_records import agency, press  # noqa: F401

RC_SUCCESS, RC_NOT_AUTHORIZED, RC_AUTHEN_NEEDED, RC_AUTHEN_FAILED = 1, 400, 402, 403
DIGEST_SIZES = {1: 16, 2: 20, 3: 32}


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def dsa_key():
    return dsa.generate_private_key(key_size=2048)


def set_key(svc, public_key, prefix: str = "10.5555") -> None:
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with svc.db.transaction() as session:
        set_prefix_public_key(session, prefix, pem, actor="operator:test", audit=handle_audit)


# -- the key codec


def test_key_encodings_round_trip(rsa_key, dsa_key):
    for key in (rsa_key.public_key(), dsa_key.public_key()):
        encoded = encode_public_key(key)
        assert decode_public_key(encoded).public_numbers() == key.public_numbers()
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert load_public_key_file(pem) == load_public_key_file(der) == load_public_key_file(encoded) == encoded
    # The layout RFC 3651 / CNRI give: key type, two reserved octets, then the integers (RSA: exponent, modulus).
    raw = encode_public_key(rsa_key.public_key())
    assert raw[:4 + 11 + 2] == u32(11) + b"RSA_PUB_KEY" + b"\0\0"
    assert raw[17:17 + 4 + 3] == u32(3) + b"\x01\x00\x01"
    dsa_raw = encode_public_key(dsa_key.public_key())
    q = dsa_key.public_key().public_numbers().parameter_numbers.q
    assert dsa_raw[:17] == u32(11) + b"DSA_PUB_KEY" + b"\0\0"
    assert int.from_bytes(dsa_raw[21:21 + struct.unpack(">I", dsa_raw[17:21])[0]], "big") == q


@pytest.mark.parametrize("raw, message", [
    (b"", "4 bytes wanted, 0 left"),
    (u32(11) + b"EC_PUB_KEY!" + b"\0\0", "is not RSA_PUB_KEY or DSA_PUB_KEY"),
    (u32(11) + b"RSA_PUB_KEY" + b"\0\0" + u32(1) + b"\x03" + u32(0x7FFFFFFF), "outside"),
    (u32(11) + b"RSA_PUB_KEY" + b"\0\0" + u32(1) + b"\x03" + u32(2) + b"\x00\xc5", "too short"),
    (u32(11) + b"RSA_PUB_KEY" + b"\0\0" + u32(129) + b"\x01" * 129 + u32(257) + b"\x00" + b"\xc5" * 256,
     "exponent of 1025 bits is refused"),
    (u32(11) + b"DSA_PUB_KEY" + b"\0\0" + u32(1) + b"\x03" + u32(0), "p is empty"),
    (b"-----BEGIN PRIVATE KEY-----\nMII=\n-----END PRIVATE KEY-----\n", "private key"),
    (b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
    (b"\x30\x03\x02\x01\x01", "neither"),
])
def test_bad_key_files_are_refused(raw, message):
    with pytest.raises(KeyFormatError, match=message):
        load_public_key_file(raw)


def test_other_key_kinds_are_refused():
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyFormatError, match="RSA or DSA"):
        load_public_key_file(pem)


def test_signature_checks(rsa_key, dsa_key):
    nonce, digest = b"n" * 16, b"d" * 20
    rsa_public = encode_public_key(rsa_key.public_key())
    for name, hash_type in ((b"SHA1", hashes.SHA1), (b"SHA-256", hashes.SHA256), (b"\x03", hashes.SHA256)):
        signature = rsa_key.sign(nonce + digest, padding.PKCS1v15(), hash_type())
        assert signature_matches(rsa_public, nonce, digest, text(name) + text(signature))
        assert not signature_matches(rsa_public, nonce, b"e" * 20, text(name) + text(signature))
    signature = rsa_key.sign(nonce + digest, padding.PKCS1v15(), hashes.SHA1())
    assert not signature_matches(rsa_public, nonce, digest, text("SHA-256") + text(signature))  # hash named wrongly
    dsa_public = encode_public_key(dsa_key.public_key())
    assert signature_matches(dsa_public, nonce, digest, text("SHA256") + text(dsa_key.sign(nonce + digest,
                                                                                           hashes.SHA256())))
    assert not signature_matches(dsa_public, nonce, digest, text("SHA256") + text(b"\x30\x00"))
    with pytest.raises(KeyFormatError, match="not accepted"):
        signature_matches(rsa_public, nonce, digest, text("MD5") + text(b"x"))
    with pytest.raises(KeyFormatError):
        signature_matches(rsa_public, nonce, digest, text("SHA1"))  # no signature


# -- a client written from the RFC, on the wire


def _create(handle: str) -> bytes:
    value = struct.pack(">iIBiB", 1, 0, 0, 86400, 0x0E) + text("URL") + text("https://example.org/pk") + u32(0)
    return request(100, text(handle) + u32(1) + value, request_id=21)


def _challenge(port: int, data: bytes) -> tuple[int, bytes, bytes]:
    """Session id, nonce and request digest (without its type octet) of the server's challenge."""
    challenge = parse(tcp_exchange(port, data))
    assert challenge["rc"] == RC_AUTHEN_NEEDED
    body = challenge["body"]
    size = DIGEST_SIZES[body[0]]
    digest = body[1:1 + size]
    assert digest == {2: hashlib.sha1, 3: hashlib.sha256, 1: hashlib.md5}[body[0]](data[20:-4]).digest()
    length = struct.unpack(">I", body[1 + size:5 + size])[0]
    return challenge["session"], body[5 + size:5 + size + length], digest


def _answer(port: int, session: int, signed: bytes, index: int = 300, auth_type: str = "HS_PUBKEY") -> dict:
    body = text(auth_type) + text("0.NA/10.5555") + u32(index) + text(signed)
    return parse(tcp_exchange(port, request(200, body, session=session, request_id=22)))


def _rsa_answer(key, nonce: bytes, digest: bytes, hash_name: str = "SHA-256") -> bytes:
    hash_type = hashes.SHA256 if "256" in hash_name else hashes.SHA1
    return text(hash_name) + text(key.sign(nonce + digest, padding.PKCS1v15(), hash_type()))


def test_rfc_client_creates_with_an_rsa_key(client, svc, alice, handle_port, rsa_key):
    make_prefix_record(svc)
    set_key(svc, rsa_key.public_key())
    session, nonce, digest = _challenge(handle_port, _create("10.5555/pk.1"))
    done = _answer(handle_port, session, _rsa_answer(rsa_key, nonce, digest))
    assert done["rc"] == RC_SUCCESS and done["op"] == 100
    with svc.db.sessions() as s:
        assert [v.data for v in handle_values(s, "10.5555/pk.1") if v.index == 1] == [b"https://example.org/pk"]
    # The public key is public: an anonymous resolution of the prefix record shows it.
    values = {v["index"]: v for v in client.get("/api/handles/0.NA/10.5555").get_json()["values"]}
    assert values[300]["type"] == "HS_PUBKEY"


def test_rfc_client_with_a_dsa_key_and_sha1(client, svc, alice, handle_port, dsa_key):
    make_prefix_record(svc)
    set_key(svc, dsa_key.public_key())
    session, nonce, digest = _challenge(handle_port, _create("10.5555/pk.2"))
    signed = text("SHA1") + text(dsa_key.sign(nonce + digest, hashes.SHA1()))
    assert _answer(handle_port, session, signed)["rc"] == RC_SUCCESS


def test_wrong_keys_and_answers_fail(client, svc, alice, handle_port, rsa_key, dsa_key):
    make_prefix_record(svc)
    set_key(svc, rsa_key.public_key())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        lambda nonce, digest: _rsa_answer(other, nonce, digest),  # another key pair
        lambda nonce, digest: _rsa_answer(rsa_key, nonce[::-1], digest),  # another nonce
        lambda nonce, digest: _rsa_answer(rsa_key, nonce, digest, "MD5"),  # a refused hash
        lambda nonce, digest: text(b"SHA-256") + u32(0xFFFFFFF0),  # a length past the end
        lambda nonce, digest: text("SHA-256") + text(dsa_key.sign(nonce + digest, hashes.SHA256())),  # wrong kind
    ]
    for n, make in enumerate(cases):
        session, nonce, digest = _challenge(handle_port, _create(f"10.5555/bad.{n}"))
        assert _answer(handle_port, session, make(nonce, digest))["rc"] == RC_AUTHEN_FAILED, n
    # A good signature that names the key as a secret key (HS_SECKEY at 300 does not exist any more).
    session, nonce, digest = _challenge(handle_port, _create("10.5555/bad.x"))
    assert _answer(handle_port, session, _rsa_answer(rsa_key, nonce, digest), auth_type="HS_SECKEY")["rc"] \
        == RC_AUTHEN_FAILED
    with svc.db.sessions() as s:
        assert all(not handle_values(s, f"10.5555/bad.{n}") for n in range(len(cases)))


def test_a_key_not_named_by_hs_admin_is_not_authorized(client, svc, alice, handle_port, rsa_key):
    make_prefix_record(svc)
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    with svc.db.transaction() as s:
        set_prefix_public_key(s, "10.5555", pem, actor="operator:test", index=301)  # not in the HS_VLIST at 200
    session, nonce, digest = _challenge(handle_port, _create("10.5555/pk.3"))
    assert _answer(handle_port, session, _rsa_answer(rsa_key, nonce, digest), index=301)["rc"] == RC_NOT_AUTHORIZED


# -- agency prefixes pubkey


def test_cli_sets_a_public_key_replacing_the_secret(press, svc, tmp_path, rsa_key):
    assert agency(press, "prefixes", "create", "10.5555", "--account", "press").returncode == 0
    assert agency(press, "prefixes", "secret", "10.5555", stdin="a-very-secret-key\n").returncode == 0
    pem = tmp_path / "admpub.pem"
    pem.write_bytes(rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    done = agency(press, "prefixes", "pubkey", "10.5555", str(pem))
    assert done.returncode == 0, done.stderr
    assert "public key (RSA_PUB_KEY) set at 300:0.NA/10.5555" in done.stdout
    assert agency(press, "prefixes", "create", "10.5555", "--account", "press").returncode == 0  # key kept
    with svc.db.sessions() as session:
        keys = [v for v in handle_values(session, "0.NA/10.5555") if v.index == 300]
    assert [(k.type, k.public_read) for k in keys] == [("HS_PUBKEY", True)]
    assert decode_public_key(keys[0].data).public_numbers() == rsa_key.public_key().public_numbers()
    private = tmp_path / "admpriv.pem"
    private.write_bytes(rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    refused = agency(press, "prefixes", "pubkey", "10.5555", str(private))
    assert refused.returncode == 2 and "that is a private key" in refused.stderr
    missing = agency(press, "prefixes", "pubkey", "10.5555", str(tmp_path / "nope.pem"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    no_record = agency(press, "prefixes", "pubkey", "10.7777", str(pem))
    assert no_record.returncode == 2 and "no prefix record yet" in no_record.stderr


def test_public_key_needs_a_prefix_record(svc, rsa_key):
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(PrefixRecordError, match="no prefix record yet"), svc.db.transaction() as session:
        set_prefix_public_key(session, "10.4444", pem, actor="operator:test")


# -- CNRI's client library


@pytest.fixture(scope="module")
def cnri_pubkey(tmp_path_factory):
    """Run java/hdlref/PubkeyAdmin.java (compiled here) against CNRI's library."""
    if not (HDL_CLIENT / "lib" / "hdlclient.jar").is_file():
        pytest.skip(f"CNRI hdl-client not found at {HDL_CLIENT} (../shared is absent)")
    if shutil.which("java") is None or shutil.which("javac") is None:
        pytest.skip("java and javac are needed for the CNRI public-key checks")
    folder = tmp_path_factory.mktemp("pubkey-admin")
    lib = HDL_CLIENT / "lib"
    classpath = ":".join(str(lib / name) for name in ("hdlclient.jar", "gson-2.10.1.jar", "commons-codec-1.11.jar"))
    source = Path(__file__).parent / "java" / "hdlref" / "PubkeyAdmin.java"
    built = subprocess.run(["javac", "-d", str(folder), "-cp", classpath, str(source)], capture_output=True,
                           text=True, timeout=120)
    assert built.returncode == 0, built.stderr

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp",
                               f"{folder}:{classpath}", "hdlref.PubkeyAdmin", *args],
                              capture_output=True, text=True, timeout=60)
    return run, folder


@pytest.mark.slow
@pytest.mark.parametrize("algorithm, bits", [("RSA", "2048"), ("DSA", "1024")])
def test_cnri_client_administers_with_a_private_key(cnri_pubkey, hdl_client, client, svc, alice, handle_port,
                                                    algorithm, bits):
    run, folder = cnri_pubkey
    private, public = folder / f"{algorithm}.der", folder / f"{algorithm}.pub.bin"
    made = run("keygen", algorithm, bits, str(private), str(public))
    assert made.returncode == 0, made.stdout + made.stderr
    make_prefix_record(svc)
    with svc.db.transaction() as session:  # CNRI's own HS_PUBKEY encoding, read as a key file
        set_prefix_public_key(session, "10.5555", public.read_bytes(), actor="operator:test")
    at = ["127.0.0.1", str(handle_port), "0.NA/10.5555", "300", str(private)]
    handle = f"10.5555/cnri-{algorithm.lower()}"
    expected = {"2.6": f"SHA1with{algorithm}", "2.11": f"SHA256with{algorithm}"}
    for version, signature in expected.items():
        created = run("create", *at, version, f"{handle}-{version}", "1:URL:https://example.org/created")
        assert created.returncode == 0, created.stdout + created.stderr
        assert f"signature\t{signature}" in created.stdout
        modified = run("modify", *at, version, f"{handle}-{version}", "1:URL:https://example.org/modified")
        assert modified.returncode == 0, modified.stdout + modified.stderr
        resolved = hdl_client("resolve", "--host", "127.0.0.1", "--port", str(handle_port), f"{handle}-{version}")
        assert value_lines(resolved.stdout)[1][2] == "https://example.org/modified"
        assert run("delete", *at, version, f"{handle}-{version}").returncode == 0
        gone = hdl_client("resolve", "--host", "127.0.0.1", "--port", str(handle_port), f"{handle}-{version}")
        assert gone.stdout.startswith("responseCode\t100\t")
    # Another key pair, same names: refused, and nothing is created.
    run("keygen", algorithm, bits, str(folder / "other.der"), str(folder / "other.pub.bin"))
    refused = run("create", "127.0.0.1", str(handle_port), "0.NA/10.5555", "300", str(folder / "other.der"), "2.11",
                  f"{handle}-x", "1:URL:https://example.org/x")
    assert refused.returncode == 1 and "responseCode\t403" in refused.stdout, refused.stdout  # RC_AUTHEN_FAILED
    with svc.db.sessions() as session:
        assert not handle_values(session, f"{handle}-x")
