"""Certified responses (RFC 3652 section 2.2.4): the Message Credential a server signs when the CT flag asks.

A client that sets CT (``OF_CERTIFIED``) checks the response's signature with
the server's public key from the site information (HS_SITE) it sent the
request by, ignoring the credential's Signer. The credential, after its
4-octet length, is::

    Version (0) | Reserved (0) | Options (2 octets, 0)
    Signer: Handle (UTF-8 string), Index (4 octets)
    Type (UTF-8 string)
    SignedInfo: Length (4 octets), DigestAlgorithm (UTF-8 string), SignedData (length, signature)

and the signature covers the response's header and body, preceded from version 2.6 on by some envelope
fields (``messages.signed_envelope_fields``). Our key is RSA. CNRI's client library (9.2) was found to accept
type ``HS_SIGNED`` with digest algorithm ``SHA-256`` or ``SHA-1`` (also spelled ``SHA256``, ``SHA1``) and
RSA PKCS #1 v1.5 signatures only: ``SHA-384`` and ``SHA-512`` are unknown to it, and so is the type
``HS_SIGNED_PSS`` (RFC 3652's RSA-PSS). We sign with the strongest of those, SHA-256, which is also what
the library writes when it signs. Signer names no handle value (empty handle, index 0): clients ignore it.
A 2048-bit signature costs about 0.3 ms of CPU (measured here), so it is made only for requests that ask.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from agency.handles.values import blob, text, u32

CREDENTIAL_VERSION = 0
SIGNATURE_TYPE = "HS_SIGNED"
DIGEST_ALGORITHM = "SHA-256"


class ResponseSigner:
    """Signs responses with the server's private key."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._key = private_key
        # Version, Reserved, Options; Signer (no handle value: clients take the key from the site information);
        # Type. The same for every response.
        self._head = bytes([CREDENTIAL_VERSION, 0, 0, 0]) + text("") + u32(0) + text(SIGNATURE_TYPE)

    def credential(self, signed_part: bytes) -> bytes:
        """The Message Credential, its length first, with the signature over ``signed_part`` (the envelope
        fields its version signs, then the response's header and body)."""
        signature = self._key.sign(signed_part, padding.PKCS1v15(), hashes.SHA256())
        return blob(self._head + blob(text(DIGEST_ALGORITHM) + blob(signature)))
