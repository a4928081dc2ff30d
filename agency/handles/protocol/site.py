"""This service's site: its RSA key pair (kept in the data folder) and the HS_SITE record that describes it.

The HS_SITE record is what OC_GET_SITEINFO answers and what an RA sends the
Directory Manager (Handbook 9.1.3, CNRI's ``sitebndl`` step): protocol version,
serial number, one server with its address, public key and interfaces (TCP and
UDP on the handle port, HTTP on the web port). The private key is written once,
mode 0600, and never leaves the data folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agency.handles.values import (
    SP_HDL_HTTP, SP_HDL_TCP, SP_HDL_UDP, ST_ADMIN_AND_QUERY, ST_QUERY, Interface, ServerRecord, SiteInfo,
    encode_rsa_public_key,
)

KEY_FOLDER = "handle-server"
PRIVATE_KEY_FILE = "privkey.pem"
RSA_BITS = 2048


@dataclass(frozen=True)
class SiteSettings:
    address: str  # the address other handle clients reach this server at
    port: int  # TCP and UDP
    http_port: int  # 0: no HTTP interface listed
    serial: int
    description: str


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FOLDER / PRIVATE_KEY_FILE


def load_or_create_private_key(data_dir: Path):
    """The server's RSA private key, generated on first use and kept readable by the owner only."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = key_path(data_dir)
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())
    os.replace(path.with_suffix(".tmp"), path)
    return key


def public_key_bytes(private_key) -> bytes:
    """The HS_PUBKEY encoding of the server's public key."""
    numbers = private_key.public_key().public_numbers()
    return encode_rsa_public_key(numbers.e, numbers.n)


def site_info(settings: SiteSettings, public_key: bytes) -> SiteInfo:
    interfaces = [Interface(ST_ADMIN_AND_QUERY, SP_HDL_TCP, settings.port),
                  Interface(ST_ADMIN_AND_QUERY, SP_HDL_UDP, settings.port)]
    if settings.http_port:
        interfaces.append(Interface(ST_QUERY, SP_HDL_HTTP, settings.http_port))
    server = ServerRecord(1, ServerRecord.address_bytes(settings.address), public_key, tuple(interfaces))
    attributes = (("desc", settings.description),) if settings.description else ()
    return SiteInfo(serial=settings.serial, servers=(server,), attributes=attributes)
