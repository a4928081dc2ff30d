"""HS_PUBKEY values (RFC 3651 section 3.2.4) as key objects, and signatures made with them (RFC 3652 section 3.5).

Handle's own key encoding is ``key type`` (UTF-8 string) then 2 reserved
octets, then the key's integers as length-prefixed two's-complement byte
strings (Java's ``BigInteger.toByteArray``):

* ``RSA_PUB_KEY``: exponent, modulus;
* ``DSA_PUB_KEY``: q, p, g, y.

(CNRI's library writes 4 zero octets after an RSA key; they are accepted and kept as given.)

Those are the two kinds CNRI's client library writes for an administrator's
key (``Util.getBytesFromPublicKey``) and signs with. A public key file given to
``agency prefixes pubkey`` may be in that encoding (CNRI's ``admpub.bin``) or
in PEM / DER (SubjectPublicKeyInfo).

A public-key challenge answer is ``hash algorithm`` (UTF-8 string) then the
signature (length-prefixed) over ``nonce || request digest``. The hash
algorithm names CNRI's client sends are ``SHA1`` (protocol 2.1 to 2.6, and DSA
keys below 2.11) and ``SHA-256`` (2.7 and up); ``SHA-1`` and ``SHA256`` are
accepted as spellings, and the one-octet codes 2 (SHA-1) and 3 (SHA-256) as
CNRI's server accepts them. MD5 is refused. RSA signatures are PKCS #1 v1.5;
DSA signatures are the DER sequence of r and s.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa

from agency.handles.values import Reader, ValueFormatError, blob, text

RSA_PUBLIC, DSA_PUBLIC = "RSA_PUB_KEY", "DSA_PUB_KEY"
MAX_INTEGER_BYTES = 2048  # 16,384-bit numbers: far above any key in use, bounded so a value cannot cost much
MIN_RSA_BITS, MIN_DSA_BITS = 1024, 1024
MAX_RSA_EXPONENT_BITS = 64  # 65537 in practice; a huge exponent would make every check cost a long computation
HASHES = {b"SHA1": hashes.SHA1, b"SHA-1": hashes.SHA1, b"SHA-256": hashes.SHA256, b"SHA256": hashes.SHA256,
          b"\x02": hashes.SHA1, b"\x03": hashes.SHA256}
MAX_SIGNATURE_BYTES = 4096


class KeyFormatError(ValueError):
    """Bytes that are not a public key we accept (the message says why)."""


def _signed_bytes(n: int) -> bytes:
    return n.to_bytes(n.bit_length() // 8 + 1, "big")


def _integer(reader: Reader, what: str) -> int:
    raw = reader.blob(MAX_INTEGER_BYTES, what)
    if not raw:
        raise ValueFormatError(f"{what} is empty")
    return int.from_bytes(raw, "big", signed=True)


def _finish(reader: Reader) -> None:
    """The end of a key: CNRI's ``Util.getBytesFromPublicKey`` leaves 4 zero octets after an RSA key (its buffer
    is sized for one integer more than it writes), and its reader ignores them; so do we, and nothing else."""
    if reader.remaining == 4 and reader.data[reader.offset:reader.end] == b"\0\0\0\0":
        reader.take(4)
    reader.finish("public key")


def encode_public_key(key) -> bytes:
    """Handle's HS_PUBKEY encoding of an RSA or DSA public key (a ``cryptography`` key object)."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return text(RSA_PUBLIC) + b"\0\0" + blob(_signed_bytes(numbers.e)) + blob(_signed_bytes(numbers.n))
    if isinstance(key, dsa.DSAPublicKey):
        numbers = key.public_numbers()
        params = numbers.parameter_numbers
        return (text(DSA_PUBLIC) + b"\0\0" + blob(_signed_bytes(params.q)) + blob(_signed_bytes(params.p))
                + blob(_signed_bytes(params.g)) + blob(_signed_bytes(numbers.y)))
    raise KeyFormatError(f"{type(key).__name__} keys cannot be used here: give an RSA or DSA key")


def decode_public_key(raw: bytes):
    """The RSA or DSA public key an HS_PUBKEY value holds (raises KeyFormatError)."""
    kind = ""
    try:
        reader = Reader(raw)
        kind = reader.text(64, "key type")
        reader.take(2, "reserved octets")
        if kind == RSA_PUBLIC:
            exponent, modulus = _integer(reader, "exponent"), _integer(reader, "modulus")
            _finish(reader)
            if modulus.bit_length() < MIN_RSA_BITS:
                raise KeyFormatError(f"an RSA key of {modulus.bit_length()} bits is too short")
            if exponent.bit_length() > MAX_RSA_EXPONENT_BITS:
                raise KeyFormatError(f"an RSA public exponent of {exponent.bit_length()} bits is refused")
            return rsa.RSAPublicNumbers(exponent, modulus).public_key()
        if kind == DSA_PUBLIC:
            q, p, g, y = (_integer(reader, name) for name in ("q", "p", "g", "y"))
            _finish(reader)
            if p.bit_length() < MIN_DSA_BITS:
                raise KeyFormatError(f"a DSA key of {p.bit_length()} bits is too short")
            return dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(p, q, g)).public_key()
    except KeyFormatError:
        raise
    except ValueFormatError as exc:
        raise KeyFormatError(str(exc)) from None
    except ValueError as exc:  # numbers cryptography refuses (even modulus, g out of range ...)
        raise KeyFormatError(f"not a usable {kind} key: {exc}") from None
    raise KeyFormatError(f"key type {kind[:40]!r} is not {RSA_PUBLIC} or {DSA_PUBLIC}")


def load_public_key_file(raw: bytes) -> bytes:
    """The HS_PUBKEY encoding of a public key file: PEM, DER (SubjectPublicKeyInfo) or Handle's own encoding."""
    if raw.lstrip().startswith(b"-----BEGIN"):
        if b"PRIVATE KEY" in raw.split(b"\n", 1)[0]:
            raise KeyFormatError("that is a private key: give the public key (it is all the server needs)")
        try:
            key = serialization.load_pem_public_key(raw)
        except ValueError as exc:
            raise KeyFormatError(f"not a PEM public key: {exc}") from None
        return encode_public_key(key)
    try:
        decode_public_key(raw)
        return bytes(raw)
    except KeyFormatError as handle_error:
        try:
            key = serialization.load_der_public_key(raw)
        except ValueError:
            raise KeyFormatError(f"neither a PEM / DER public key nor Handle's key encoding ({handle_error})"
                                 ) from None
        return encode_public_key(key)


def signature_matches(public_key: bytes, nonce: bytes, request_digest: bytes, answer: bytes) -> bool:
    """Whether ``answer`` (hash algorithm, signature) is a signature over ``nonce || request_digest`` made with
    the private half of the HS_PUBKEY value ``public_key``. Raises KeyFormatError for an answer or key
    that cannot be checked at all."""
    try:
        reader = Reader(answer)
        algorithm = reader.blob(32, "hash algorithm")
        signature = reader.blob(MAX_SIGNATURE_BYTES, "signature")
        reader.finish("challenge answer")
    except ValueFormatError as exc:
        raise KeyFormatError(str(exc)) from None
    hash_type = HASHES.get(algorithm.upper())
    if hash_type is None:
        raise KeyFormatError(f"hash algorithm {algorithm[:32]!r} is not accepted (SHA1 or SHA-256)")
    key = decode_public_key(public_key)
    signed = nonce + request_digest
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), hash_type())
        else:
            key.verify(signature, signed, hash_type())
    except InvalidSignature:
        return False
    return True
